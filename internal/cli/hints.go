package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/delim"
	"github.com/tlstap/tlstap/internal/recording"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// serverHint adds to a server start-up error the flag that fixes it.
func serverHint(err error) error {
	var le *server.ListenError
	if errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE) {
		if le.Main() {
			return fmt.Errorf("%w\n  another program (another tlstap?) is using %s: pass --listen HOST:PORT to use another port, or --listen '' to run without the main listener", err, le.Addr)
		}
		return fmt.Errorf("%w\n  another program (another tlstap, or ecapture?) is using %s: pass another ws://HOST:PORT to --ecaptureq", err, le.Addr)
	}
	var se *server.StateDirError
	if errors.As(err, &se) {
		return fmt.Errorf("%w\n  tlstap keeps its token and certificate there: pass --state-dir DIR with a directory you can write", err)
	}
	return err
}

// checkRecording explains, before replay starts, a path that is not a
// recording: a directory, or a push-sink file, which users mistake for
// one. Anything else is left to the recording reader's own errors.
func checkRecording(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory: 'tlstap replay' plays one recording file, as written by 'tlstap tls --record FILE'", path)
	}
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	if isSinkStream(head[:n]) {
		return fmt.Errorf("%s is not a recording but a push-sink stream (what --eventaddr FILE writes: event.LogEntry messages, each preceded by its varint length); "+
			"read it with examples/python/read_stream.py %s, or any length-delimited protobuf reader (Go: protodelim.UnmarshalFrom)", path, path)
	}
	return nil
}

// isSinkStream reports whether data, the start of a file, is the start of
// a push sink's stream: no recording magic, and a first frame
// (internal/delim) that is complete and unmarshals as a LogEntry of a
// known type.
func isSinkStream(data []byte) bool {
	if len(data) >= len(recording.Magic) && string(data[:len(recording.Magic)]) == recording.Magic {
		return false
	}
	frame, err := delim.NewReader(bytes.NewReader(data), len(data)).Next()
	if err != nil || len(frame) == 0 {
		return false
	}
	var m eventpb.LogEntry
	if err := proto.Unmarshal(frame, &m); err != nil {
		return false
	}
	_, known := eventpb.LogType_name[int32(m.GetLogType())]
	return known && m.GetPayload() != nil
}

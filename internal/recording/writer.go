package recording

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/delim"
	recordingpb "github.com/tlstap/tlstap/proto/gen/go/recording"
)

// Writer appends chunks to a recording. It is not safe for concurrent use.
type Writer struct {
	w   *bufio.Writer
	buf []byte
	n   int64
}

// NewWriter writes the magic and a header naming producer to w.
func NewWriter(w io.Writer, producer string) (*Writer, error) {
	rw := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	if _, err := rw.w.WriteString(Magic); err != nil {
		return nil, err
	}
	rw.n = int64(len(Magic))
	hdr := &recordingpb.Record{Body: &recordingpb.Record_Header{Header: &recordingpb.Header{
		Version:  Version,
		Created:  time.Now().UnixNano(),
		Producer: producer,
	}}}
	if err := rw.write(hdr); err != nil {
		return nil, err
	}
	return rw, nil
}

// Write appends one chunk.
func (w *Writer) Write(c *capture.Chunk) error {
	return w.write(&recordingpb.Record{Body: &recordingpb.Record_Chunk{Chunk: toPB(c)}})
}

func (w *Writer) write(r *recordingpb.Record) error {
	var err error
	w.buf, err = proto.MarshalOptions{}.MarshalAppend(w.buf[:0], r)
	if err != nil {
		return fmt.Errorf("recording: marshal: %w", err)
	}
	if len(w.buf) > MaxRecord {
		return fmt.Errorf("recording: record of %d bytes exceeds the %d-byte limit", len(w.buf), MaxRecord)
	}
	n, err := delim.Write(w.w, w.buf)
	w.n += int64(n)
	return err
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }

// Size returns the bytes written so far, including buffered ones.
func (w *Writer) Size() int64 { return w.n }

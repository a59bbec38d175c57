package broker

import (
	"bytes"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// LogWriter is an io.Writer that publishes each Write as one process-log
// entry. slog's text and JSON handlers write one record per call, so
//
//	slog.NewTextHandler(broker.LogWriter{B: b}, nil)
//
// puts the program's own log lines into the stream as LOG_TYPE_PROCESS_LOG.
type LogWriter struct{ B *Broker }

func (w LogWriter) Write(p []byte) (int, error) {
	w.B.Publish(&eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG,
		Payload: &eventpb.LogEntry_RunLog{RunLog: string(bytes.TrimRight(p, "\n"))},
	})
	return len(p), nil
}

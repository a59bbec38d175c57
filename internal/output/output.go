package output

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tlstap/tlstap/internal/broker"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Format is how events are encoded for a consumer: standard output,
// push sinks (package sink) and webhook bodies (package forward) all use
// this one type, each accepting the subset config lists
// (config.OutputFormats, SinkFormats, ForwardFormats).
type Format string

const (
	// Text: a header line and the payload per event.
	Text Format = "text"
	// JSON: one object per event, every field.
	JSON Format = "json"
	// Protobuf: one marshaled event.LogEntry per message (sinks, webhooks).
	Protobuf Format = "protobuf"
	// None: nothing (standard output).
	None Format = "none"
)

// ParseFormat validates a standard output format (--output).
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Text, JSON, None:
		return f, nil
	}
	return "", fmt.Errorf("unknown output format %q (want text, json or none)", s)
}

// Renderer writes one event.
type Renderer interface {
	Render(w io.Writer, ev *eventpb.Event) error
}

// New returns the renderer for f; nil for None.
func New(f Format, hex bool) Renderer {
	switch f {
	case Text:
		return TextRenderer{Hex: hex}
	case JSON:
		return JSONRenderer{}
	}
	return nil
}

// Run renders every event of sub to w until the subscription ends or ctx
// is done. Output is buffered and flushed whenever the queue runs dry, so a
// burst costs few writes and a quiet stream shows up at once.
func Run(ctx context.Context, sub *broker.Subscription, w io.Writer, r Renderer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	for {
		e, err := sub.Next(ctx)
		if errors.Is(err, broker.ErrClosed) {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
		if ev := e.Event(); ev != nil {
			if err := r.Render(bw, ev); err != nil {
				return err
			}
		}
		if sub.Len() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

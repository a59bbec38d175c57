package output

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

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
	return NewWriter(w, r).Run(ctx, sub)
}

// Writer renders events to an io.Writer, either from its subscription's
// queue (Run) or straight from the publisher (Direct), one at a time.
type Writer struct {
	r Renderer
	// mu is uncontended but for the final flush, which runs outside the
	// subscription's delivery lock.
	mu  sync.Mutex
	bw  *bufio.Writer
	err error // sticky: once writing failed, nothing more is written
}

// NewWriter returns a Writer rendering with r to w. It renders two
// events to io.Discard first: the first use of a type by encoding/json
// builds its encoder (0.4 ms for JSONEvent here), which the first
// captured event would otherwise wait for.
func NewWriter(w io.Writer, r Renderer) *Writer {
	if r != nil {
		for _, p := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), {0xff, 0}} { // both payload encodings
			_ = r.Render(io.Discard, &eventpb.Event{Timestamp: 1, Uuid: "warm", SrcIp: "127.0.0.1", DstIp: "127.0.0.1",
				Pname: "warm", Type: 1, Length: uint32(len(p)), Payload: p})
		}
	}
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10), r: r}
}

// Direct is broker.SubOptions.Direct for a subscription that Run serves:
// the publisher renders the event itself while the queue is empty, so an
// event reaches standard output with no goroutine hand-off. It flushes at
// once unless more events of the same batch follow (more): then Flush, at
// the batch's end, writes them all in one system call, or the buffer does
// once it is full. The broker calls both under the subscription's
// delivery lock.
func (w *Writer) Direct(e *broker.Entry, more bool) bool {
	return w.write(e, !more) == nil
}

// Flush is broker.SubOptions.Flush: it writes out what Direct buffered.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && w.bw.Buffered() > 0 {
		w.err = w.bw.Flush()
	}
}

// Run renders every event of sub (queued, not delivered by Direct) until
// the subscription ends or ctx is done, then flushes.
func (w *Writer) Run(ctx context.Context, sub *broker.Subscription) error {
	err := sub.Serve(ctx, func(e *broker.Entry) error {
		// Flushed whenever the queue runs dry.
		return w.write(e, sub.Len() == 0)
	})
	if errors.Is(err, broker.ErrClosed) {
		err = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if err != nil {
		return err
	}
	return w.err
}

func (w *Writer) write(e *broker.Entry, flush bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if ev := e.Event(); ev != nil {
		if w.err = w.r.Render(w.bw, ev); w.err != nil {
			return w.err
		}
	}
	if flush {
		w.err = w.bw.Flush()
	}
	return w.err
}

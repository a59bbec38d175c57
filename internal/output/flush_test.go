package output_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Output is flushed whenever the queue runs dry, not on a timer or at the
// end: one event, then a burst, each reaches the reader whole while the
// stream stays open and nothing follows.
func TestRunFlushesWhenDry(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	defer b.Close()
	sub := b.Subscribe(broker.SubOptions{Policy: broker.Block, Queue: 1024})
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- output.Run(ctx, sub, pw, output.JSONRenderer{}) }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		pw.Close()
		for range lines {
		}
	}()

	publish := func(n int) {
		for range n {
			b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT,
				Payload: &eventpb.LogEntry_EventPayload{EventPayload: events()[0]}})
		}
	}
	expect := func(n int) {
		t.Helper()
		fail := time.After(10 * time.Second) // a deadline for failure, not a timing assertion
		for i := range n {
			select {
			case <-lines:
			case <-fail:
				t.Fatalf("%d of %d lines arrived; the rest is stuck in the buffer", i, n)
			}
		}
	}
	publish(1)
	expect(1)
	publish(500)
	expect(500)
}

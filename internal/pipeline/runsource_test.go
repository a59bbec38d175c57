package pipeline_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
)

// script is a source that sends its chunks in turn, each once the test
// says so, then waits for ctx. As a KeepRunner it calls keep itself and
// records that it did, and whether keep ever asked it to send.
type script struct {
	chunks []capture.Chunk
	next   chan struct{} // one receive per chunk
	sent   bool          // keep returned true
	inline bool          // RunKeep was used
}

func (s *script) play(ctx context.Context, deliver func(c *capture.Chunk)) error {
	for i := range s.chunks {
		select {
		case <-s.next:
		case <-ctx.Done():
			return nil
		}
		deliver(&s.chunks[i])
	}
	<-ctx.Done()
	return nil
}

func (s *script) Run(ctx context.Context, out chan<- capture.Chunk) error {
	return s.play(ctx, func(c *capture.Chunk) { out <- *c })
}

type keepScript struct{ *script }

func (s keepScript) RunKeep(ctx context.Context, out chan<- capture.Chunk, keep func(*capture.Chunk) bool) error {
	s.inline = true
	return s.play(ctx, func(c *capture.Chunk) {
		if keep(c) {
			s.sent = true
			out <- *c
		}
	})
}

// TestRunSource: whether the source hands chunks over on a channel or
// (a KeepRunner, as live capture is) has the pipeline handle them on its
// own goroutine, a complete message is published without any further
// chunk, raw data is published by the idle flush with nothing else
// arriving (the timer path, which runs beside the source's goroutine),
// and what is still buffered when the source ends is flushed. Run with
// -race: the timer path and Handle share the pipeline's state.
func TestRunSource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wrap   func(*script) capture.Source
		inline bool
	}{
		{"channel", func(s *script) capture.Source { return s }, false},
		{"keep runner", func(s *script) capture.Source { return keepScript{s} }, true},
		{"filtered keep runner", func(s *script) capture.Source {
			return capture.Filter(keepScript{s}, func(c *capture.Chunk) bool { return c.Conn != 9 })
		}, true},
		{"filtered channel", func(s *script) capture.Source {
			return capture.Filter(s, func(c *capture.Chunk) bool { return c.Conn != 9 })
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UnixNano()
			s := &script{next: make(chan struct{}), chunks: []capture.Chunk{
				chunk(now, 1, capture.Write, "GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n"),
				chunk(now, 2, capture.Write, "raw bytes with no boundary"),
				chunk(now, 3, capture.Write, "GET /b HTTP/1.1\r\nHost: a.test\r\n\r\n"),
				chunk(now, 3, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"),
			}}
			sink := &collect{t: t}
			p := pipeline.New(pipeline.Options{IdleFlush: 20 * time.Millisecond}, sink)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var err error
			wg.Go(func() { err = p.RunSource(ctx, tc.wrap(s)) })
			t.Cleanup(func() { cancel(); wg.Wait() })

			paths := func() []string {
				var out []string
				for _, ev := range sink.all() {
					out = append(out, ev.GetPath()+"|"+string(ev.GetPayload()))
				}
				return out
			}
			waitFor := func(n int) []string {
				t.Helper()
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if got := paths(); len(got) >= n {
						return got
					}
				}
				t.Fatalf("events: got %q, want %d of them", paths(), n)
				return nil
			}

			s.next <- struct{}{}
			got := waitFor(1)
			if !strings.HasPrefix(got[0], "/a|GET /a ") {
				t.Errorf("first event %q, want the request for /a", got)
			}
			s.next <- struct{}{}
			// Nothing else arrives: only the idle flush can publish it.
			got = waitFor(2)
			if got[1] != "|raw bytes with no boundary" {
				t.Errorf("second event %q, want the raw data", got[1])
			}
			s.next <- struct{}{}
			s.next <- struct{}{}
			waitFor(3)
			cancel()
			wg.Wait()
			if err != nil {
				t.Fatalf("RunSource: %v", err)
			}
			// The incomplete response is flushed at the end.
			got = paths()
			if len(got) != 4 || !strings.HasPrefix(got[2], "/b|GET /b ") || !strings.HasPrefix(got[3], "/b|HTTP/1.1 200 OK") || !strings.HasSuffix(got[3], "half") {
				t.Errorf("events %q, want /b's request, then its incomplete response", got)
			}
			if s.inline != tc.inline {
				t.Errorf("handled on the source's goroutine: %v, want %v", s.inline, tc.inline)
			}
			if s.sent {
				t.Error("a KeepRunner was asked to send on the channel as well")
			}
			if n := p.Connections(); n != 0 {
				t.Errorf("Connections() after RunSource = %d, want 0", n)
			}
		})
	}
}

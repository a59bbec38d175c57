package pipeline_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
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

// drainScript is a keepScript that also says where its drains end: after
// the chunks whose index is in ends (capture.DrainRunner, as live capture).
type drainScript struct {
	keepScript
	ends map[int]bool
}

func (s drainScript) RunDrain(ctx context.Context, out chan<- capture.Chunk, keep func(*capture.Chunk) bool, drained func()) error {
	s.inline = true
	i := 0
	return s.play(ctx, func(c *capture.Chunk) {
		if keep(c) {
			s.sent = true
			out <- *c
		}
		if s.ends[i] {
			drained()
		}
		i++
	})
}

// batchCollect is a pipeline.Batcher: what is published in a batch is
// seen only once the batch is flushed.
type batchCollect struct {
	*collect
	held    []*eventpb.LogEntry
	batched int
}

func (c *batchCollect) PublishBatched(m *eventpb.LogEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = append(c.held, m)
	c.batched++
}

func (c *batchCollect) Flush() {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for _, m := range held {
		c.Publish(m)
	}
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
		name    string
		wrap    func(*script) capture.Source
		inline  bool
		batched bool // the sink is a Batcher, the source a DrainRunner
	}{
		// Drains end after the first chunk, after the second, and after
		// the last two together: each event must be out once its drain
		// ended, and the idle flush of the raw data without any drain.
		{"drain runner", func(s *script) capture.Source {
			return drainScript{keepScript{s}, map[int]bool{0: true, 1: true, 3: true}}
		}, true, true},
		{"filtered drain runner", func(s *script) capture.Source {
			return capture.Filter(drainScript{keepScript{s}, map[int]bool{0: true, 1: true, 3: true}},
				func(c *capture.Chunk) bool { return c.Conn != 9 })
		}, true, true},
		// A filter is a DrainRunner whatever it wraps; around a source
		// that cannot tell where drains end, each chunk is one.
		{"filtered keep runner, batching sink", func(s *script) capture.Source {
			return capture.Filter(keepScript{s}, func(c *capture.Chunk) bool { return c.Conn != 9 })
		}, true, true},
		{"channel", func(s *script) capture.Source { return s }, false, false},
		{"keep runner", func(s *script) capture.Source { return keepScript{s} }, true, false},
		{"filtered keep runner", func(s *script) capture.Source {
			return capture.Filter(keepScript{s}, func(c *capture.Chunk) bool { return c.Conn != 9 })
		}, true, false},
		{"filtered channel", func(s *script) capture.Source {
			return capture.Filter(s, func(c *capture.Chunk) bool { return c.Conn != 9 })
		}, false, false},
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
			var broker pipeline.Broker = sink
			bc := &batchCollect{collect: sink}
			if tc.batched {
				broker = bc
			}
			p := pipeline.New(pipeline.Options{IdleFlush: 20 * time.Millisecond}, broker)
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
			if tc.batched && bc.batched != 2 {
				t.Errorf("%d events published in batches, want 2 (the requests; the raw data's idle flush and the final flush are not)", bc.batched)
			}
			if n := p.Connections(); n != 0 {
				t.Errorf("Connections() after RunSource = %d, want 0", n)
			}
		})
	}
}

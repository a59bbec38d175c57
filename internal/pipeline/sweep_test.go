package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// handOver is a capture.KeepRunner that hands its chunks to keep, each
// gap after the one before, then waits for ctx.
type handOver struct {
	chunks []capture.Chunk
	gap    time.Duration
	done   chan struct{}
}

func (s *handOver) Run(ctx context.Context, out chan<- capture.Chunk) error {
	return s.RunKeep(ctx, out, nil)
}

func (s *handOver) RunKeep(ctx context.Context, _ chan<- capture.Chunk, keep func(*capture.Chunk) bool) error {
	for i := range s.chunks {
		if i > 0 {
			time.Sleep(s.gap)
		}
		s.chunks[i].Time = time.Now().UnixNano()
		keep(&s.chunks[i])
	}
	close(s.done)
	<-ctx.Done()
	return nil
}

type countBroker struct {
	mu sync.Mutex
	n  int
}

func (b *countBroker) Publish(*eventpb.LogEntry) {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
}

func (b *countBroker) events() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// TestSweepsWhenDue: the idle sweep timer fires when an idle flush is due,
// not at the sweep rate for as long as a connection has seen data. Each
// firing is a thread wake-up or two in Go's runtime, and at the sweep rate
// they were most of a lightly loaded tlstap's context switches. The counts
// are upper bounds, which a slow machine only lowers: a firing either
// flushes a connection that received a chunk since the last flush, or finds
// the flush it was set for pushed back by such a chunk, so there are at most
// two per chunk and one more; at the sweep rate (IdleFlush/4) one chunk
// alone took four. Raw data is still flushed, with nothing else arriving.
func TestSweepsWhenDue(t *testing.T) {
	const idle = 40 * time.Millisecond
	for _, tc := range []struct {
		name   string
		chunks []capture.Chunk
		gap    time.Duration
		most   uint64
		events int // published once the sweeps are over
	}{
		{"one request", []capture.Chunk{
			{PID: 1, Conn: 1, Kind: capture.Data, Dir: capture.Write, Data: []byte("GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n")},
		}, 0, 2, 1},
		{"raw data", []capture.Chunk{
			{PID: 1, Conn: 2, Kind: capture.Data, Dir: capture.Write, Data: []byte("raw bytes with no boundary")},
		}, 0, 2, 1},
		{"requests on one connection", []capture.Chunk{
			{PID: 1, Conn: 3, Kind: capture.Data, Dir: capture.Write, Data: []byte("GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n")},
			{PID: 1, Conn: 3, Kind: capture.Data, Dir: capture.Write, Data: []byte("GET /b HTTP/1.1\r\nHost: a.test\r\n\r\n")},
			{PID: 1, Conn: 3, Kind: capture.Data, Dir: capture.Write, Data: []byte("GET /c HTTP/1.1\r\nHost: a.test\r\n\r\n")},
			{PID: 1, Conn: 3, Kind: capture.Data, Dir: capture.Write, Data: []byte("GET /d HTTP/1.1\r\nHost: a.test\r\n\r\n")},
		}, idle / 4, 9, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &countBroker{}
			p := New(Options{IdleFlush: idle}, b)
			src := &handOver{chunks: tc.chunks, gap: tc.gap, done: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { p.RunSource(ctx, src) })
			defer func() { cancel(); wg.Wait() }()
			<-src.done
			// Long enough for sweeps at the old rate to show; every
			// flush due is long past.
			deadline := time.Now().Add(10 * idle)
			for time.Now().Before(deadline) || b.events() < tc.events {
				time.Sleep(idle / 4)
				if time.Since(deadline) > time.Minute {
					t.Fatalf("%d events published, want %d", b.events(), tc.events)
				}
			}
			if n := p.sweeps.Load(); n > tc.most {
				t.Errorf("the sweep timer fired %d times for %d chunks, want at most %d", n, len(tc.chunks), tc.most)
			}
		})
	}
}

package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
)

// hook is a webhook endpoint that counts deliveries; each waits for
// release (closed at once if nil) so tests can keep events queued.
type hook struct {
	*httptest.Server
	n       atomic.Int64
	release chan struct{}
}

func newHook(t *testing.T, release chan struct{}) *hook {
	h := &hook{release: release}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.release != nil {
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		h.n.Add(1)
	}))
	t.Cleanup(h.Close)
	return h
}

// syncBuf is a bytes.Buffer safe for concurrent writers and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withForward(url string) config.Config {
	cfg := config.Default()
	cfg.Output.Format = "none"
	cfg.Forward = []config.Forward{{URL: url, Mode: "webhook", Method: "POST", Format: "json"}}
	return cfg
}

// TestExitDeliversEverything: with Exit, Run returns only after the
// forwarders and sinks delivered what they held, and says so.
func TestExitDeliversEverything(t *testing.T) {
	h := newHook(t, nil)
	cfg := withForward(h.URL + "/hook")
	sinkPath := filepath.Join(t.TempDir(), "out.pb")
	cfg.Sinks = []config.Sink{{Addr: sinkPath, Format: "protobuf"}}
	var stderr syncBuf
	e := engine.New(engine.Options{Config: cfg, Exit: true, VirtualClock: true, Stdout: &bytes.Buffer{}, Stderr: &stderr})
	e.NewApplier(nil)
	if err := e.Run(context.Background(), fileSource(t, filepath.Join("testdata", "http1.rec"))); err != nil {
		t.Fatal(err)
	}
	n := e.Broker.LastSeq()
	if n == 0 {
		t.Fatal("no events")
	}
	if got := h.n.Load(); got != int64(n) {
		t.Errorf("webhook received %d of %d events", got, n)
	}
	out := stderr.String()
	if !strings.Contains(out, fmt.Sprintf("forward webhook %s/hook: %d delivered, 0 failed, 0 dropped", h.URL, n)) {
		t.Errorf("summary does not report the forwarder's %d deliveries:\n%s", n, out)
	}
	if !strings.Contains(out, "sink "+sinkPath+": ") || strings.Contains(out, "drain timeout") {
		t.Errorf("summary without the sink, or a timeout:\n%s", out)
	}
}

// TestInterruptDrains: cancelling Run (Ctrl-C) stops capture at once,
// says so, and still delivers what was queued.
func TestInterruptDrains(t *testing.T) {
	release := make(chan struct{})
	h := newHook(t, release)
	var stderr syncBuf
	e := engine.New(engine.Options{Config: withForward(h.URL), Stdout: &bytes.Buffer{}, Stderr: &stderr})
	e.NewApplier(nil)
	ctx, cancel := context.WithCancel(context.Background())
	src := make(chan capture.Chunk)
	stopped := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.Run(ctx, sourceFunc(func(ctx context.Context, out chan<- capture.Chunk) error {
			defer close(stopped)
			for {
				select {
				case c := <-src:
					out <- c
				case <-ctx.Done():
					return nil
				}
			}
		}))
	}()
	const n = 20
	for i := range n {
		src <- capture.Chunk{Time: int64(i + 1), PID: 7, Conn: uint64(i + 1), FD: 3, Dir: capture.Write, Data: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}
	}
	waitFor(t, func() bool { return e.Broker.LastSeq() == n })
	cancel()
	<-stopped // capture stopped before anything was delivered
	if got := h.n.Load(); got != 0 {
		t.Fatalf("%d delivered before the release", got)
	}
	waitFor(t, func() bool { return strings.Contains(stderr.String(), "shutting down") })
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := h.n.Load(); got != n {
		t.Errorf("delivered %d of %d", got, n)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("%d delivered, 0 failed, 0 dropped", n)) {
		t.Errorf("summary:\n%s", stderr.String())
	}
}

// TestDrainTimeout: a destination that never answers holds the exit up
// for the drain timeout only, and what it held is reported dropped.
func TestDrainTimeout(t *testing.T) {
	never := make(chan struct{})
	h := newHook(t, never)
	t.Cleanup(func() { close(never) }) // before the server closes
	var stderr syncBuf
	e := engine.New(engine.Options{Config: withForward(h.URL), Exit: true, VirtualClock: true, DrainTimeout: 300 * time.Millisecond, Stdout: &bytes.Buffer{}, Stderr: &stderr})
	e.NewApplier(nil)
	if err := e.Run(context.Background(), fileSource(t, filepath.Join("testdata", "http1.rec"))); err != nil {
		t.Fatal(err)
	}
	n := e.Broker.LastSeq()
	out := stderr.String()
	if !strings.Contains(out, "drain timeout (300ms) reached") {
		t.Errorf("no timeout notice:\n%s", out)
	}
	if !strings.Contains(out, fmt.Sprintf("0 delivered, 0 failed, %d dropped", n)) {
		t.Errorf("summary does not count all %d events dropped:\n%s", n, out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

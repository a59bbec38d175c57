package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/testenv"
)

var requestNumber = regexp.MustCompile(`^GET /\?n=(\d+) HTTP/1\.1\r\n`)

// seen collects the request numbers captured per process.
type seen struct {
	mu  sync.Mutex
	ns  map[uint32][]int
	upd chan struct{}
}

func (s *seen) add(pid uint32, n int) {
	s.mu.Lock()
	s.ns[pid] = append(s.ns[pid], n)
	s.mu.Unlock()
	select {
	case s.upd <- struct{}{}:
	default:
	}
}

func (s *seen) count(pid uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ns[pid])
}

func (s *seen) of(pid uint32) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.ns[pid]...)
}

func (s *seen) waitCount(t *testing.T, pid uint32, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for s.count(pid) < n {
		select {
		case <-s.upd:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("pid %d: %d requests captured, waited for %d", pid, s.count(pid), n)
		}
	}
}

// consecutive reports the first break in ns, which must count up by one.
func consecutive(ns []int) error {
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return fmt.Errorf("request %d follows %d", ns[i], ns[i-1])
		}
	}
	return nil
}

// Two real curl processes make numbered requests over TLS; a PATCH of the
// pid filter keeps one. The other's requests stop being captured, and the
// kept one's continue with no request missing across the change.
func TestApplyLivePIDFilter(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	srv := testenv.StartPythonHTTPS(t, netip.MustParseAddr("127.0.0.1"), map[string][]byte{"index.html": []byte("ok\n")})
	url := srv.URL("/?n=[1-1000000]")
	// curl numbers its requests by URL globbing and keeps the connection.
	a := testenv.Start(t, "curl", "-sk", "--rate", "50/s", url)
	b := testenv.Start(t, "curl", "-sk", "--rate", "50/s", url)
	pa, pb := uint32(a.PID()), uint32(b.PID())

	cfg := config.Default()
	cfg.Output.Format = "none"
	cfg.Capture.PIDs = []uint32{pa, pb}
	e := New(Options{Config: cfg, Stdout: io.Discard, Stderr: io.Discard})
	src, err := openssl.New(openssl.Options{Filter: filterOf(cfg.Capture), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("openssl.New: %v", err)
	}
	defer src.Close()
	ap := e.NewApplier(src)
	srvAPI := api.New(api.Options{Config: cfg, Applier: ap, Stats: e.Stats, Log: e.Log})
	m := mux{http.NewServeMux()}
	srvAPI.Mount(m)
	hs := httptest.NewServer(m)
	defer hs.Close()

	got := &seen{ns: map[uint32][]int{}, upd: make(chan struct{}, 1)}
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "test", Policy: broker.Block, Queue: 1 << 14,
		Filter: func(en *broker.Entry) bool { return en.Event() != nil }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			en, err := sub.Next(ctx)
			if err != nil {
				return
			}
			ev := en.Event()
			if mm := requestNumber.FindSubmatch(ev.GetPayload()); mm != nil {
				n, _ := strconv.Atoi(string(mm[1]))
				got.add(uint32(ev.GetPid()), n)
			}
		}
	})
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		wg.Wait()
	}()

	got.waitCount(t, pa, 10)
	got.waitCount(t, pb, 10)
	req, _ := http.NewRequest("PATCH", hs.URL+"/api/v1/config", strings.NewReader(fmt.Sprintf(`{"capture":{"pids":[%d]}}`, pa)))
	req.Header.Set("Content-Type", "application/merge-patch+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PATCH: %d %s", res.StatusCode, body)
	}
	mark := got.count(pa)
	// Once pid a has made 15 more requests, whatever b wrote before the
	// switch has long passed the ring; b's count must not move after.
	got.waitCount(t, pa, mark+15)
	bHalf, bOut := got.count(pb), len(b.Output())
	got.waitCount(t, pa, mark+30)
	if n := got.count(pb); n != bHalf {
		t.Errorf("pid %d (filtered out): %d requests captured, then %d more", pb, bHalf, n-bHalf)
	}
	if len(b.Output()) == bOut {
		t.Errorf("pid %d stopped making requests; the test proves nothing", pb)
	}
	for _, pid := range []uint32{pa, pb} {
		if err := consecutive(got.of(pid)); err != nil {
			t.Errorf("pid %d: %v (captured %v)", pid, err, got.of(pid))
		}
	}
	if n := got.count(pa); n < mark+30 {
		t.Errorf("pid %d: %d requests", pa, n)
	}
}

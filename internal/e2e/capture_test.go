package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// collector gathers every event of an engine from a subscription made
// before the engine runs.
type collector struct {
	mu   sync.Mutex
	evs  []*eventpb.Event
	done chan struct{}
}

func collect(e *engine.Engine) *collector {
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "test", Policy: broker.Block, Queue: 1 << 16,
		Filter: func(en *broker.Entry) bool { return en.Seq != 0 }})
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			en, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			c.mu.Lock()
			c.evs = append(c.evs, en.Event())
			c.mu.Unlock()
		}
	}()
	return c
}

// responses counts the response events of the given processes so far.
func (c *collector) responses(pids ...int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.evs {
		if (ev.GetType() == 3 || ev.GetType() == 4) && slices.Contains(pids, int(ev.GetPid())) {
			n++
		}
	}
	return n
}

// all waits for the engine's end and returns every event.
func (c *collector) all() []*eventpb.Event {
	<-c.done
	return c.evs
}

func newEngine(t *testing.T, record string, virtual bool) *engine.Engine {
	cfg := config.Default()
	cfg.Output.Format = "none"
	return engine.New(engine.Options{Config: cfg, Exit: true, Record: record, VirtualClock: virtual,
		Stdout: io.Discard, Stderr: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestCaptureRecordReplay captures real curl traffic (HTTP/1.1 keep-alive
// and HTTP/2 against nginx) through the whole engine, checks the decoded
// events field by field, then replays the recording made during the
// capture and requires the same events.
func TestCaptureRecordReplay(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	srv := testenv.StartNginx(t, testenv.NginxConfig{HTTP2: true, Files: map[string][]byte{
		"a.txt": []byte("first body\n"),
		"b.txt": []byte("second body, a little longer\n"),
	}})
	rec := filepath.Join(t.TempDir(), "capture.rec")
	src, err := openssl.New(openssl.Options{Filter: openssl.Filter{Comms: []string{"curl"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	e := newEngine(t, rec, false)
	events := collect(e)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, src) }()

	type run struct {
		pid   int
		ports []int
		h2    bool
	}
	curl := func(args ...string) run {
		t.Helper()
		cmd := exec.Command("curl", append([]string{"-sS", "-k", "-A", "tlstap-e2e", "-o", "/dev/null", "-o", "/dev/null",
			"-w", "%{local_port}\n"}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out.String())
		}
		r := run{pid: cmd.Process.Pid}
		for _, f := range strings.Fields(out.String()) {
			p, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("curl -w output %q", out.String())
			}
			r.ports = append(r.ports, p)
		}
		return r
	}
	h1 := curl("--http1.1", srv.URL("/a.txt"), srv.URL("/b.txt"))
	h2 := curl("--http2", srv.URL("/a.txt"), srv.URL("/b.txt"))
	h2.h2 = true

	// Wait until both responses of both runs are out, then stop: the
	// engine flushes and every subscriber drains. Only our two curls
	// count: other tests may run curl at the same time.
	deadline := time.Now().Add(30 * time.Second)
	for events.responses(h1.pid, h2.pid) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; events so far: %v", e.Stats.Snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	live := events.all()

	host := srv.Addr.String()
	for _, r := range []run{h1, h2} {
		reqType, respType, proto := uint32(1), uint32(3), "HTTP/1.1"
		if r.h2 {
			reqType, respType, proto = 2, 4, "HTTP/2"
		}
		var got []*eventpb.Event
		for _, ev := range live {
			if ev.GetPid() == int64(r.pid) {
				got = append(got, ev)
			}
		}
		if len(got) != 4 {
			t.Fatalf("%s: got %d events for curl pid %d, want 4 (2 requests, 2 responses): %v", proto, len(got), r.pid, summary(got))
		}
		bodies := map[string]string{"/a.txt": "first body\n", "/b.txt": "second body, a little longer\n"}
		var reqs []*eventpb.Event
		for _, ev := range got {
			if ev.GetPname() != "curl" {
				t.Errorf("pname %q, want curl", ev.GetPname())
			}
			port := uint32(r.ports[0])
			switch ev.GetType() {
			case reqType:
				reqs = append(reqs, ev)
				want := fmt.Sprintf("GET %s %s\r\nHost: %s\r\nUser-Agent: tlstap-e2e\r\nAccept: */*\r\n\r\n", ev.GetPath(), proto, host)
				if r.h2 {
					want = fmt.Sprintf("GET %s HTTP/2\r\nHost: %s\r\nuser-agent: tlstap-e2e\r\naccept: */*\r\nContent-Length: 0\r\n\r\n", ev.GetPath(), host)
				}
				if string(ev.GetPayload()) != want {
					t.Errorf("%s request payload\n%q\nwant\n%q", proto, ev.GetPayload(), want)
				}
				if ev.GetDataType() != 1 || ev.GetSrcIp() != "127.0.0.1" || ev.GetSrcPort() != port ||
					ev.GetDstIp() != srv.Addr.Addr().String() || ev.GetDstPort() != uint32(srv.Addr.Port()) {
					t.Errorf("%s request: data_type %d %s:%d -> %s:%d, want sent 127.0.0.1:%d -> %s", proto,
						ev.GetDataType(), ev.GetSrcIp(), ev.GetSrcPort(), ev.GetDstIp(), ev.GetDstPort(), port, srv.Addr)
				}
			case respType:
				if ev.GetStatus() != 200 || !bytes.HasSuffix(ev.GetPayload(), []byte("\r\n\r\n"+bodies[ev.GetPath()])) {
					t.Errorf("%s response for %q: status %d payload %q", proto, ev.GetPath(), ev.GetStatus(), ev.GetPayload())
				}
				if ev.GetRequestSeq() == 0 || ev.GetLatencyNs() <= 0 {
					t.Errorf("%s response not paired: request_seq %d latency %d", proto, ev.GetRequestSeq(), ev.GetLatencyNs())
				}
				if ev.GetDataType() != 0 || ev.GetDstPort() != port || ev.GetSrcPort() != uint32(srv.Addr.Port()) {
					t.Errorf("%s response: data_type %d %s:%d -> %s:%d", proto, ev.GetDataType(), ev.GetSrcIp(), ev.GetSrcPort(), ev.GetDstIp(), ev.GetDstPort())
				}
			default:
				t.Errorf("%s: unexpected event type %d: %q", proto, ev.GetType(), ev.GetPayload())
			}
		}
		if len(reqs) != 2 || reqs[0].GetPath() != "/a.txt" || reqs[1].GetPath() != "/b.txt" {
			t.Errorf("%s: requests %v, want /a.txt then /b.txt on one connection", proto, summary(reqs))
		} else if reqs[0].GetConnId() != reqs[1].GetConnId() {
			t.Errorf("%s: keep-alive requests on different connections %d, %d", proto, reqs[0].GetConnId(), reqs[1].GetConnId())
		}
	}

	// Replay the recording: the same events, field by field.
	e2 := newEngine(t, "", true)
	replayed := collect(e2)
	rsrc, err := replay.New(replay.Options{Name: rec, Speed: 0, Open: func() (io.ReadCloser, error) { return os.Open(rec) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Run(context.Background(), rsrc); err != nil {
		t.Fatal(err)
	}
	again := replayed.all()
	if len(again) != len(live) {
		t.Fatalf("replay gave %d events, live %d:\nlive %v\nreplay %v", len(again), len(live), summary(live), summary(again))
	}
	for i := range live {
		if !proto.Equal(live[i], again[i]) {
			t.Errorf("event %d differs:\nlive   %v\nreplay %v", i, live[i], again[i])
		}
	}
}

func summary(evs []*eventpb.Event) []string {
	var s []string
	for _, ev := range evs {
		s = append(s, fmt.Sprintf("#%d pid=%d type=%d %s %s status=%d len=%d", ev.GetSeq(), ev.GetPid(), ev.GetType(), ev.GetMethod(), ev.GetPath(), ev.GetStatus(), ev.GetLength()))
	}
	return s
}

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// BenchmarkPartLatency measures, with real capture, the time from the
// moment a server has written the last byte of an SSE event to the moment
// its part event reaches a stream subscriber, and as the baseline the same
// for whole responses of the same size on a keep-alive connection (which
// are emitted the moment their last byte is read, as before streaming). The
// first event of the stream is left out: its head waits for the idle
// window, which decides that the body does not complete at once; the
// events sent during that window (about 100 ms) wait for it too, so
// "streaming" repeats the figures for the events sent 150 ms or more after
// the first.
//
//	go test -run '^$' -bench PartLatency -benchtime 1x -count 5 ./internal/e2e/
func BenchmarkPartLatency(b *testing.B) {
	testenv.RequireRoot(b, "live capture")
	const n = 200
	src, err := openssl.New(openssl.Options{Filter: openssl.Filter{Comms: []string{"curl"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	t := &testing.T{}
	e := newEngine(t, "", false)
	sub := e.Broker.Subscribe(broker.SubOptions{Name: "bench", Policy: broker.Block, Queue: 1 << 16,
		Filter: func(en *broker.Entry) bool { return en.Seq != 0 }})
	var mu sync.Mutex
	seen := map[string]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			en, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			now := time.Now()
			ev := en.Event()
			key := ""
			switch {
			case ev.GetPart() == eventpb.PartKind_PART_KIND_PART && ev.GetSseData() != "":
				key = "sse/" + ev.GetSseData()
			case ev.GetPart() == eventpb.PartKind_PART_KIND_WHOLE && ev.GetType() == 3:
				key = "whole" + ev.GetPath()
			}
			if key != "" {
				mu.Lock()
				seen[key] = now
				mu.Unlock()
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, src) }()
	defer func() {
		cancel()
		<-runErr
		<-done
	}()

	var smu sync.Mutex
	sent := map[string]time.Time{}
	mark := func(key string) {
		smu.Lock()
		sent[key] = time.Now()
		smu.Unlock()
	}
	const event = "data: 0123456789abcdefghijklmnopqrstuvwxyz\n\n" // the same size for both
	mux := http.NewServeMux()
	mux.HandleFunc("/sse/{run}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			fmt.Fprintf(rw, "data: %s-%04d\n\n", r.PathValue("run"), i)
			rw.(http.Flusher).Flush()
			mark(fmt.Sprintf("sse/%s-%04d", r.PathValue("run"), i))
			time.Sleep(10 * time.Millisecond)
		}
	})
	mux.HandleFunc("/whole/{run}/{i}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Length", strconv.Itoa(len(event)))
		rw.Write([]byte(event))
		rw.(http.Flusher).Flush()
		mark("whole" + r.URL.Path)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()

	var parts, steady, wholes []time.Duration
	for i := range b.N {
		run := strconv.Itoa(i)
		if out, err := exec.Command("curl", "-sS", "-k", "-N", "--http1.1", "-o", "/dev/null", srv.URL+"/sse/"+run).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v %s", err, out)
		}
		args := []string{"-sS", "-k", "--http1.1"}
		for k := range n {
			args = append(args, "-o", "/dev/null", fmt.Sprintf("%s/whole/%s/%d", srv.URL, run, k))
		}
		if out, err := exec.Command("curl", args...).CombinedOutput(); err != nil {
			b.Fatalf("curl: %v %s", err, out)
		}
		time.Sleep(300 * time.Millisecond) // the last events drain
		mu.Lock()
		smu.Lock()
		for k := 1; k < n; k++ {
			key := fmt.Sprintf("sse/%s-%04d", run, k)
			if at, ok := seen[key]; ok {
				parts = append(parts, at.Sub(sent[key]))
				if sent[key].Sub(sent[fmt.Sprintf("sse/%s-%04d", run, 0)]) > 150*time.Millisecond {
					steady = append(steady, at.Sub(sent[key]))
				}
			}
			wkey := fmt.Sprintf("whole/whole/%s/%d", run, k)
			if at, ok := seen[wkey]; ok {
				wholes = append(wholes, at.Sub(sent[wkey]))
			}
		}
		smu.Unlock()
		mu.Unlock()
	}
	if len(parts) == 0 || len(wholes) == 0 {
		b.Fatalf("measured %d parts, %d whole responses", len(parts), len(wholes))
	}
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds())
	}
	b.ReportMetric(pct(parts, 0.5), "part-p50-µs")
	b.ReportMetric(pct(parts, 0.99), "part-p99-µs")
	b.ReportMetric(pct(steady, 0.5), "streaming-p50-µs")
	b.ReportMetric(pct(steady, 0.99), "streaming-p99-µs")
	b.ReportMetric(pct(wholes, 0.5), "whole-p50-µs")
	b.ReportMetric(pct(wholes, 0.99), "whole-p99-µs")
	b.ReportMetric(float64(len(parts))/float64(b.N), "parts/op")
}

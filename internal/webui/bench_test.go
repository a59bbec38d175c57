package webui_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/stats"
	"github.com/tlstap/tlstap/internal/webui"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

const benchToken = "bench-token-0123456789abcdef"

// benchServer is a streaming server with the page and the API mounted, fed
// by the test through its broker.
type benchServer struct {
	b    *broker.Broker
	addr string // HOST:PORT
	page string
}

func startBenchServer(tb testing.TB) *benchServer {
	tb.Helper()
	s, _ := startBenchServerAt(tb, "127.0.0.1:0")
	return s
}

// startBenchServerAt is startBenchServer on listen; stop ends the server
// before the test does (a restart on the same address).
func startBenchServerAt(tb testing.TB, listen string) (s *benchServer, stop func()) {
	tb.Helper()
	st := stats.NewSet()
	b := broker.New(broker.Options{}, st)
	srv, err := server.New(server.Options{Listen: listen, StateDir: tb.TempDir(), Token: benchToken, ClientQueue: 1 << 16}, b, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	api.New(api.Options{Stats: st}).Mount(srv)
	webui.Mount(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Error(err)
			}
			b.Close()
		})
	}
	tb.Cleanup(stop)
	addr := srv.Addr().(*net.TCPAddr).String()
	return &benchServer{b: b, addr: addr, page: "https://" + addr + "/#token=" + benchToken}, stop
}

// publishPair publishes request seq and its response seq+1.
func (s *benchServer) publishPair(seq uint64) {
	now := time.Now().UnixNano()
	i := seq / 2
	method := "GET"
	if i%10 == 0 {
		method = "POST"
	}
	path := fmt.Sprintf("/items/%d", i)
	req := &eventpb.Event{Timestamp: now, Seq: seq, Type: 1, Pid: int64(1000 + i%7), Pname: "curl", ConnId: i%50 + 1,
		Method: method, Host: "bench.test", Path: path, SrcIp: "127.0.0.1", SrcPort: 40000, DstIp: "127.0.0.1", DstPort: 443,
		Payload: []byte(method + " " + path + " HTTP/1.1\r\nHost: bench.test\r\nAccept: */*\r\n\r\n")}
	body := fmt.Sprintf(`{"id":%d,"ok":true}`, i)
	resp := &eventpb.Event{Timestamp: now + 1000, Seq: seq + 1, Type: 3, Pid: req.Pid, Pname: "curl", ConnId: req.ConnId,
		Method: method, Host: "bench.test", Path: path, Status: 200, RequestSeq: seq, LatencyNs: 1_000_000, ContentType: "application/json",
		Payload: fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)}
	for _, ev := range []*eventpb.Event{req, resp} {
		ev.Length = uint32(len(ev.Payload))
		s.b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}})
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pct(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// tab opens a fresh tab on url in the browser of ctx and waits for the
// stream to be live.
func tab(tb testing.TB, bctx context.Context, url string) (context.Context, context.CancelFunc) {
	ctx, cancel := chromedp.NewContext(bctx)
	run(tb, ctx, "open", chromedp.Navigate(url))
	waitConn(tb, ctx, "live")
	return ctx, cancel
}

// waitEvents waits until the page ingested n events.
func waitEvents(tb testing.TB, ctx context.Context, n int) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var got int
		eval(tb, ctx, `tlstapUI.state.model.events`, &got)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("page has %d events, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// frameScript collects requestAnimationFrame intervals for ms.
const frameScript = `new Promise((resolve) => {
  const out = []; let last = 0; const end = performance.now() + %d;
  const f = (t) => { if (last) out.push(t - last); last = t; if (t < end) requestAnimationFrame(f); else resolve(out); };
  requestAnimationFrame(f);
})`

// scrollScript jumps the list to 40 spread-out positions and times each
// jump until the frame after the one that drew it.
const scrollScript = `(async () => {
  document.getElementById("autoscroll").checked = false;
  const vp = document.getElementById("viewport");
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  await frame();
  const out = [], render = [];
  for (let k = 0; k < 40; k++) {
    const y = Math.floor(((k * 7919) % 1000) / 1000 * (vp.scrollHeight - vp.clientHeight));
    const t0 = performance.now();
    vp.scrollTop = y;
    await frame();
    out.push(performance.now() - t0);
    render.push(tlstapUI.state.renderMs);
  }
  return [out, render];
})()`

// fillScript adds n request/response pairs to the page's model directly
// (the stream would take minutes to carry 200,000 events) and returns the
// time it took.
const fillScript = `(() => {
  const enc = new TextEncoder(); const t0 = performance.now(); const base = 1e9; const now = Date.now() * 1e6;
  for (let i = 0; i < %d; i++) {
    const m = i %% 10 ? "GET" : "POST", p = "/items/" + i, seq = base + 2 * i;
    tlstapUI.ingest({seq, type: 1, method: m, host: "bench.test", path: p, pid: 1000 + i %% 7, pname: "curl", timestamp: now,
      payload: enc.encode(m + " " + p + " HTTP/1.1\r\nHost: bench.test\r\n\r\n")});
    tlstapUI.ingest({seq: seq + 1, type: 3, request_seq: seq, status: i %% 13 ? 200 : 404, method: m, host: "bench.test", path: p,
      pid: 1000 + i %% 7, pname: "curl", timestamp: now, latency_ns: 1e6, content_type: "application/json",
      payload: enc.encode("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"id\":" + i + "}")});
  }
  return performance.now() - t0;
})()`

// filterScript applies a filter to what the page holds and times the
// pass over the rows, and the whole change until the next frame.
const filterScript = `(async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t0 = performance.now();
  const pass = tlstapUI.refilterMs(%q);
  await frame();
  return [pass, performance.now() - t0, tlstapUI.rows().length];
})()`

// BenchmarkWebUI measures the page in headless Chromium, each figure with
// a baseline from the same run, runs interleaved, medians reported:
//
//   - first-rows: navigation to the first row drawn, and to all rows in,
//     with 10,000 retained events (5,000 rows); baseline: navigation to
//     the stream being live on an empty server;
//   - frame time while 2,000 events/s stream in, the stream in worker.js
//     and, as the same-run baseline, on the page (?worker=0); and the
//     same page idle;
//   - scroll (jump to a position, until drawn) and filter (the pass over
//     the rows, and until drawn) with 100,000 rows; baseline: 1,000 rows.
//
// Run: go test -run '^$' -bench WebUI -benchtime 1x ./internal/webui/
func BenchmarkWebUI(b *testing.B) {
	const reps = 5
	bctx := browser(b)
	empty := startBenchServer(b)
	full := startBenchServer(b)
	for seq := uint64(1); seq < 10000; seq += 2 {
		full.publishPair(seq)
	}
	for b.Loop() {
		var live, first, all []float64
		for range reps {
			ctx, cancel := tab(b, bctx, empty.page)
			var v float64
			eval(b, ctx, `tlstapUI.state.liveAt`, &v)
			live = append(live, v)
			cancel()

			ctx, cancel = tab(b, bctx, full.page)
			waitEvents(b, ctx, 10000)
			var fr, la float64
			eval(b, ctx, `tlstapUI.state.firstRowsAt`, &fr)
			eval(b, ctx, `tlstapUI.state.lastIngestAt`, &la)
			first = append(first, fr)
			all = append(all, la)
			cancel()
		}
		b.ReportMetric(median(live), "ms-live-empty")
		b.ReportMetric(median(first), "ms-first-rows-10k")
		b.ReportMetric(median(all), "ms-all-rows-10k")
		b.Logf("10,000 retained events: stream live on an empty server %.0f ms (baseline); first row %.0f ms, all 10,000 events in %.0f ms (medians of %d)",
			median(live), median(first), median(all), reps)

		// Frame time while streaming, interleaved with idle, the stream
		// in worker.js and (the earlier design, ?worker=0) on the page.
		idleF, busyF := map[string][]float64{}, map[string][]float64{}
		delivered := map[string]uint64{}
		modes := []string{"page", "worker"}
		for range 3 {
			for _, mode := range modes {
				stream := startBenchServer(b)
				url := stream.page
				if mode == "page" {
					url = strings.Replace(url, "/#", "/?worker=0#", 1)
				}
				ctx, cancel := tab(b, bctx, url)
				var got string
				eval(b, ctx, `tlstapUI.streamMode()`, &got)
				if got != mode {
					b.Fatalf("stream mode %q, want %q", got, mode)
				}
				var f []float64
				eval(b, ctx, fmt.Sprintf(frameScript, 3000), &f)
				idleF[mode] = append(idleF[mode], f...)
				stop := make(chan struct{})
				done := make(chan struct{})
				seq := uint64(1)
				go func() {
					defer close(done)
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							for range 20 { // 40 events per 20 ms: 2,000 events/s
								stream.publishPair(seq)
								seq += 2
							}
						}
					}
				}()
				time.Sleep(500 * time.Millisecond)
				eval(b, ctx, fmt.Sprintf(frameScript, 3000), &f)
				busyF[mode] = append(busyF[mode], f...)
				close(stop)
				<-done
				waitEvents(b, ctx, int(seq-1))
				delivered[mode] += seq - 1
				cancel()
			}
		}
		for _, mode := range modes {
			b.ReportMetric(median(idleF[mode]), "ms-frame-idle-"+mode)
			b.ReportMetric(median(busyF[mode]), "ms-frame-2000eps-"+mode)
			b.Logf("frame time, stream on the %s: idle median %.1f ms p95 %.1f ms; at 2,000 events/s median %.1f ms p95 %.1f ms (%d and %d frames; %d events delivered)",
				mode, median(idleF[mode]), pct(idleF[mode], .95), median(busyF[mode]), pct(busyF[mode], .95), len(idleF[mode]), len(busyF[mode]), delivered[mode])
		}

		// Scroll and filter: 1,000 rows (baseline) and 100,000 rows.
		res := map[int][5][]float64{}
		for range 3 {
			for _, n := range []int{1000, 100000} {
				ctx, cancel := tab(b, bctx, empty.page)
				var fill float64
				eval(b, ctx, fmt.Sprintf(fillScript, n), &fill)
				var sc [2][]float64
				eval(b, ctx, scrollScript, &sc)
				var f1, f2 []float64
				eval(b, ctx, fmt.Sprintf(filterScript, "~m POST"), &f1)
				eval(b, ctx, fmt.Sprintf(filterScript, `~h "Host: bench" & status=4xx`), &f2)
				cancel()
				r := res[n]
				r[0] = append(r[0], fill)
				r[1] = append(r[1], sc[0]...)
				r[2] = append(r[2], sc[1]...)
				r[3] = append(r[3], f1[0], f2[0])
				r[4] = append(r[4], f1[1], f2[1])
				res[n] = r
			}
		}
		for _, n := range []int{1000, 100000} {
			r := res[n]
			name := fmt.Sprint(n/1000) + "k"
			b.ReportMetric(median(r[1]), "ms-scroll-"+name)
			b.ReportMetric(median(r[3]), "ms-filter-pass-"+name)
			b.ReportMetric(median(r[4]), "ms-filter-drawn-"+name)
			b.Logf("%d rows: filled in %.0f ms; scroll jump until drawn median %.1f ms (render %.2f ms); filter pass median %.1f ms, until drawn %.1f ms",
				n, median(r[0]), median(r[1]), median(r[2]), median(r[3]), median(r[4]))
		}
	}
}

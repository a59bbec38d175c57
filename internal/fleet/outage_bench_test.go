package fleet

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkOutageMemory measures a publisher's memory while the NATS
// server is away for 30 s (TLSTAP_OUTAGE overrides, a Go duration) and
// events keep coming at 5,000/s: the outage buffer (default 65,536
// entries) fills, the rest is dropped and counted. Reported: the live
// heap before, at its peak during the outage (after a GC each second),
// and after the server is back and the buffer has drained; the process's
// peak RSS; entries dropped. Run with -benchtime 1x.
func BenchmarkOutageMemory(b *testing.B) {
	outage := 30 * time.Second
	if v := os.Getenv("TLSTAP_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		outage = d
	}
	const rate = 5000 // events per second
	dir := b.TempDir()
	s := natsServer(b, 0, dir)
	port := s.Addr().(*net.TCPAddr).Port
	br, p, st, stop := runPublisher(b, natsURL(s, ""), "bench")
	sent := st.Counter("tlstap_sink_sent_total", "", "sink", "nats")
	var seq uint64
	publish := func(n int) {
		for range n {
			seq++
			br.Publish(event("bench", seq, seq%16+1))
		}
	}
	publish(1000)
	for sent.Load() < 1000 {
		time.Sleep(10 * time.Millisecond)
	}
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := live()

	b.ResetTimer()
	s.Shutdown()
	s.WaitForShutdown()
	var peak uint64
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	lastSample := start
	for time.Since(start) < outage {
		<-tick.C
		publish(rate / 100)
		if time.Since(lastSample) >= time.Second {
			peak = max(peak, live())
			lastSample = time.Now()
		}
	}
	tick.Stop()
	peak = max(peak, live())
	during := seq - 1000
	natsServer(b, port, dir)
	deadline := time.Now().Add(5 * time.Minute)
	for p.sub.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	stop()
	after := live()
	dropped := p.Dropped()
	mb := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(mb(before), "MB-heap-before")
	b.ReportMetric(mb(peak), "MB-heap-peak")
	b.ReportMetric(mb(after), "MB-heap-after")
	b.ReportMetric(float64(hwm())/1024, "MB-rss-peak")
	b.ReportMetric(float64(during), "events-during")
	b.ReportMetric(float64(dropped), "dropped")
	if (during > DefaultBuffer+DefaultInFlight && dropped == 0) || dropped >= during {
		b.Fatalf("dropped %d of %d published during the outage: the buffer bound did not apply", dropped, during)
	}
}

// hwm is the process's peak resident set in KiB (VmHWM), 0 if unknown.
func hwm() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

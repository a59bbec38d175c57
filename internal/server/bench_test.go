package server_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/stats"
)

// BenchmarkFanout publishes b.N events and waits until every client has
// read and decoded all of them, over TLS WebSockets on loopback. Client
// queues are large enough for the whole burst, so nothing is dropped and
// the figure is the server's delivery rate. The stalled variants add a
// client that reads nothing, to show it costs the others nothing.
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct {
		name    string
		clients int
		stalled bool
	}{
		{"clients=1", 1, false},
		{"clients=16", 16, false},
		{"clients=16+stalled", 16, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := start(b, server.Options{ClientQueue: max(b.N+16, 4096), WriteTimeout: time.Hour}, broker.Options{RetainEvents: 16})
			if bc.stalled {
				ts.mustDial(b, "logs=0")
			}
			progress := make([]atomic.Uint64, bc.clients)
			var wg sync.WaitGroup
			errs := make(chan error, bc.clients)
			base := ts.b.LastSeq()
			for i := range bc.clients {
				c := ts.mustDial(b, "logs=0")
				readEntry(b, c) // heartbeat: subscribed
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- readAll(c, base+uint64(b.N), &progress[i])
				}()
			}
			msgs := prebuild(base, b.N)
			b.ResetTimer()
			for _, m := range msgs {
				ts.b.Publish(m)
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s/client")
			b.ReportMetric(float64(b.N*bc.clients)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLatency measures one event's trip from a capture chunk entering
// the pipeline (pipeline.Handle, publishing to the broker) to the Go client
// having decoded it, over a TLS WebSocket on loopback, one event at a time.
func BenchmarkLatency(b *testing.B) {
	st := stats.NewSet()
	ts := start(b, server.Options{}, broker.Options{})
	lim := decoder.DefaultLimits()
	lim.RawFlushBytes = 64 // each 64-byte chunk completes one raw message
	p := pipeline.New(pipeline.Options{Limits: lim, Stats: st}, ts.b)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		URL: ts.wsURL(""), Token: ts.token, Fingerprint: ts.Fingerprint().String(),
		Filters: client.Filters{NoLogs: true}, NoReconnect: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Next(ctx); err != nil { // heartbeat: subscribed
		b.Fatal(err)
	}
	chunk := capture.Chunk{
		PID: 4242, TID: 4242, Comm: "bench", FD: 5, Conn: 1, Dir: capture.Write, Kind: capture.Data,
		Local:  netip.MustParseAddrPort("127.0.0.1:50000"),
		Remote: netip.MustParseAddrPort("127.0.0.1:443"),
		Data:   make([]byte, 64),
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		chunk.Time = t0.UnixNano()
		p.Handle(&chunk)
		for {
			m, err := c.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if m.GetEventPayload() != nil {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
}

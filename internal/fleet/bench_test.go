package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
)

// BenchmarkPublish measures events per second from one node's broker into
// JetStream (acknowledged), 1 KiB-class HTTP events.
func BenchmarkPublish(b *testing.B) {
	s := natsServer(b, 0, b.TempDir())
	addr := natsURL(s, "")
	st := stats.NewSet()
	br := broker.New(broker.Options{}, st)
	p, err := NewPublisher(addr, "bench", br, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	sent := st.Counter("tlstap_sink_sent_total", "", "sink", "nats")
	b.ResetTimer()
	for i := range b.N {
		br.Publish(event("bench", uint64(i+1), uint64(i%16+1)))
		// Stay within the outage buffer: this measures throughput, not drops.
		for uint64(i+1)-sent.Load() > DefaultBuffer/2 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	for sent.Load() < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	cancel()
	<-done
	br.Close()
	if p.Dropped() != 0 {
		b.Fatalf("%d dropped", p.Dropped())
	}
}

// BenchmarkConsume measures events per second read back by a viewer.
func BenchmarkConsume(b *testing.B) {
	s := natsServer(b, 0, b.TempDir())
	addr := natsURL(s, "")
	st := stats.NewSet()
	br := broker.New(broker.Options{}, st)
	p, err := NewPublisher(addr, "bench", br, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	sent := st.Counter("tlstap_sink_sent_total", "", "sink", "nats")
	for i := range b.N {
		br.Publish(event("bench", uint64(i+1), uint64(i%16+1)))
		for uint64(i+1)-sent.Load() > DefaultBuffer/2 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	for sent.Load() < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	<-done
	br.Close()

	b.ResetTimer()
	c, err := Subscribe(context.Background(), addr, ConsumerOptions{From: FromAll})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for range b.N {
		if _, err := c.Next(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

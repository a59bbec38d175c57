package fleet

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
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
	// Built before the clock starts, as the raw baseline's are; the
	// broker's marshaling is timed (it is on tlstap's path).
	evs := make([]*eventpb.LogEntry, b.N)
	for i := range evs {
		evs[i] = event("bench", uint64(i+1), uint64(i%16+1))
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		br.Publish(evs[i])
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
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/event")
	cancel()
	<-done
	b.ReportMetric(float64(p.acksAsked)/float64(b.N), "acks/event")
	br.Close()
	if p.Dropped() != 0 {
		b.Fatalf("%d dropped", p.Dropped())
	}
}

// cpuTime is the process's user and system CPU time in ns: on a shared
// machine, CPU per event says more than wall time (it includes the
// in-process NATS server's work, as the figures in docs/benchmarks.md say).
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// publishedStream starts a NATS server and publishes b.N events into its
// stream through a Publisher, for the benchmarks that read them back; it
// returns the server's URL.
func publishedStream(b *testing.B) string {
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
	return addr
}

// BenchmarkConsume measures events per second read back by a viewer.
func BenchmarkConsume(b *testing.B) {
	addr := publishedStream(b)

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

// BenchmarkRawPublish is the baseline for BenchmarkPublish: nats.go's own
// asynchronous JetStream publishing of the same messages (same bytes,
// subject and headers, message ids, same in-flight bound), with no broker
// and no publisher loop, each message acknowledged. Sparse, the same with
// one acknowledgement per 64 messages (what the Publisher does).
func BenchmarkRawPublish(b *testing.B) {
	b.Run("every", func(b *testing.B) { rawPublish(b, 1) })
	b.Run("sparse", func(b *testing.B) { rawPublish(b, maxAckEvery) })
}

func rawPublish(b *testing.B, every int) {
	s := natsServer(b, 0, b.TempDir())
	nc, err := nats.Connect(natsURL(s, ""))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*DefaultInFlight))
	if err != nil {
		b.Fatal(err)
	}
	p := &Publisher{t: Target{Prefix: DefaultPrefix, Stream: DefaultStream, MaxBytes: 0}, node: "bench", run: "raw"}
	if err := p.ensureStream(context.Background(), js); err != nil {
		b.Fatal(err)
	}
	msgs := make([]*nats.Msg, 0, b.N)
	for i := range b.N {
		m := event("bench", uint64(i+1), uint64(i%16+1))
		buf, _ := proto.Marshal(m)
		msgs = append(msgs, p.message(&broker.Entry{Msg: m, Bytes: buf}))
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i, m := range msgs {
		if i%every == every-1 || i == len(msgs)-1 {
			if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
				b.Fatal(err)
			}
		} else if err := nc.PublishMsg(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("acks did not arrive")
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/event")
	st, err := js.Stream(context.Background(), DefaultStream)
	if err != nil {
		b.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != uint64(b.N) {
		b.Fatalf("stream holds %d of %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkView measures events per second through a viewer's Feed: read
// from JetStream, renumbered and published to a broker (which marshals
// each once, as it does for the stream server).
func BenchmarkView(b *testing.B) {
	addr := publishedStream(b)

	view := broker.New(broker.Options{}, nil)
	defer view.Close()
	f, err := NewFeed(addr, view, FeedOptions{Tail: uint64(b.N)})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := f.Prime(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if f.cons != nil {
		f.cons.Close()
	}
	if got := view.LastSeq(); got < uint64(b.N) {
		b.Fatalf("viewer's last seq %d, want >= %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

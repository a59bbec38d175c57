package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
)

// BenchmarkReader decodes a stream of ~300-byte request entries.
func BenchmarkReader(b *testing.B) {
	var buf []byte
	for seq := uint64(1); seq <= 1000; seq++ {
		m, _ := proto.Marshal(request(seq))
		buf = AppendFrame(buf, m)
	}
	b.SetBytes(int64(len(buf)) / 1000)
	b.ReportAllocs()
	r := NewReader(bytes.NewReader(buf))
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			r = NewReader(bytes.NewReader(buf))
		}
	}
}

// BenchmarkTCPSink measures publish → sink → loopback TCP → Reader per
// entry. The publisher waits while the queue holds over 1000 entries, so
// this is the sink's sustained rate, not the speed of dropping.
func BenchmarkTCPSink(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, n := NewReader(c), 0
		for {
			m, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					n = -n
				}
				got <- n
				return
			}
			if m.GetEventPayload() != nil { // not the broker's drop notices
				n++
			}
		}
	}()
	bk := broker.New(broker.Options{RetainEvents: 1}, nil)
	s, err := New("tcp://"+ln.Addr().String(), Options{Queue: 1 << 16}, bk, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	m := request(1)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for s.sub.Len() > 1000 {
			runtime.Gosched()
		}
		bk.Publish(m)
		n++
	}
	cancel() // Run writes out what is still queued before it returns
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if r := <-got; r != n-int(s.Dropped()) {
		b.Fatalf("reader got %d entries, published %d, dropped %d", r, n, s.Dropped())
	}
	b.ReportMetric(float64(s.Dropped()), "dropped")
}

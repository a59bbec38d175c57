package sink

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/tlstap/tlstap/internal/stats"
)

// tcpReader accepts one connection at a time and records every entry's seq.
type tcpReader struct {
	ln   net.Listener
	mu   sync.Mutex
	seqs []uint64
	errs []error
	conn net.Conn
	wg   sync.WaitGroup
}

func listenTCP(t *testing.T, addr string) *tcpReader {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpReader{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conn = c
			r.mu.Unlock()
			rd := NewReader(c)
			for {
				m, err := rd.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
						r.mu.Lock()
						r.errs = append(r.errs, err)
						r.mu.Unlock()
					}
					break
				}
				r.mu.Lock()
				r.seqs = append(r.seqs, m.GetEventPayload().GetSeq())
				r.mu.Unlock()
			}
			c.Close()
		}
	}()
	return r
}

func (r *tcpReader) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...)
}

// kill closes the listener and the live connection, like a reader process dying.
func (r *tcpReader) kill() {
	r.ln.Close()
	r.mu.Lock()
	if r.conn != nil {
		r.conn.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func TestTCPSinkDeliversAndReconnects(t *testing.T) {
	b, st := newBroker()
	r1 := listenTCP(t, "127.0.0.1:0")
	addr := r1.ln.Addr().String()
	s, err := New("tcp://"+addr, fastOpts(Protobuf), b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	defer stop()

	for seq := uint64(1); seq <= 100; seq++ {
		b.Publish(request(seq))
	}
	waitFor(t, "100 entries", func() bool { return len(r1.got()) == 100 })
	for i, seq := range r1.got() {
		if seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: out of order or lost", i, seq)
		}
	}
	r1.kill()
	if len(r1.errs) > 0 {
		t.Fatalf("reader errors: %v", r1.errs)
	}

	// Keep publishing while nobody listens, then bring a reader back on the
	// same port: the sink must find it on its own.
	r2 := listenTCP(t, addr)
	defer r2.kill()
	seq := uint64(100)
	waitFor(t, "entries after reconnect", func() bool {
		seq++
		b.Publish(request(seq))
		return len(r2.got()) >= 10
	})
	got := r2.got()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("entries after reconnect out of order: %v", got)
		}
	}
	if n := st.Value("tlstap_sink_connects_total", "sink", "tcp"); n < 2 {
		t.Errorf("connects = %v, want >= 2", n)
	}
}

// A sink whose peer is gone must cost the publisher nothing: Publish
// returns at once and every entry beyond the queue is counted.
func TestTCPSinkDeadPeerDropsCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now

	b, st := newBroker()
	opts := fastOpts(Protobuf)
	opts.Queue = 8
	s, err := New("tcp://"+addr, opts, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	for seq := uint64(1); seq <= 100; seq++ {
		b.Publish(request(seq))
	}
	if got := s.Dropped(); got != 92 {
		t.Errorf("Dropped = %d, want 92", got)
	}
	if got := st.Value(stats.DropsTotal, "reason", "queue_full_sink_tcp"); got != 92 {
		t.Errorf("%s{queue_full_sink_tcp} = %v, want 92", stats.DropsTotal, got)
	}
	waitFor(t, "a failed connect", func() bool { return st.Value("tlstap_sink_errors_total", "sink", "tcp") > 0 })
	stop()
}

func TestNewRejects(t *testing.T) {
	b, _ := newBroker()
	for _, addr := range []string{"", "file://", "tcp://nohostport", "udp://127.0.0.1:1", "ws://"} {
		if _, err := New(addr, Options{}, b, nil, nil); err == nil {
			t.Errorf("New(%q) accepted", addr)
		}
	}
	if _, err := New("tcp://127.0.0.1:1", Options{Format: "xml"}, b, nil, nil); err == nil {
		t.Error("format xml accepted")
	}
}

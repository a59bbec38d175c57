package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
)

// TestResumeRaw: read part of the stream, drop the connection while events
// keep coming, reconnect with since: every event exactly once.
func TestResumeRaw(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	c := ts.mustDial(t, "logs=0")
	hb := readEntry(t, c).GetHeartbeatPayload()
	last := hb.GetLastSeq()
	for seq := uint64(1); seq <= 100; seq++ {
		ts.b.Publish(event(seq))
	}
	for range 40 {
		ev := nextNonHeartbeat(t, c).GetEventPayload()
		if ev.GetSeq() != last+1 {
			t.Fatalf("seq %d after %d", ev.GetSeq(), last)
		}
		last = ev.GetSeq()
	}
	c.CloseNow()
	for seq := uint64(101); seq <= 200; seq++ {
		ts.b.Publish(event(seq))
	}
	c = ts.mustDial(t, fmt.Sprintf("logs=0&since=%d", last))
	for last < 200 {
		ev := nextNonHeartbeat(t, c).GetEventPayload()
		if ev.GetSeq() != last+1 {
			t.Fatalf("seq %d after %d", ev.GetSeq(), last)
		}
		last = ev.GetSeq()
	}
	ts.b.Publish(event(201))
	if ev := nextNonHeartbeat(t, c).GetEventPayload(); ev.GetSeq() != 201 {
		t.Fatalf("live event after replay: seq %d, want 201", ev.GetSeq())
	}
}

// TestResumeTooOld: a since older than the retained window starts with a
// notice saying how many events are lost.
func TestResumeTooOld(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{RetainEvents: 50})
	for seq := uint64(1); seq <= 100; seq++ {
		ts.b.Publish(event(seq))
	}
	c := ts.mustDial(t, "since=10")
	m := nextNonHeartbeat(t, c)
	if !strings.Contains(m.GetRunLog(), "40 events after seq 10") {
		t.Fatalf("first entry %v, want the missed-40 notice", m)
	}
	if ev := nextNonHeartbeat(t, c).GetEventPayload(); ev.GetSeq() != 51 {
		t.Fatalf("first replayed seq %d, want 51", ev.GetSeq())
	}
}

// TestResumeAfterRestart: a since ahead of the newest event comes from an
// earlier run; the client is told and gets this run from its start.
func TestResumeAfterRestart(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	for seq := uint64(1); seq <= 5; seq++ {
		ts.b.Publish(event(seq))
	}
	c := ts.mustDial(t, "since=1000&logs=0")
	if m := nextNonHeartbeat(t, c); !strings.Contains(m.GetRunLog(), "server restarted") {
		t.Fatalf("first entry %v, want the restart notice", m)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		if ev := nextNonHeartbeat(t, c).GetEventPayload(); ev.GetSeq() != seq {
			t.Fatalf("seq %d, want %d", ev.GetSeq(), seq)
		}
	}
}

// cutProxy forwards loopback TCP connections and can cut them all.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(out, in); out.Close() }()
		go func() { defer p.wg.Done(); io.Copy(in, out); in.Close() }()
	}
}

// cut closes every proxied connection and returns how many pairs it cut.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n
}

// TestResumeGoClient: the Go client reconnects by itself after its
// connection is cut, several times mid-stream, and delivers every event
// exactly once, in order.
func TestResumeGoClient(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	p := newCutProxy(t, ts.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		URL:          "wss://" + p.ln.Addr().String() + "/ws",
		Token:        ts.token,
		Fingerprint:  ts.Fingerprint().String(),
		Filters:      client.Filters{NoLogs: true},
		ReconnectMin: time.Millisecond,
		ReconnectMax: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The stream starts after the first heartbeat's last_seq.
	hb, err := c.Next(ctx)
	if err != nil || hb.GetHeartbeatPayload() == nil {
		t.Fatalf("first entry %v, %v; want heartbeat", hb, err)
	}
	last := hb.GetHeartbeatPayload().GetLastSeq()

	const n, cuts = 3000, 5
	done, nextCut := 0, uint64(n/(cuts+1))
	// The publisher stays at most a window ahead of the reader, so the
	// stream is still flowing at every cut.
	var seen atomic.Uint64
	seen.Store(last)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for seq := last + 1; seq <= n; seq++ {
			for seq > seen.Load()+200 && ctx.Err() == nil {
				time.Sleep(100 * time.Microsecond)
			}
			ts.b.Publish(event(seq))
		}
	}()
	for last < n {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after seq %d: %v", last, err)
		}
		ev := m.GetEventPayload()
		if ev == nil {
			if m.GetRunLog() != "" {
				t.Fatalf("unexpected notice: %s", m.GetRunLog())
			}
			continue
		}
		if ev.GetSeq() != last+1 {
			t.Fatalf("seq %d after %d: gap or duplicate", ev.GetSeq(), last)
		}
		last = ev.GetSeq()
		seen.Store(last)
		// Cut once the client is on a new connection: it may still be
		// delivering what it buffered from the previous one.
		if last >= nextCut && c.Reconnects() == done && p.cut() > 0 {
			done++
			nextCut = last + n/(cuts+1)
		}
	}
	<-pubDone
	if done < cuts {
		t.Errorf("cut only %d times", done)
	}
	waitFor(t, "the client to notice every cut", func() bool { return c.Reconnects() >= done })
	t.Logf("%d events over %d reconnects", n, c.Reconnects())
}

package server_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

var missedRE = regexp.MustCompile(`slow client: (\d+) entries were dropped`)

// TestLoadWithStalledClient: 16 clients each receive 100,000 events with
// zero loss while a 17th reads nothing; the stalled one is later told
// exactly how many it missed.
//
// The broker never makes the publisher wait (capture cannot be paused),
// so zero loss for clients that keep up means the burst they fall behind
// by must fit their queue. The publisher here stays at most half a queue
// ahead of the slowest active client, as a capture source producing at a
// rate the clients can follow would; the stalled client gets no such
// consideration.
func TestLoadWithStalledClient(t *testing.T) {
	const (
		clients = 16
		n       = 100_000
		queue   = 4096
		window  = queue / 2
	)
	ts := start(t, server.Options{ClientQueue: queue, WriteTimeout: 5 * time.Minute}, broker.Options{})
	// Every client has subscribed once its first heartbeat arrived.
	stalled := ts.mustDial(t, "logs=0")
	readEntry(t, stalled)

	progress := make([]atomic.Uint64, clients)
	errs := make(chan error, clients)
	failed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = ts.mustDial(t, "logs=0")
		readEntry(t, conns[i])
	}
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := readAll(c, n, &progress[i])
			if err != nil {
				// Unblock the publisher and the other readers.
				once.Do(func() {
					close(failed)
					for _, c := range conns {
						c.CloseNow()
					}
				})
			}
			errs <- err
		}()
	}

	begin := time.Now()
publish:
	for seq := uint64(1); seq <= n; seq++ {
		if seq%256 == 0 {
			for seq > minProgress(progress)+window {
				select {
				case <-failed:
					break publish
				case <-time.After(50 * time.Microsecond):
				}
			}
		}
		ts.b.Publish(smallEvent(seq))
	}
	wg.Wait()
	elapsed := time.Since(begin)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d clients x %d events in %v: %.0f events/s per client, %.0f messages/s total, with one stalled client",
		clients, n, elapsed.Round(time.Millisecond), n/elapsed.Seconds(), clients*n/elapsed.Seconds())
	if d := ts.st.Value("tlstap_drops_total", "reason", "queue_full_ws"); d == 0 {
		t.Fatal("the stalled client dropped nothing: the test did not stall it")
	}

	// Now the stalled client reads: what it gets plus what it is told it
	// missed is the whole stream, in order.
	var got, missed, last uint64
	for got+missed < n {
		m, err := tryRead(stalled, 30*time.Second)
		if err != nil {
			t.Fatalf("stalled client after %d events, %d missed: %v", got, missed, err)
		}
		if ev := m.GetEventPayload(); ev != nil {
			if ev.GetSeq() <= last {
				t.Fatalf("stalled client: seq %d after %d", ev.GetSeq(), last)
			}
			last = ev.GetSeq()
			got++
		} else if sm := missedRE.FindStringSubmatch(m.GetRunLog()); sm != nil {
			k, _ := strconv.ParseUint(sm[1], 10, 64)
			missed += k
		}
	}
	if got+missed != n || missed == 0 {
		t.Fatalf("stalled client: %d received + %d missed, want %d with some missed", got, missed, n)
	}
	t.Logf("stalled client: received %d, told it missed %d", got, missed)
}

// smallEvent is a typical small event (a short raw read), cheap to build
// so the publisher is not the bottleneck.
func smallEvent(seq uint64) *eventpb.LogEntry {
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Timestamp: int64(seq), Seq: seq, Pid: 4242, Pname: "curl", SrcIp: "127.0.0.1", SrcPort: 50000,
			DstIp: "127.0.0.1", DstPort: 443, Uuid: "4242_4242_curl_5_0_1", Length: 64, Payload: make([]byte, 64),
		}},
	}
}

// readAll reads n events and checks they arrive in order without gaps.
func readAll(c *websocket.Conn, n uint64, progress *atomic.Uint64) error {
	var last uint64
	for last < n {
		m, err := tryRead(c, 60*time.Second)
		if err != nil {
			return fmt.Errorf("after seq %d: %w", last, err)
		}
		ev := m.GetEventPayload()
		if ev == nil {
			if m.GetRunLog() != "" {
				return fmt.Errorf("after seq %d: %s", last, m.GetRunLog())
			}
			continue
		}
		if ev.GetSeq() != last+1 {
			return fmt.Errorf("seq %d after %d", ev.GetSeq(), last)
		}
		last = ev.GetSeq()
		progress.Store(last)
	}
	return nil
}

func minProgress(p []atomic.Uint64) uint64 {
	m := p[0].Load()
	for i := range p[1:] {
		m = min(m, p[i+1].Load())
	}
	return m
}

// TestStalledClientDisconnected: a client whose socket stays full for
// WriteTimeout is disconnected and counted; the others are unaffected.
func TestStalledClientDisconnected(t *testing.T) {
	ts := start(t, server.Options{WriteTimeout: 200 * time.Millisecond, ClientQueue: 64}, broker.Options{})
	stalled := ts.mustDial(t, "logs=0")
	waitFor(t, "client", func() bool { return ts.ClientCount() == 1 })
	big := event(1)
	big.GetEventPayload().Payload = make([]byte, 256<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for seq := uint64(1); ts.st.Value("tlstap_server_slow_disconnects_total") == 0; seq++ {
		if ctx.Err() != nil {
			t.Fatal("the stalled client was never disconnected")
		}
		big.GetEventPayload().Seq = seq
		ts.b.Publish(big)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "disconnect", func() bool { return ts.ClientCount() == 0 })
	// Reading again, the client drains what its socket held and then
	// finds the connection closed.
	for {
		if _, err := tryRead(stalled, 10*time.Second); err != nil {
			t.Logf("stalled client: %v (close status %d)", err, websocket.CloseStatus(err))
			break
		}
	}
	// A new client is served as usual.
	c := ts.mustDial(t, "logs=0")
	if readEntry(t, c).GetHeartbeatPayload() == nil {
		t.Fatal("no heartbeat")
	}
}

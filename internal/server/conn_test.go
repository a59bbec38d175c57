package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
	"go.uber.org/goleak"
	xws "golang.org/x/net/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestStreamGoClient: heartbeat first, then the log backlog, then live
// events, every field intact, through TLS with a pinned fingerprint.
func TestStreamGoClient(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	ts.b.Publish(event(1)) // before the client: neither backlog nor replayed
	logs := []string{"tlstap starting", "attached to libssl"}
	for _, l := range logs {
		ts.b.Publish(processLog(l))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := time.Now().UnixNano()
	c, err := client.Dial(ctx, client.Options{
		URL:         ts.wsURL(""),
		Token:       ts.Token(),
		Fingerprint: ts.Fingerprint().String(),
		NoReconnect: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	hb, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := hb.GetHeartbeatPayload()
	if hb.GetLogType() != eventpb.LogType_LOG_TYPE_HEARTBEAT || h == nil {
		t.Fatalf("first entry %v, want heartbeat", hb)
	}
	if h.GetCount() != 1 || h.GetMessage() != server.HeartbeatMessage || h.GetLastSeq() != 1 ||
		h.GetTimestamp() < before || h.GetTimestamp() > time.Now().UnixNano() {
		t.Errorf("heartbeat = %v; want count 1, message %q, last_seq 1, timestamp now", h, server.HeartbeatMessage)
	}
	for _, want := range logs {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.GetLogType() != eventpb.LogType_LOG_TYPE_PROCESS_LOG || m.GetRunLog() != want {
			t.Fatalf("backlog entry %v, want process log %q", m, want)
		}
	}
	const n = 500
	for seq := uint64(2); seq < n+2; seq++ {
		ts.b.Publish(event(seq))
	}
	ts.b.Publish(processLog("live log line"))
	for seq := uint64(2); seq < n+2; seq++ {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m, event(seq)) {
			t.Fatalf("entry %d:\n got %v\nwant %v", seq, m, event(seq))
		}
	}
	if m, err := c.Next(ctx); err != nil || m.GetRunLog() != "live log line" {
		t.Fatalf("after events: %v, %v; want the live log line", m, err)
	}
	if got := c.LastSeq(); got != n+1 {
		t.Errorf("LastSeq = %d, want %d", got, n+1)
	}
}

// TestHeartbeats: counted per connection from 1 with no gap; last_seq is
// never behind an event the connection already delivered, nor ahead of the
// broker.
func TestHeartbeats(t *testing.T) {
	ts := start(t, server.Options{Heartbeat: 20 * time.Millisecond}, broker.Options{})
	c := ts.mustDial(t, "logs=0")
	var count int64
	var delivered uint64 // highest seq delivered on this connection
	for count < 4 || delivered < 2 {
		m := readEntry(t, c)
		if ev := m.GetEventPayload(); ev != nil {
			delivered = max(delivered, ev.GetSeq())
			continue
		}
		h := m.GetHeartbeatPayload()
		if h == nil {
			t.Fatalf("got %v, want heartbeat", m)
		}
		count++
		if h.GetCount() != count {
			t.Fatalf("heartbeat count %d, want %d", h.GetCount(), count)
		}
		if h.GetLastSeq() < delivered || h.GetLastSeq() > ts.b.LastSeq() {
			t.Fatalf("heartbeat last_seq %d: delivered %d, broker at %d", h.GetLastSeq(), delivered, ts.b.LastSeq())
		}
		if count == 2 {
			ts.b.Publish(event(1))
			ts.b.Publish(event(2))
		}
	}
	// A second connection counts from 1 again.
	c2 := ts.mustDial(t, "")
	if h := readEntry(t, c2).GetHeartbeatPayload(); h.GetCount() != 1 || h.GetLastSeq() != 2 {
		t.Fatalf("second connection's first heartbeat = %v, want count 1, last_seq 2", h)
	}
}

// TestFilteredStream: server-side filters through the Go client.
func TestFilteredStream(t *testing.T) {
	tests := []struct {
		name    string
		filters client.Filters
		want    func(ev *eventpb.Event) bool
		logs    bool
	}{
		{"all", client.Filters{}, func(*eventpb.Event) bool { return true }, true},
		{"pid", client.Filters{PIDs: []int64{1001, 1003}}, func(e *eventpb.Event) bool { return e.Pid == 1001 || e.Pid == 1003 }, true},
		{"pname+type", client.Filters{Pnames: []string{"curl"}, Types: []string{"raw", "3"}, NoLogs: true},
			func(e *eventpb.Event) bool { return e.Pname == "curl" && (e.Type == 0 || e.Type == 3) }, false},
		{"host", client.Filters{Hosts: []string{"*.EXAMPLE.com"}}, func(e *eventpb.Event) bool { return e.Host == "api.example.com:8443" }, true},
		{"host-any-port", client.Filters{Hosts: []string{"api.example.com"}}, func(e *eventpb.Event) bool { return e.Host == "api.example.com:8443" }, true},
		{"port", client.Filters{Ports: []uint16{444, 40007}}, func(e *eventpb.Event) bool { return e.DstPort == 444 || e.SrcPort == 40007 }, true},
		{"type-name", client.Filters{Types: []string{"response"}}, func(e *eventpb.Event) bool { return e.Type == 3 || e.Type == 4 }, true},
	}
	ts := start(t, server.Options{}, broker.Options{})
	ts.b.Publish(processLog("backlog"))
	const n = 300
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, client.Options{
				URL: ts.wsURL(""), Token: ts.Token(), Fingerprint: ts.Fingerprint().String(),
				Filters: tt.filters, NoReconnect: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Subscribed once the first heartbeat is there; the stream
			// starts after its last_seq.
			hb, err := c.Next(ctx)
			if err != nil || hb.GetHeartbeatPayload() == nil {
				t.Fatalf("first entry %v, %v; want heartbeat", hb, err)
			}
			base := hb.GetHeartbeatPayload().GetLastSeq()
			var want []uint64
			for seq := base + 1; seq <= base+n; seq++ {
				e := event(seq)
				ts.b.Publish(e)
				if tt.want(e.GetEventPayload()) {
					want = append(want, seq)
				}
			}
			ts.b.Publish(processLog("end"))
			// Events arrive in seq order and each is checked against the
			// filter, so reading until all wanted ones arrived (and, with
			// logs, the log published after them) sees every mistake.
			var got []uint64
			sawLogs, sawEnd := false, false
			for len(got) < len(want) || (tt.logs && !sawEnd) {
				m, err := c.Next(ctx)
				if err != nil {
					t.Fatalf("after %d of %d events: %v", len(got), len(want), err)
				}
				if ev := m.GetEventPayload(); ev != nil {
					if !tt.want(ev) {
						t.Fatalf("event %d passed the filter: %v", ev.Seq, ev)
					}
					got = append(got, ev.Seq)
				}
				if m.GetRunLog() != "" {
					sawLogs = true
					sawEnd = m.GetRunLog() == "end"
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d events, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("event %d: seq %d, want %d", i, got[i], want[i])
				}
			}
			if sawLogs != tt.logs {
				t.Errorf("saw process logs = %v, want %v", sawLogs, tt.logs)
			}
		})
	}
}

// TestClientsComeAndGo: no goroutine outlives its client while the server
// keeps running.
func TestClientsComeAndGo(t *testing.T) {
	ts := start(t, server.Options{Heartbeat: 10 * time.Millisecond}, broker.Options{})
	// Warm up the HTTP machinery whose idle goroutines are not per client.
	c := ts.mustDial(t, "")
	readEntry(t, c)
	c.CloseNow()
	waitFor(t, "client gone", func() bool { return ts.ClientCount() == 0 })
	ignore := goleak.IgnoreCurrent()

	for range 5 {
		conns := make([]interface{ CloseNow() error }, 0, 4)
		for range 4 {
			c := ts.mustDial(t, "")
			readEntry(t, c)
			conns = append(conns, c)
		}
		waitFor(t, "4 clients", func() bool { return ts.ClientCount() == 4 })
		ts.b.Publish(event(ts.b.LastSeq() + 1))
		for _, c := range conns {
			c.CloseNow()
		}
		waitFor(t, "clients gone", func() bool { return ts.ClientCount() == 0 })
	}
	// Find retries for a while, so goroutines still unwinding are fine.
	if err := goleak.Find(ignore); err != nil {
		t.Fatal(err)
	}
	if got := ts.st.Value("tlstap_server_clients_total", "listener", "main"); got != 21 {
		t.Errorf("clients_total = %v, want 21", got)
	}
}

func TestMaxClients(t *testing.T) {
	ts := start(t, server.Options{MaxClients: 2}, broker.Options{})
	for range 2 {
		readEntry(t, ts.mustDial(t, ""))
	}
	c, resp, err := ts.dial(t, "", nil)
	if c != nil {
		c.CloseNow()
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %v %v, want 503", resp, err)
	}
	if got := ts.st.Value("tlstap_server_rejected_total", "reason", "too_many_clients"); got != 1 {
		t.Errorf("rejected{too_many_clients} = %v, want 1", got)
	}
}

// TestClientMessagesDiscarded: what a client writes is read and dropped;
// its stream carries on.
func TestClientMessagesDiscarded(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	c := ts.mustDial(t, "logs=0")
	readEntry(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 200 {
		typ := websocket.MessageText
		if i%2 == 1 {
			typ = websocket.MessageBinary
		}
		if err := c.Write(ctx, typ, []byte(strings.Repeat("hello server ", 300))); err != nil {
			t.Fatal(err)
		}
	}
	ts.b.Publish(event(1))
	if ev := nextNonHeartbeat(t, c).GetEventPayload(); ev.GetSeq() != 1 {
		t.Fatalf("got %v, want event 1", ev)
	}
}

// TestOversizedClientMessage: a message over ReadLimit closes the
// connection with 1009.
func TestOversizedClientMessage(t *testing.T) {
	ts := start(t, server.Options{ReadLimit: 1024}, broker.Options{})
	c := ts.mustDial(t, "")
	readEntry(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageBinary, make([]byte, 1<<20))
	for {
		_, err := tryRead(c, 10*time.Second)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Fatalf("read: %v (close status %d), want %d", err, got, websocket.StatusMessageTooBig)
		}
		break
	}
	waitFor(t, "client gone", func() bool { return ts.ClientCount() == 0 })
}

// TestGarbageFrames: broken WebSocket framing after a valid handshake ends
// the connection without harming the server.
func TestGarbageFrames(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	frame := func(b0, b1 byte, ext ...byte) []byte { return append([]byte{b0, b1}, ext...) }
	huge := make([]byte, 8)
	binary.BigEndian.PutUint64(huge, 1<<63-1)
	tests := []struct {
		name string
		data []byte
	}{
		{"unmasked", frame(0x82, 0x05, 'h', 'e', 'l', 'l', 'o')},
		{"reserved opcode", frame(0x83, 0x80, 0, 0, 0, 0)},
		{"rsv bits", frame(0xf2, 0x80, 0, 0, 0, 0)},
		{"fragmented ping", frame(0x09, 0x80, 0, 0, 0, 0)},
		{"oversized control", frame(0x89, 0xfe, append([]byte{0x01, 0x00}, 0, 0, 0, 0)...)},
		// The frame header is accepted; the read limit trips once more
		// than ReadLimit bytes of it arrived.
		{"huge length", append(frame(0x82, 0xff, append(huge, 1, 2, 3, 4)...), make([]byte, 8<<10)...)},
		{"continuation first", frame(0x80, 0x80, 0, 0, 0, 0)},
		{"bad close payload", frame(0x88, 0x81, 0, 0, 0, 0, 0x01)},
		{"random", []byte("\x00\xff\x13\x37 not websocket at all \r\n\r\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ts.Addr().String(), tlsauth.PinnedConfig(ts.Fingerprint()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			req := "GET /ws HTTP/1.1\r\nHost: " + ts.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer " + ts.token + "\r\n\r\n"
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %s", resp.Status)
			}
			if _, err := conn.Write(tt.data); err != nil {
				t.Fatal(err)
			}
			// The server must hang up: read until EOF or reset.
			if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("waiting for the server to close: %v", err)
			}
			waitFor(t, "client gone", func() bool { return ts.ClientCount() == 0 })
		})
	}
	// Garbage instead of a handshake.
	conn, err := tls.Dial("tcp", ts.Addr().String(), tlsauth.PinnedConfig(ts.Fingerprint()))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "\x16\x03\x01 nonsense\r\n\r\n")
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage request: %v %v, want 400", resp, err)
	}
	conn.Close()
}

// TestShutdown: every client gets a going-away close frame, Run returns
// and nothing is left running.
func TestShutdown(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ts := start(t, server.Options{}, broker.Options{})
	var raws []*websocket.Conn
	for range 3 {
		c := ts.mustDial(t, "pid=1001")
		readEntry(t, c)
		raws = append(raws, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gc, err := client.Dial(ctx, client.Options{URL: ts.wsURL(""), Token: ts.token, Fingerprint: ts.Fingerprint().String(), NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "clients", func() bool { return ts.ClientCount() == 4 })
	// A client that stopped reading must not hold up shutdown for long.
	stuck := ts.mustDial(t, "pid=4242")
	big := event(1)
	big.GetEventPayload().Pid = 4242
	big.GetEventPayload().Payload = make([]byte, 1<<20)
	for range 40 {
		ts.b.Publish(big)
	}

	if err := ts.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, c := range raws {
		for {
			_, err := tryRead(c, 10*time.Second)
			if err == nil {
				continue
			}
			if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
				t.Errorf("client %d: %v, want close status %d", i, err, websocket.StatusGoingAway)
			}
			break
		}
	}
	for {
		if _, err := gc.Next(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("Go client ended with %v, want going away", err)
			}
			break
		}
	}
	stuck.CloseNow()
	if err := goleak.Find(ignore); err != nil {
		t.Fatal(err)
	}
}

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

// ecqReader is what an ecapture-style client does: read binary frames and
// unmarshal each as one LogEntry.
type ecqReader func() ([]byte, error)

// xnetClient connects like ecapture's example client: golang.org/x/net
// websocket with Origin http://localhost/.
func xnetClient(t *testing.T, url string) ecqReader {
	cfg, err := xws.NewConfig(url, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := xws.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return func() ([]byte, error) {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b []byte
		err := xws.Message.Receive(ws, &b)
		return b, err
	}
}

// gorillaClient uses another library, and other paths and Origins that
// the eCaptureQ listener accepts.
func gorillaClient(t *testing.T, url string, origin string) ecqReader {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := gorilla.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return func() ([]byte, error) {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, b, err := ws.ReadMessage()
		if err == nil && typ != gorilla.BinaryMessage {
			t.Errorf("message type %d, want binary", typ)
		}
		return b, err
	}
}

func TestECaptureQClients(t *testing.T) {
	ts := start(t, server.Options{Listen: "-", ECaptureQ: "ws://127.0.0.1:0/"}, broker.Options{})
	if ts.Addr() != nil {
		t.Fatal("main listener enabled")
	}
	addr := ts.ECaptureQAddr().String()
	ts.b.Publish(processLog("eCapture-compatible backlog"))

	clients := map[string]ecqReader{
		"x/net origin localhost": xnetClient(t, "ws://"+addr+"/"),
		"gorilla no origin":      gorillaClient(t, "ws://"+addr+"/", ""),
		"gorilla other path":     gorillaClient(t, "ws://"+addr+"/some/where?logs=1", "http://localhost/"),
		"gorilla tauri origin":   gorillaClient(t, "ws://"+addr+"/ws", "tauri://localhost"),
	}
	next := func(t *testing.T, read ecqReader) *eventpb.LogEntry {
		t.Helper()
		b, err := read()
		if err != nil {
			t.Fatal(err)
		}
		m := new(eventpb.LogEntry)
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The heartbeat comes right after connect, then the log backlog; once
	// they are there the client is subscribed.
	for name, read := range clients {
		hb := next(t, read).GetHeartbeatPayload()
		if hb.GetCount() != 1 || hb.GetMessage() != server.HeartbeatMessage || hb.GetLastSeq() != 0 {
			t.Fatalf("%s: first message %v, want heartbeat 1 with last_seq 0", name, hb)
		}
		if m := next(t, read); m.GetRunLog() != "eCapture-compatible backlog" || m.GetLogType() != eventpb.LogType_LOG_TYPE_PROCESS_LOG {
			t.Fatalf("%s: second message %v, want the backlog log", name, m)
		}
	}
	const n = 200
	for seq := uint64(1); seq <= n; seq++ {
		ts.b.Publish(event(seq))
	}
	for name, read := range clients {
		t.Run(name, func(t *testing.T) {
			for seq := uint64(1); seq <= n; seq++ {
				m := next(t, read)
				if m.GetLogType() == eventpb.LogType_LOG_TYPE_HEARTBEAT {
					seq--
					continue
				}
				if !proto.Equal(m, event(seq)) {
					t.Fatalf("event %d:\n got %v\nwant %v", seq, m, event(seq))
				}
			}
		})
	}
}

func TestECaptureQToken(t *testing.T) {
	ts := start(t, server.Options{Listen: "-", ECaptureQ: "ws://127.0.0.1:0/?token=a-long-enough-secret"}, broker.Options{})
	addr := ts.ECaptureQAddr().String()
	if _, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/", nil); err == nil {
		t.Fatal("connected without the token")
	} else if err != gorilla.ErrBadHandshake {
		t.Fatal(err)
	}
	read := gorillaClient(t, "ws://"+addr+"/?token=a-long-enough-secret", "http://localhost/")
	if _, err := read(); err != nil {
		t.Fatal(err)
	}
	if urls := ts.URLs(); len(urls) != 1 || urls[0] != "ws://"+addr+"/?token=a-long-enough-secret" {
		t.Errorf("URLs() = %q", urls)
	}
}

func TestBadQuery(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	for _, tt := range []struct{ query, wantInBody string }{
		{"bogus=1", `"bogus"`},
		{"pid=abc", `"pid"`},
		{"pid=-1", `"pid"`},
		{"pid=1,,2", `"pid"`},
		{"port=70000", `"port"`},
		{"type=9", `"type"`},
		{"type=gopher", `"type"`},
		{"logs=maybe", `"logs"`},
		{"since=x", `"since"`},
		{"since=1&since=2", `"since"`},
		{"host=" + strings.Repeat("h", 300), `"host"`},
		{"pid=" + strings.Repeat("1,", 100) + "1", `"pid"`},
	} {
		t.Run(tt.query[:min(len(tt.query), 20)], func(t *testing.T) {
			c, resp, err := ts.dial(t, tt.query, nil)
			if c != nil {
				c.CloseNow()
				t.Fatal("accepted")
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			// coder/websocket keeps the first 1 KiB of the body.
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tt.wantInBody) {
				t.Fatalf("body %q does not name %s", body, tt.wantInBody)
			}
		})
	}
}

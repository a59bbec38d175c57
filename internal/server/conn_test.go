package server_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
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

package fleet

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// runPublisher starts a publisher for node on a fresh broker; stop ends it
// and waits.
func runPublisher(t testing.TB, addr, node string) (b *broker.Broker, p *Publisher, st *stats.Set, stop func()) {
	t.Helper()
	st = stats.NewSet()
	b = broker.New(broker.Options{}, st)
	p, err := NewPublisher(addr, node, b, st, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("publisher %s: %v", node, err)
			}
			b.Close()
		})
	}
	t.Cleanup(stop)
	return b, p, st, stop
}

// readAll consumes from the stream until want events arrived or the
// deadline passes.
func readAll(t *testing.T, addr string, o ConsumerOptions, want int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Subscribe(ctx, addr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []Message
	for n := 0; n < want; {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", n, want, err)
		}
		got = append(got, m)
		if m.Entry.GetEventPayload() != nil {
			n++
		}
	}
	return got
}

// TestThreeNodes: three nodes publish N events each; a viewer gets every
// event exactly once, tagged with its node, in per-connection order.
func TestThreeNodes(t *testing.T) {
	s := natsServer(t, 0, t.TempDir())
	addr := natsURL(s, "max_age=1h")
	const n, conns = 1500, 7
	nodes := []string{"node-a", "node-b", "node.c"}
	var wg sync.WaitGroup
	for _, node := range nodes {
		b, _, st, stop := runPublisher(t, addr, node)
		wg.Go(func() {
			// In slices that fit the outage buffer: this test is about
			// delivery, not about dropping.
			for i := uint64(0); i < n; i += 500 {
				publishN(b, node, i, 500, conns)
				// Not waitFor: t.Fatal must not run on this goroutine.
				sent := st.Counter("tlstap_sink_sent_total", "", "sink", "nats")
				for deadline := time.Now().Add(30 * time.Second); sent.Load() < i+500 && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			stop()
		})
	}
	wg.Wait()

	got := readAll(t, addr, ConsumerOptions{From: FromAll}, n*len(nodes))
	type key struct {
		node string
		conn uint64
	}
	last := map[key]uint64{}
	seen := map[string]map[uint64]bool{}
	for _, m := range got {
		ev := m.Entry.GetEventPayload()
		if ev == nil {
			continue
		}
		if m.Node != ev.GetNode() {
			t.Fatalf("header node %q, event node %q", m.Node, ev.GetNode())
		}
		if seen[m.Node] == nil {
			seen[m.Node] = map[uint64]bool{}
		}
		if seen[m.Node][ev.GetSeq()] {
			t.Fatalf("duplicate %s seq %d", m.Node, ev.GetSeq())
		}
		seen[m.Node][ev.GetSeq()] = true
		k := key{m.Node, ev.GetConnId()}
		if ev.GetSeq() <= last[k] {
			t.Fatalf("%s conn %d: seq %d after %d", k.node, k.conn, ev.GetSeq(), last[k])
		}
		last[k] = ev.GetSeq()
	}
	for _, node := range nodes {
		if len(seen[node]) != n {
			t.Errorf("node %s: %d events, want %d", node, len(seen[node]), n)
		}
	}
}

// TestOutage: the server is shut down and restarted on the same port and
// store while a node publishes. What fits the outage buffer arrives once
// and in order; the excess is counted, and the count plus what arrived is
// everything published.
func TestOutage(t *testing.T) {
	for _, tc := range []struct {
		name           string
		buffer, during int
	}{
		{"within the buffer", 1000, 600},
		{"beyond the buffer", 300, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := natsServer(t, 0, dir)
			port := s.Addr().(*net.TCPAddr).Port
			const inflight = 64
			addr := natsURL(s, fmt.Sprintf("buffer=%d&inflight=%d", tc.buffer, inflight))
			b, p, st, stop := runPublisher(t, addr, "n1")

			const before, after = 200, 200
			publishN(b, "n1", 0, before, 3)
			waitFor(t, func() bool { return st.Counter("tlstap_sink_sent_total", "", "sink", "nats").Load() == before }, st)

			s.Shutdown()
			s.WaitForShutdown()
			publishN(b, "n1", before, uint64(tc.during), 3)
			natsServer(t, port, dir)
			waitFor(t, func() bool { return p.sub.Len() == 0 }, st)
			publishN(b, "n1", before+uint64(tc.during), after, 3)
			total := before + tc.during + after
			dropped := int(p.Dropped())
			// A notice of the drop is sent too, as one more message.
			waitFor(t, func() bool {
				return int(st.Counter("tlstap_sink_sent_total", "", "sink", "nats").Load()) >= total-dropped
			}, st)
			stop()

			if tc.during <= tc.buffer && dropped != 0 {
				t.Errorf("%d dropped within the buffer bound", dropped)
			}
			// The bound is the buffer plus what was taken out of it to
			// be sent (in flight) when the server went away.
			if bound := tc.buffer + inflight; tc.during > bound && dropped < tc.during-bound {
				t.Errorf("dropped %d, want at least %d", dropped, tc.during-bound)
			}
			if c := st.Counter(stats.DropsTotal, "", "reason", "queue_full_sink_nats").Load(); int(c) != dropped {
				t.Errorf("drops metric %d, Dropped() %d", c, dropped)
			}

			got := readAll(t, addr, ConsumerOptions{From: FromAll}, total-dropped)
			var prev uint64
			events := 0
			for _, m := range got {
				ev := m.Entry.GetEventPayload()
				if ev == nil {
					continue
				}
				if ev.GetSeq() <= prev {
					t.Fatalf("seq %d after %d: duplicate or out of order", ev.GetSeq(), prev)
				}
				prev = ev.GetSeq()
				events++
			}
			if events+dropped != total {
				t.Errorf("%d arrived + %d dropped != %d published", events, dropped, total)
			}
			t.Logf("%d published, %d arrived, %d dropped and counted", total, events, dropped)
		})
	}
}

// TestResume: a viewer stopped mid-stream and started again after the
// last sequence it saw gets the rest with no gap and no duplicate.
func TestResume(t *testing.T) {
	s := natsServer(t, 0, t.TempDir())
	addr := natsURL(s, "")
	b, _, st, stop := runPublisher(t, addr, "n1")
	publishN(b, "n1", 0, 300, 2)
	waitFor(t, func() bool { return st.Counter("tlstap_sink_sent_total", "", "sink", "nats").Load() == 300 }, st)

	first := readAll(t, addr, ConsumerOptions{From: FromAll}, 120)
	lastSeq := first[len(first)-1].Seq
	publishN(b, "n1", 300, 200, 2)
	stop()
	rest := readAll(t, addr, ConsumerOptions{From: FromAfter, After: lastSeq}, 380)

	var want uint64 = 1
	for _, m := range append(first, rest...) {
		if ev := m.Entry.GetEventPayload(); ev != nil {
			if ev.GetSeq() != want {
				t.Fatalf("got seq %d, want %d", ev.GetSeq(), want)
			}
			want++
		}
	}
	if want != 501 {
		t.Fatalf("got %d events, want 500", want-1)
	}
}

// TestNodeFilter: a consumer restricted to one node sees only its events.
func TestNodeFilter(t *testing.T) {
	s := natsServer(t, 0, t.TempDir())
	addr := natsURL(s, "")
	for _, node := range []string{"a", "b"} {
		b, _, st, stop := runPublisher(t, addr, node)
		publishN(b, node, 0, 50, 1)
		waitFor(t, func() bool { return st.Counter("tlstap_sink_sent_total", "", "sink", "nats").Load() == 50 }, st)
		stop()
	}
	for _, m := range readAll(t, addr, ConsumerOptions{From: FromAll, Nodes: []string{"b"}}, 50) {
		if m.Node != "b" {
			t.Fatalf("node %q through a filter for b", m.Node)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, st ...*stats.Set) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, s := range st {
				for _, smp := range s.Snapshot() {
					t.Log(smp.Name, smp.Labels, smp.Value)
				}
			}
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMessage: the message built for an entry has the subject Subject and
// Kind name, and the headers as nats.Header.Get reads them, for every
// event type, an unknown one, a log entry, an event of another node and
// one with a container and pod; message ids are unique.
func TestMessage(t *testing.T) {
	p := &Publisher{t: Target{Prefix: "pfx"}, node: "self.host", run: "r1"}
	logEntry := &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "hi"}}
	ev := func(typ uint32, node, cont, ns, pod string) *eventpb.LogEntry {
		return &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Type: typ, Uuid: "u-1", Node: node, ContainerId: cont, PodNamespace: ns, PodName: pod}}}
	}
	tests := []struct {
		name      string
		m         *eventpb.LogEntry
		node      string
		subject   string
		container string
		pod       string
		uuid      string
	}{
		{"raw", ev(0, "", "", "", ""), "self.host", "pfx.self_host.raw", "", "", "u-1"},
		{"http1 request", ev(1, "", "", "", ""), "self.host", "pfx.self_host.http1_request", "", "", "u-1"},
		{"http2 request", ev(2, "", "", "", ""), "self.host", "pfx.self_host.http2_request", "", "", "u-1"},
		{"http1 response", ev(3, "", "", "", ""), "self.host", "pfx.self_host.http1_response", "", "", "u-1"},
		{"http2 response", ev(4, "", "", "", ""), "self.host", "pfx.self_host.http2_response", "", "", "u-1"},
		{"websocket", ev(5, "", "", "", ""), "self.host", "pfx.self_host.websocket", "", "", "u-1"},
		{"unknown type", ev(99, "", "", "", ""), "self.host", "pfx.self_host.unknown", "", "", "u-1"},
		{"log", logEntry, "self.host", "pfx.self_host.log", "", "", ""},
		{"other node", ev(1, "web 2", "", "", ""), "web 2", "pfx.web_2.http1_request", "", "", "u-1"},
		{"container and pod", ev(3, "", "c0ffee", "shop", "web-1"), "self.host", "pfx.self_host.http1_response", "c0ffee", "shop/web-1", "u-1"},
		{"container, no pod", ev(3, "", "c0ffee", "", ""), "self.host", "pfx.self_host.http1_response", "c0ffee", "", "u-1"},
	}
	ids := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			msg := p.message(&broker.Entry{Msg: tc.m, Bytes: b})
			if want := Subject("pfx", tc.node, Kind(tc.m)); msg.Subject != tc.subject || msg.Subject != want {
				t.Errorf("subject %q, want %q (Subject says %q)", msg.Subject, tc.subject, want)
			}
			for _, h := range []struct{ key, want string }{
				{HeaderNode, tc.node}, {HeaderUUID, tc.uuid}, {HeaderContainer, tc.container}, {HeaderPod, tc.pod},
			} {
				if got := msg.Header.Get(h.key); got != h.want {
					t.Errorf("header %s = %q, want %q", h.key, got, h.want)
				}
			}
			id := msg.Header.Get(jetstream.MsgIDHeader)
			if !strings.HasPrefix(id, "r1-") || ids[id] {
				t.Errorf("message id %q: want r1-N, unique", id)
			}
			ids[id] = true
			if !bytes.Equal(msg.Data, b) {
				t.Error("data is not the entry's bytes")
			}
		})
	}
}

package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// sinkLog is a Sink that keeps what it is given.
type sinkLog struct {
	mu sync.Mutex
	m  []*eventpb.LogEntry
}

func (s *sinkLog) Publish(m *eventpb.LogEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = append(s.m, m)
}

func (s *sinkLog) events() []*eventpb.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var evs []*eventpb.Event
	for _, m := range s.m {
		if ev := m.GetEventPayload(); ev != nil {
			evs = append(evs, ev)
		}
	}
	return evs
}

// exchange publishes n request/response pairs on b: request seq 2i+1,
// response seq 2i+2 pointing at it, spread over conns connections.
func exchange(b *broker.Broker, node string, from, n, conns uint64) {
	for i := from; i < from+n; i++ {
		conn := i%conns + 1
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Seq: 2*i + 1, ConnId: conn, Node: node, Type: 1, Payload: fmt.Appendf(nil, "GET /%s/%d HTTP/1.1\r\n\r\n", node, i)}}})
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Seq: 2*i + 2, ConnId: conn, Node: node, Type: 3, RequestSeq: 2*i + 1, Payload: fmt.Appendf(nil, "HTTP/1.1 200 OK\r\n\r\n%s/%d", node, i)}}})
	}
}

// TestFeed: three nodes publish; a viewer's feed relays every event once,
// with its node, renumbered by stream sequence (unique, increasing) with
// each response still pointing at its request, per-connection order kept;
// a node's process log is relayed with its name; events published while
// the feed runs arrive live; a second feed numbers every event the same
// (what lets a client resume across a viewer restart); Status counts per
// node.
func TestFeed(t *testing.T) {
	// Registered first, so it runs after the server's cleanup.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s := natsServer(t, 0, t.TempDir())
	addr := natsURL(s, "")
	const pairs, conns = 400, 5
	nodes := []string{"node-a", "node-b", "node-c"}
	for _, node := range nodes {
		b, _, st, stop := runPublisher(t, addr, node)
		exchange(b, node, 0, pairs, conns)
		b.Publish(broker.Notice("hello from " + node).Msg)
		waitFor(t, func() bool { return st.Counter("tlstap_sink_sent_total", "", "sink", "nats").Load() == 2*pairs+1 }, st)
		stop()
	}

	sink := &sinkLog{}
	st := stats.NewSet()
	f, err := NewFeed(addr, sink, FeedOptions{Tail: 1 << 20, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.Prime(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.events()); got != 3*2*pairs {
		t.Fatalf("primed %d events, want %d", got, 3*2*pairs)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx, nil) }()
	b, _, pst, stop := runPublisher(t, addr, "node-d")
	exchange(b, "node-d", 0, 50, 2)
	waitFor(t, func() bool { return pst.Counter("tlstap_sink_sent_total", "", "sink", "nats").Load() == 100 }, pst)
	stop()
	waitFor(t, func() bool { return len(sink.events()) == 3*2*pairs+100 })
	stopRun()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	evs := sink.events()
	bySeq := map[uint64]*eventpb.Event{}
	seen := map[string]bool{}
	type connKey struct {
		node string
		conn uint64
	}
	lastPayload := map[connKey]int{}
	var prev uint64
	for _, ev := range evs {
		if ev.GetSeq() <= prev {
			t.Fatalf("seq %d after %d", ev.GetSeq(), prev)
		}
		prev = ev.GetSeq()
		bySeq[ev.GetSeq()] = ev
		key := ev.GetNode() + string(ev.GetPayload())
		if seen[key] {
			t.Fatalf("duplicate %q", key)
		}
		seen[key] = true
		var i int
		k := connKey{ev.GetNode(), ev.GetConnId()}
		if ev.GetType() == 1 {
			fmt.Sscanf(string(ev.GetPayload()[len("GET /"+ev.GetNode()+"/"):]), "%d", &i)
			if i < lastPayload[k] {
				t.Fatalf("%v: request %d after %d", k, i, lastPayload[k])
			}
			lastPayload[k] = i
		}
	}
	for _, ev := range evs {
		if ev.GetType() != 3 {
			continue
		}
		req := bySeq[ev.GetRequestSeq()]
		var i int
		fmt.Sscanf(string(ev.GetPayload()[len("HTTP/1.1 200 OK\r\n\r\n"+ev.GetNode()+"/"):]), "%d", &i)
		if req == nil || req.GetNode() != ev.GetNode() || string(req.GetPayload()) != fmt.Sprintf("GET /%s/%d HTTP/1.1\r\n\r\n", ev.GetNode(), i) {
			t.Fatalf("response %d of %s: request_seq %d points at %v", i, ev.GetNode(), ev.GetRequestSeq(), req)
		}
	}
	logs := 0
	sink.mu.Lock()
	for _, m := range sink.m {
		if m.GetLogType() == eventpb.LogType_LOG_TYPE_PROCESS_LOG {
			logs++
			if !strings.HasPrefix(m.GetRunLog(), "[node-") || !strings.Contains(m.GetRunLog(), "] hello from node-") {
				t.Errorf("process log %q lacks its node", m.GetRunLog())
			}
		}
	}
	sink.mu.Unlock()
	if logs != 3 {
		t.Errorf("%d process logs relayed, want 3", logs)
	}

	// Another viewer numbers the same events the same.
	sink2 := &sinkLog{}
	f2, err := NewFeed(addr, sink2, FeedOptions{Tail: 300})
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.Prime(ctx); err != nil {
		t.Fatal(err)
	}
	f2.Run(canceled(), nil)
	evs2 := sink2.events()
	if len(sink2.m) != 300 || len(evs2) != 299 {
		t.Fatalf("tail of 300 primed %d entries, %d events; want 300, 299 (node-c's log is among them)", len(sink2.m), len(evs2))
	}
	for _, ev := range evs2 {
		ev1 := bySeq[ev.GetSeq()]
		if ev1 == nil || string(ev1.GetPayload()) != string(ev.GetPayload()) || ev1.GetRequestSeq() != ev.GetRequestSeq() && ev.GetRequestSeq() != 0 {
			t.Fatalf("second viewer's seq %d is %q, first's %v", ev.GetSeq(), ev.GetPayload(), ev1)
		}
	}

	status := f.Status()
	if len(status.Nodes) != 4 {
		t.Fatalf("status has %d nodes: %+v", len(status.Nodes), status)
	}
	for i, n := range status.Nodes {
		want := uint64(2 * pairs)
		if n.Node == "node-d" {
			want = 100
		}
		if n.Node != append(nodes, "node-d")[i] || n.Events != want {
			t.Errorf("node status %d: %+v, want %d events", i, n, want)
		}
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestFeedLinkWindow: a response whose request fell out of the
// renumbering window loses its link (0, counted) instead of pointing at
// another event; a node restarting its numbering links to its new run.
func TestFeedLinkWindow(t *testing.T) {
	st := stats.NewSet()
	f, err := NewFeed("nats://127.0.0.1:1", &sinkLog{}, FeedOptions{Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(stream, seq, req uint64) Message {
		return Message{Seq: stream, Node: "n", Entry: &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT,
			Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: seq, RequestSeq: req}}}}
	}
	f.relay(ev(1, 1, 0))
	for i := uint64(2); i <= maxSeqMap+1; i++ {
		f.relay(ev(i, i, 0))
	}
	m := ev(maxSeqMap+2, maxSeqMap+2, 1)
	f.relay(m)
	if got := m.Entry.GetEventPayload().GetRequestSeq(); got != 0 {
		t.Errorf("request out of the window linked to %d", got)
	}
	if st.Counter("tlstap_fleet_unlinked_total", "").Load() != 1 {
		t.Error("unlinked not counted")
	}
	// The node restarts: its seq 5 is now a new event.
	f.relay(ev(maxSeqMap+3, 5, 0))
	m = ev(maxSeqMap+4, 6, 5)
	f.relay(m)
	if got := m.Entry.GetEventPayload().GetRequestSeq(); got != maxSeqMap+3 {
		t.Errorf("request_seq after a node restart = %d, want %d", got, maxSeqMap+3)
	}
	// A redelivered message is not relayed twice.
	before := len(f.seqs)
	f.relay(ev(3, 3, 0))
	if len(f.seqs) != before {
		t.Error("an old stream sequence was relayed again")
	}
	if len(f.seqs) > maxSeqMap {
		t.Errorf("%d links kept, bound %d", len(f.seqs), maxSeqMap)
	}
}

// FuzzRelay: whatever a fleet stream holds (anyone may publish to its
// subjects), relaying it never panics, never publishes a stream sequence
// twice, and keeps the renumbering table bounded.
func FuzzRelay(f *testing.F) {
	seed, _ := proto.Marshal(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: 2, RequestSeq: 1, MessageSeq: 1, Node: "n"}}})
	f.Add(seed, "n", uint64(5))
	logSeed, _ := proto.Marshal(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "x"}})
	f.Add(logSeed, "", uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, node string, seq uint64) {
		var e eventpb.LogEntry
		if proto.Unmarshal(data, &e) != nil {
			return
		}
		sink := &sinkLog{}
		fd, err := NewFeed("nats://127.0.0.1:1", sink, FeedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fd.relay(Message{Entry: &e, Node: node, Seq: seq})
		again := proto.Clone(&e).(*eventpb.LogEntry)
		fd.relay(Message{Entry: again, Node: node, Seq: seq})
		if len(sink.m) > 1 {
			t.Fatalf("stream sequence %d relayed %d times", seq, len(sink.m))
		}
		for _, m := range sink.m {
			if ev := m.GetEventPayload(); ev != nil && ev.GetSeq() != seq {
				t.Fatalf("relayed seq %d, stream sequence %d", ev.GetSeq(), seq)
			}
		}
		if len(fd.seqs) > maxSeqMap {
			t.Fatal("renumbering table unbounded")
		}
	})
}

package fleet

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Sink receives what a Feed reads; broker.Broker is one.
type Sink interface {
	Publish(*eventpb.LogEntry)
}

// FeedOptions configure a Feed.
type FeedOptions struct {
	// Nodes restricts the feed to these nodes (empty: all).
	Nodes []string
	// Tail is how many of the newest retained messages Prime publishes
	// before the feed goes live (the resume window of the viewer's
	// clients; the broker retains 10,000 events by default).
	Tail uint64
	// Stats receives the feed's counters; nil creates a private set.
	Stats *stats.Set
	// Log receives connection changes; nil discards them.
	Log *slog.Logger
}

// Limits of a Feed's memory.
const (
	// maxNodes bounds the per-node status; entries of further nodes are
	// still relayed, and counted under OtherNodes.
	maxNodes = 4096
	// maxSeqMap bounds the table that renumbers request_seq and
	// message_seq; a response further than this many events behind its
	// request (in the whole fleet's order) loses its link (set to 0).
	maxSeqMap = 1 << 16
)

// Feed relays a fleet stream into a Sink, so that everything built on the
// broker (the WebSocket stream, the eCaptureQ listener, HAR, standard
// output) serves the whole fleet: `tlstap view --nats`.
//
// Events are renumbered: every node numbers its own events from 1, so
// their seq would collide. A relayed event's seq is its JetStream stream
// sequence, which is unique, increasing, and the same on every viewer and
// after a viewer restart, so a stream client resumes across a viewer
// restart with no gap and no duplicate. request_seq and message_seq are
// mapped to the new numbers. Process-log entries are prefixed with their
// node.
//
// A Feed is a capture.Source, so that an engine runs it as it runs a
// capture: Run publishes to the Sink directly and sends no chunks.
type Feed struct {
	addr string
	opts FeedOptions
	sink Sink
	log  *slog.Logger

	// Owned by the goroutine in Prime, then Run.
	cons    *Consumer
	lastSeq uint64 // stream sequence of the last message read
	seqs    map[seqKey]uint64
	order   []seqLink // insertion order of seqs, a ring of maxSeqMap
	next    int

	mu         sync.Mutex
	nodes      map[string]*NodeStatus
	otherNodes uint64
	connected  bool

	received, skipped, unlinked *stats.Counter
}

type seqKey struct {
	node string
	seq  uint64
}

type seqLink struct {
	k seqKey
	v uint64
}

// NodeStatus is what a viewer knows of one node, for its status page.
type NodeStatus struct {
	Node string `json:"node"`
	// Events and Logs relayed from this node.
	Events uint64 `json:"events"`
	Logs   uint64 `json:"logs"`
	// LastSeq is the node's own seq of its newest event (it restarts
	// with each run of the node's tlstap).
	LastSeq uint64 `json:"last_seq"`
	// LastEvent is the capture time of the newest event, LastSeen when
	// the viewer received the node's newest entry.
	LastEvent time.Time `json:"last_event"`
	LastSeen  time.Time `json:"last_seen"`
	// Containers is how many distinct containers its events named, up to
	// maxContainers.
	Containers int `json:"containers"`

	containers map[string]bool
}

const maxContainers = 1024

// NewFeed checks addr (see ParseURL) and returns a feed that reads it
// when Prime or Run is called.
func NewFeed(addr string, sink Sink, o FeedOptions) (*Feed, error) {
	if _, err := ParseURL(addr); err != nil {
		return nil, err
	}
	if o.Stats == nil {
		o.Stats = stats.NewSet()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Feed{
		addr:     addr,
		opts:     o,
		sink:     sink,
		log:      o.Log.With("source", "nats", "addr", redact(addr)),
		seqs:     make(map[seqKey]uint64),
		order:    make([]seqLink, maxSeqMap),
		nodes:    make(map[string]*NodeStatus),
		received: o.Stats.Counter("tlstap_fleet_received_total", "Entries a viewer relayed from the fleet stream."),
		skipped:  o.Stats.Counter("tlstap_fleet_skipped_total", "Fleet stream messages a viewer skipped (heartbeats, nothing to relay)."),
		unlinked: o.Stats.Counter("tlstap_fleet_unlinked_total", "Relayed events whose request_seq or message_seq fell out of the renumbering window and were cleared."),
	}, nil
}

// Prime connects and relays the newest Tail retained messages before it
// returns, so the viewer's clients find them on their first connection
// (and a client of a restarted viewer resumes where it was). The caller
// calls it before serving clients, then Run.
func (f *Feed) Prime(ctx context.Context) error {
	c, err := Subscribe(ctx, f.addr, ConsumerOptions{Nodes: f.opts.Nodes, From: FromTail, Tail: f.opts.Tail, Log: f.log})
	if err != nil {
		return err
	}
	f.cons = c
	f.setConnected(true)
	pending, err := c.Pending(ctx)
	if err != nil {
		return err
	}
	for pending > 0 {
		m, err := c.Next(ctx)
		if err != nil {
			return err
		}
		f.relay(m)
		pending = m.Pending
	}
	f.log.Info("fleet stream primed", "last_stream_seq", f.lastSeq)
	return nil
}

// Run relays until ctx ends. It reconnects after failures, resuming after
// the last message relayed. out is not used: entries go to the Sink.
func (f *Feed) Run(ctx context.Context, _ chan<- capture.Chunk) error {
	bo := backoff.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second}
	defer func() {
		if f.cons != nil {
			f.cons.Close()
			f.cons = nil
		}
	}()
	for ctx.Err() == nil {
		if f.cons == nil {
			o := ConsumerOptions{Nodes: f.opts.Nodes, From: FromAfter, After: f.lastSeq, Log: f.log}
			if f.lastSeq == 0 {
				o.From, o.Tail = FromTail, f.opts.Tail
			}
			c, err := Subscribe(ctx, f.addr, o)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				f.log.Warn("fleet stream unavailable, retrying", "err", err)
				if !backoff.Sleep(ctx, bo.Next()) {
					break
				}
				continue
			}
			f.cons = c
			f.setConnected(true)
		}
		m, err := f.cons.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			f.log.Warn("fleet stream ended, resubscribing", "err", err, "after_stream_seq", f.lastSeq)
			f.cons.Close()
			f.cons = nil
			f.setConnected(false)
			if !backoff.Sleep(ctx, bo.Next()) {
				break
			}
			continue
		}
		bo.Reset()
		f.relay(m)
	}
	f.setConnected(false)
	return nil
}

func (f *Feed) setConnected(v bool) {
	f.mu.Lock()
	f.connected = v
	f.mu.Unlock()
}

// relay renumbers one message and publishes it.
func (f *Feed) relay(m Message) {
	if m.Seq <= f.lastSeq {
		return // a redelivery after resubscribing; never publish twice
	}
	f.lastSeq = m.Seq
	e := m.Entry
	node := m.Node
	switch e.GetLogType() {
	case eventpb.LogType_LOG_TYPE_EVENT:
		ev := e.GetEventPayload()
		if ev == nil {
			f.skipped.Inc()
			return
		}
		if ev.Node == "" {
			ev.Node = node
		}
		node = ev.Node
		f.track(node, ev, false)
		orig := ev.Seq
		ev.Seq = m.Seq
		ev.RequestSeq = f.link(node, ev.RequestSeq)
		ev.MessageSeq = f.link(node, ev.MessageSeq)
		f.remember(seqKey{node, orig}, m.Seq)
	case eventpb.LogType_LOG_TYPE_PROCESS_LOG:
		if node != "" {
			e.Payload = &eventpb.LogEntry_RunLog{RunLog: "[" + node + "] " + e.GetRunLog()}
		}
		f.track(node, nil, true)
	default:
		// Heartbeats are per connection; the viewer's server sends its own.
		f.skipped.Inc()
		return
	}
	f.received.Inc()
	f.sink.Publish(e)
}

// link maps a node's own seq to the relayed one; 0 stays 0, and a seq
// outside the window becomes 0 rather than point at another event.
func (f *Feed) link(node string, seq uint64) uint64 {
	if seq == 0 {
		return 0
	}
	if s, ok := f.seqs[seqKey{node, seq}]; ok {
		return s
	}
	f.unlinked.Inc()
	return 0
}

func (f *Feed) remember(k seqKey, seq uint64) {
	// The oldest link goes, unless its key was linked again since (a
	// node's seq restarts with each of its runs).
	if old := f.order[f.next]; old.v != 0 && f.seqs[old.k] == old.v {
		delete(f.seqs, old.k)
	}
	f.order[f.next] = seqLink{k, seq}
	f.next = (f.next + 1) % len(f.order)
	f.seqs[k] = seq
}

func (f *Feed) track(node string, ev *eventpb.Event, log bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[node]
	if n == nil {
		if len(f.nodes) >= maxNodes {
			f.otherNodes++
			return
		}
		n = &NodeStatus{Node: node, containers: map[string]bool{}}
		f.nodes[node] = n
	}
	n.LastSeen = time.Now().UTC()
	if log {
		n.Logs++
		return
	}
	n.Events++
	n.LastSeq = ev.GetSeq()
	if ts := time.Unix(0, ev.GetTimestamp()).UTC(); ts.After(n.LastEvent) {
		n.LastEvent = ts
	}
	if c := ev.GetContainerId(); c != "" && !n.containers[c] && len(n.containers) < maxContainers {
		n.containers[c] = true
		n.Containers = len(n.containers)
	}
}

// FeedStatus is a viewer's view of the fleet.
type FeedStatus struct {
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
	// Nodes in name order.
	Nodes []NodeStatus `json:"nodes"`
	// OtherNodes counts entries of nodes beyond the tracked maximum.
	OtherNodes uint64 `json:"other_nodes,omitempty"`
}

// Status returns the per-node status. Safe to call from any goroutine.
func (f *Feed) Status() FeedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := FeedStatus{Addr: redact(f.addr), Connected: f.connected, OtherNodes: f.otherNodes, Nodes: make([]NodeStatus, 0, len(f.nodes))}
	for _, n := range f.nodes {
		st.Nodes = append(st.Nodes, *n)
	}
	slices.SortFunc(st.Nodes, func(a, b NodeStatus) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	return st
}

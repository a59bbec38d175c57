package broker

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Entry is one published LogEntry, marshaled once for every subscriber.
type Entry struct {
	Msg *eventpb.LogEntry
	// Seq is the event's sequence number; 0 for process logs and notices.
	Seq uint64
	// Bytes is Msg marshaled. Subscribers must not modify it (Publish
	// points the event's payload into it).
	Bytes []byte
	// size is what the entry holds in memory, as Size counts it; set by
	// Publish, 0 for entries built elsewhere.
	size int
}

// entryOverhead is a conservative count of the heap an entry holds besides
// its byte slices: the Entry, the LogEntry and its oneof wrapper, the Event
// struct and its short strings (addresses, uuid, names, path). The broker
// tests check it against the measured heap.
const entryOverhead = 1536

// aliasMin is the payload size from which Publish shares the payload's
// bytes with the marshaled copy rather than keep both.
const aliasMin = 256

// Size returns the bytes the entry keeps alive: the marshaled copy, the
// event's payload unless it lies inside that copy, and the structs. The
// broker's retention and the subscribers' queues are bounded in it.
func (e *Entry) Size() int {
	if e.size > 0 {
		return e.size
	}
	return entryOverhead + heapSize(cap(e.Bytes)) + heapSize(cap(e.Event().GetPayload()))
}

// heapSize is what the allocator takes for n bytes: objects above 32 KiB
// in whole 8 KiB pages (a 64 KiB part, marshaled with its header, takes
// 72 KiB), smaller ones in size classes at most 12.5% apart.
func heapSize(n int) int {
	if n > 32<<10 {
		return (n + 8<<10 - 1) &^ (8<<10 - 1)
	}
	return n + n/8
}

// Event returns the entry's event, or nil.
func (e *Entry) Event() *eventpb.Event { return e.Msg.GetEventPayload() }

// Options bound what the broker retains.
type Options struct {
	// RetainEvents and RetainBytes bound the resume ring; the older bound
	// wins. Zero values take the defaults (10,000 events, 64 MiB).
	// RetainBytes counts what the entries hold in memory (Entry.Size), not
	// only their wire size, so it bounds the heap the ring keeps.
	RetainEvents int
	RetainBytes  int
	// LogBacklog is how many recent process-log entries late joiners get
	// (default 1,000).
	LogBacklog int
}

// DefaultRetainBytes is the resume window's default memory bound.
const DefaultRetainBytes = 64 << 20

func (o *Options) defaults() {
	if o.RetainEvents <= 0 {
		o.RetainEvents = 10000
	}
	if o.RetainBytes <= 0 {
		o.RetainBytes = DefaultRetainBytes
	}
	if o.LogBacklog <= 0 {
		o.LogBacklog = 1000
	}
}

// Broker is safe for concurrent use.
type Broker struct {
	opts  Options
	stats *stats.Set

	mu     sync.Mutex
	events ring
	logs   ring
	// subs is copied on write: Publish hands the current slice out
	// without copying, Subscribe and remove build a new one.
	subs      []*Subscription
	lastSeq   uint64
	closed    bool
	published *stats.Counter
}

// New returns a broker. st may be nil.
func New(opts Options, st *stats.Set) *Broker {
	warmMarshal()
	opts.defaults()
	if st == nil {
		st = stats.NewSet()
	}
	b := &Broker{
		opts:      opts,
		stats:     st,
		published: st.Counter("tlstap_broker_published_total", "LogEntry messages published to subscribers."),
	}
	retained := st.Gauge("tlstap_broker_retained_bytes", "Bytes of memory the resume window's events hold (bounded by the retention).")
	st.OnRead(func() { retained.Set(int64(b.RetainedBytes())) })
	return b
}

// LastSeq returns the sequence number of the newest published event.
func (b *Broker) LastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastSeq
}

// Publish marshals m once and delivers it to every subscriber whose filter
// accepts it. It blocks only on subscribers with the Block policy.
func (b *Broker) Publish(m *eventpb.LogEntry) { b.publish(m, false) }

// PublishBatched is Publish for a publisher that ends each batch of
// entries with Flush: a subscriber with Direct may leave the entry in its
// output buffer (SubOptions.Direct's more), to be written with the rest
// of the batch. The live capture publishes what one drain of the kernel's
// ring produced this way, so under load standard output is written once
// per drain instead of once per event; a drain of one record is flushed
// as soon as it ends. The caller must call Flush after the last entry of
// every batch, from the same goroutine or under the same lock.
func (b *Broker) PublishBatched(m *eventpb.LogEntry) { b.publish(m, true) }

// Flush ends a batch of PublishBatched entries: every subscriber that left
// some of them buffered writes them out now (SubOptions.Flush), and every
// subscriber that has some of them queued is woken (within a batch it is
// woken only once its queue holds many).
func (b *Broker) Flush() {
	b.mu.Lock()
	subs := b.subs
	b.mu.Unlock()
	for _, s := range subs {
		s.flush()
	}
}

func (b *Broker) publish(m *eventpb.LogEntry, more bool) {
	buf, err := proto.Marshal(m)
	if err != nil {
		// Only invalid UTF-8 in a string field can fail; count it rather
		// than send a half-built message.
		b.stats.Counter(stats.DropsTotal, "", "reason", "marshal").Inc()
		return
	}
	e := &Entry{Msg: m, Bytes: buf}
	e.size = entryOverhead + heapSize(cap(buf))
	if ev := m.GetEventPayload(); ev != nil {
		e.Seq = ev.GetSeq()
		if p := ev.GetPayload(); len(p) >= aliasMin {
			// A bytes field is marshaled verbatim, so the payload is in
			// buf: point the event at it and let the decoder's copy go.
			// Without this every retained or queued event holds its
			// payload twice. (Should Index find an equal run elsewhere,
			// the bytes are the same, which is all that matters.)
			if i := bytes.Index(buf, p); i >= 0 {
				ev.Payload = buf[i : i+len(p) : i+len(p)]
			} else {
				e.size += heapSize(cap(p))
			}
		} else {
			e.size += heapSize(cap(p))
		}
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	switch {
	case e.Seq != 0:
		b.lastSeq = e.Seq
		b.events.push(e)
		b.events.trim(b.opts.RetainEvents, b.opts.RetainBytes)
	case m.GetLogType() == eventpb.LogType_LOG_TYPE_PROCESS_LOG:
		b.logs.push(e)
		b.logs.trim(b.opts.LogBacklog, 0)
	}
	// Snapshot inside the same critical section as the ring append: a
	// subscriber registered after this point finds e in the ring, one
	// registered before gets it live. No gap, no duplicate.
	subs := b.subs
	b.mu.Unlock()

	b.published.Inc()
	for _, s := range subs {
		s.offer(e, more)
	}
}

// Close ends every subscription; their queues still drain.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for _, s := range subs {
		s.end()
	}
}

func (b *Broker) remove(s *Subscription) {
	b.mu.Lock()
	if i := slices.Index(b.subs, s); i >= 0 {
		b.subs = slices.Delete(slices.Clone(b.subs), i, i+1)
	}
	b.mu.Unlock()
}

// Subscribe registers a subscriber. With o.Resume it first receives the
// retained events after o.Since; with o.Backlog the recent process logs.
func (b *Broker) Subscribe(o SubOptions) *Subscription {
	s := newSubscription(b, o)
	b.mu.Lock()
	defer b.mu.Unlock()
	if o.Backlog {
		b.logs.each(func(e *Entry) { s.preload(e) })
	}
	if o.Resume {
		oldest := b.lastSeq + 1
		if first := b.events.first(); first != nil {
			oldest = first.Seq
		}
		if o.Since+1 < oldest && o.Since < b.lastSeq {
			missed := oldest - o.Since - 1
			s.preload(Notice(fmt.Sprintf("resume: %d events after seq %d are older than the retained window and were missed", missed, o.Since)))
		}
		b.events.each(func(e *Entry) {
			if e.Seq > o.Since {
				s.preload(e)
			}
		})
	}
	if b.closed {
		s.end()
		return s
	}
	b.subs = append(slices.Clone(b.subs), s)
	return s
}

// Notice builds a process-log entry carrying msg, for telling one
// subscriber something (missed entries, resume gaps) outside the stream.
func Notice(msg string) *Entry {
	m := &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG,
		Payload: &eventpb.LogEntry_RunLog{RunLog: msg},
	}
	buf, _ := proto.Marshal(m)
	return &Entry{Msg: m, Bytes: buf, size: entryOverhead + heapSize(cap(buf))}
}

// RetainedBytes returns what the resume ring holds, as Entry.Size counts
// it; at most Options.RetainBytes unless one entry alone is larger.
func (b *Broker) RetainedBytes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events.bytes
}

// warmMarshal marshals each kind of LogEntry once, so that the first
// event published does not build protobuf-go's encoder for its types: the
// first Marshal of an Event took 1.2 ms here, the next ones 2 µs, and a
// lone request's first event was that much late.
var warmMarshal = sync.OnceFunc(func() {
	for _, m := range []*eventpb.LogEntry{
		{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Timestamp: 1, Uuid: "warm", SrcIp: "127.0.0.1", SrcPort: 1, DstIp: "127.0.0.1", DstPort: 2,
			Pid: 1, Pname: "warm", Type: 1, Length: 1, Payload: []byte("x"),
		}}},
		{LogType: eventpb.LogType_LOG_TYPE_HEARTBEAT, Payload: &eventpb.LogEntry_HeartbeatPayload{HeartbeatPayload: &eventpb.Heartbeat{Timestamp: 1, Count: 1, Message: "warm"}}},
		{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "warm"}},
	} {
		_, _ = proto.Marshal(m)
	}
})

package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tlstap/tlstap/internal/stats"
)

// Policy says what happens when a subscriber's queue is full.
type Policy int

const (
	// Drop counts the entry as missed; the subscriber later receives a
	// notice saying how many it missed, in stream order.
	Drop Policy = iota
	// Block makes the publisher wait for room. For local sinks only
	// (stdout, files), never for network clients.
	Block
)

// ErrClosed is returned by Next once the subscription has ended and its
// queue is drained.
var ErrClosed = errors.New("broker: subscription closed")

// SubOptions configure a subscription.
type SubOptions struct {
	// Name labels the subscriber's drop counter (e.g. "ws", "stdout").
	Name string
	// Queue is the queue length (default 4096 entries).
	Queue int
	// QueueBytes, if positive, also bounds the queue in memory
	// (Entry.Size): a subscriber that falls behind on large events (the
	// parts of a download) holds at most this much, not Queue of them.
	// One entry is always let in, however large.
	QueueBytes int
	Policy     Policy
	// Filter, if set, selects the entries delivered. It runs on the
	// publisher's goroutine and must be cheap.
	Filter func(*Entry) bool
	// Direct, if set, lets the publisher deliver an entry itself, on its
	// own goroutine, when the subscriber is idle with nothing queued:
	// then no goroutine hand-off stands between the publication and the
	// write (each cost a thread wake-up of about 100 µs on an idle VM,
	// docs/benchmarks.md, issue 19). It returns false when it could not
	// deliver (a write error), and the entry is queued instead, for the
	// subscriber to meet the error. Such a subscriber must read with Serve,
	// which delivers under the same lock, so the order stays the
	// publication order. Direct blocks the publisher as long as it
	// writes: only for local writers that block it anyway (Policy Block).
	//
	// more says the publisher will call Broker.Flush after this entry
	// (Broker.PublishBatched): Direct may then leave the entry in its
	// output buffer, and Flush, which must be set too, writes it out.
	Direct func(e *Entry, more bool) bool
	// Flush writes out what Direct left buffered; the broker calls it
	// under the delivery lock at the end of a batch (Broker.Flush), and
	// only if Direct delivered an entry with more set since the last one.
	Flush func()
	// Backlog delivers the recent process-log entries first.
	Backlog bool
	// Resume delivers the retained events with Seq > Since first.
	Resume bool
	Since  uint64
}

// Subscription is one subscriber's queue.
type Subscription struct {
	b      *Broker
	opts   SubOptions
	drops  *stats.Counter
	mu     sync.Mutex
	space  sync.Cond // signalled when Block publishers may retry
	pre    []*Entry  // backlog and resume entries, unbounded by Queue
	q      ring
	missed uint64 // dropped since the last notice
	total  uint64 // dropped over the subscription's life
	ready  chan struct{}
	ended  bool
	// deliver is held by whoever delivers an entry: Serve from taking it
	// off the queue to the end of its handler, or the publisher for a
	// Direct delivery or a Flush.
	deliver sync.Mutex
	held    bool // Direct left an entry buffered; guarded by deliver
	// wakeLater: entries of a batch were queued without waking the
	// subscriber; Broker.Flush wakes it. Guarded by mu.
	wakeLater bool
}

// batchWake bounds how many entries of a batch wait in a queue before the
// subscriber is woken anyway, so a long batch neither fills a small queue
// (dropping entries) nor holds a stream client back for long.
const batchWake = 64

func newSubscription(b *Broker, o SubOptions) *Subscription {
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Name == "" {
		o.Name = "subscriber"
	}
	s := &Subscription{
		b:     b,
		opts:  o,
		drops: b.stats.Counter(stats.DropsTotal, "Entries dropped, by reason.", "reason", "queue_full_"+o.Name),
		ready: make(chan struct{}, 1),
	}
	s.space.L = &s.mu
	return s
}

func (s *Subscription) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// preload queues e ahead of live entries; called under the broker lock
// before the subscription is registered, so it never races with offer.
func (s *Subscription) preload(e *Entry) {
	if s.opts.Filter != nil && e.Seq != 0 && !s.opts.Filter(e) {
		return
	}
	s.pre = append(s.pre, e)
	s.wake()
}

func (s *Subscription) offer(e *Entry, more bool) {
	if s.opts.Filter != nil && !s.opts.Filter(e) {
		return
	}
	// Busy (Serve is delivering) means queue: the entry goes after the
	// one being delivered.
	if s.opts.Direct != nil && s.deliver.TryLock() {
		s.mu.Lock()
		idle := !s.ended && s.q.n == 0 && len(s.pre) == 0 && s.missed == 0
		s.mu.Unlock()
		more = more && s.opts.Flush != nil
		done := idle && s.opts.Direct(e, more)
		s.held = s.held || (done && more)
		s.deliver.Unlock()
		if done {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Policy == Block {
		for !s.ended && s.full(e, s.opts.Queue) {
			s.wake() // the queue may hold a batch it was not woken for
			s.space.Wait()
		}
	}
	if s.ended {
		return
	}
	// A pending notice goes in first so the subscriber learns about the
	// gap at the point in the stream where it happened. It does not take
	// the entry's place: with room for only one (Queue 1), requiring room
	// for both would deliver the notice after newer entries.
	// In bytes, the notice goes in only with the entry: notices alone
	// must not fill a queue bounded in bytes.
	limit := s.opts.Queue
	if s.missed > 0 && s.q.n < limit && !s.overBytes(noticeSize+e.Size()) {
		s.q.push(Notice(fmt.Sprintf("slow client: %d entries were dropped because this client's queue was full", s.missed)))
		s.missed = 0
		limit++
	}
	if s.full(e, limit) {
		s.missed++
		s.total++
		s.drops.Inc()
		return
	}
	s.q.push(e)
	// Within a batch the subscriber is woken once, at its end (flush),
	// so it takes the batch's entries in one go: a stream client then
	// writes them in one system call (server's corked connection) and
	// its reader is woken once, instead of once per event.
	if more && s.q.n < min(batchWake, max(1, s.opts.Queue/2)) && !s.overBytes(s.opts.QueueBytes/2) {
		s.wakeLater = true
		return
	}
	s.wakeLater = false
	s.wake()
}

// flush writes out what Direct left buffered. It waits for a delivery by
// Serve under way rather than skip: Serve flushes only once its queue runs
// dry, and it may have found the queue empty, without flushing, just before
// the entries held here were written.
func (s *Subscription) flush() {
	s.mu.Lock()
	if s.wakeLater {
		s.wakeLater = false
		s.wake()
	}
	s.mu.Unlock()
	if s.opts.Flush == nil {
		return
	}
	s.deliver.Lock()
	if s.held {
		s.held = false
		s.opts.Flush()
	}
	s.deliver.Unlock()
}

// full reports whether e finds no room in a queue of limit entries.
func (s *Subscription) full(e *Entry, limit int) bool {
	return s.q.n >= limit || s.overBytes(e.Size())
}

// overBytes reports whether n more bytes exceed QueueBytes; an empty
// queue takes anything.
func (s *Subscription) overBytes(n int) bool {
	return s.opts.QueueBytes > 0 && s.q.n > 0 && s.q.bytes+n > s.opts.QueueBytes
}

// noticeSize is about what a drop notice holds.
const noticeSize = entryOverhead + 128

// QueuedBytes returns what the queued entries hold (Entry.Size), at most
// QueueBytes unless one entry alone is larger.
func (s *Subscription) QueuedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.bytes
}

// Next returns the next entry, waiting until one is available, the
// subscription ends (ErrClosed once drained) or ctx is done.
func (s *Subscription) Next(ctx context.Context) (*Entry, error) {
	for {
		if e, err := s.take(); e != nil || err != nil {
			return e, err
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Serve calls fn for every entry, in order, until fn fails, the
// subscription ends (ErrClosed once drained) or ctx is done. Unlike
// Next it holds the delivery lock while fn runs, which is what lets the
// publisher deliver Direct entries in between without reordering.
func (s *Subscription) Serve(ctx context.Context, fn func(*Entry) error) error {
	for {
		s.deliver.Lock()
		e, err := s.take()
		if e != nil {
			err = fn(e)
		}
		s.deliver.Unlock()
		if err != nil {
			return err
		}
		if e != nil {
			continue
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take returns the next entry without waiting: nil, nil if there is none
// yet.
func (s *Subscription) take() (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pre) > 0 {
		e := s.pre[0]
		s.pre[0] = nil
		s.pre = s.pre[1:]
		return e, nil
	}
	if e := s.q.pop(); e != nil {
		s.space.Signal()
		return e, nil
	}
	if s.missed > 0 {
		n := s.missed
		s.missed = 0
		return Notice(fmt.Sprintf("slow client: %d entries were dropped because this client's queue was full", n)), nil
	}
	if s.ended {
		return nil, ErrClosed
	}
	return nil, nil
}

// Len returns the number of queued entries.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.n + len(s.pre)
}

// Dropped returns how many entries this subscriber has missed in total.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close unregisters the subscription; queued entries are discarded.
func (s *Subscription) Close() {
	s.b.remove(s)
	s.end()
	s.mu.Lock()
	s.pre = nil
	s.q = ring{}
	s.mu.Unlock()
}

// end stops accepting entries and wakes everyone waiting.
func (s *Subscription) end() {
	s.mu.Lock()
	s.ended = true
	s.space.Broadcast()
	s.mu.Unlock()
	s.wake()
}

package pipeline

import (
	"cmp"
	"container/list"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Broker receives every LogEntry the pipeline produces: *broker.Broker,
// which fans it out (tests collect them instead). Not to be confused with
// the push sinks of package sink, which are among the broker's consumers.
type Broker interface {
	Publish(*eventpb.LogEntry)
}

// Batcher is a Broker that can take a batch of entries and be told where
// the batch ends (*broker.Broker): RunSource publishes the events of one
// drain of a live source's input with PublishBatched and calls Flush once
// the source has nothing more at hand, so outputs write once per drain.
type Batcher interface {
	Broker
	PublishBatched(*eventpb.LogEntry)
	Flush()
}

// Options configure a pipeline. Zero values take the defaults.
type Options struct {
	// IdleFlush is how long a direction with boundary-less (raw) data
	// waits for more before it is emitted (default 100 ms).
	IdleFlush time.Duration
	// ConnIdle frees a connection's state after this long without data
	// (default 5 min); what it buffered is emitted first.
	ConnIdle time.Duration
	// MaxConns caps tracked connections (default 16,384); beyond it the
	// least recently active one is flushed and forgotten.
	MaxConns int
	// TSize truncates payloads to this many bytes (0: no limit).
	TSize int
	// StreamParts emits HTTP messages whose body is still arriving in
	// parts (decoder.Limits.StreamParts); Limits.StreamParts is ignored.
	StreamParts bool
	// Limits bound every decoder. Limits.Errors, if nil, counts decoder
	// failures in Stats as tlstap_decoder_errors_total.
	Limits decoder.Limits
	// RawOnly disables protocol decoding.
	RawOnly bool
	// VirtualClock drives idle timeouts from chunk timestamps only, so a
	// recording played at full speed splits raw data exactly as it did
	// live, on every run.
	VirtualClock bool
	// Stats receives the counters; nil creates a private set.
	Stats *stats.Set
	// Latency, if set, receives every event's delay from the capture
	// timestamp of the byte that completed its message to its
	// publication. Only a live source's timestamps make sense here.
	Latency *stats.Histogram
	// Node names this tlstap on every event, so events from many hosts
	// stay apart once merged (fleet mode); empty leaves it unset.
	Node string
	// Containers, if set, names the container of each connection's cgroup
	// (Event.container_id); Event.cgroup_id is set either way. Only a live
	// capture's cgroup ids mean anything on this host, so replay leaves it
	// nil.
	Containers Containers
	// Pods, if set, names the pod of each connection's container
	// (Event.pod_name, pod_namespace).
	Pods Pods
}

// Pods maps container ids to Kubernetes pods; kube.Watcher is one. It
// must not block: the pipeline asks it at every event of a container
// connection until it knows the pod (the pod may be learned from the API
// after the connection's first events, which then go out without it).
type Pods interface {
	Pod(containerID string) (namespace, name string, ok bool)
}

// Containers maps cgroup v2 ids to container ids; container.Resolver is
// one. Lookup says whether its answer is final: if not, the pipeline asks
// again at the connection's next event (a cgroup too new to be known).
type Containers interface {
	Lookup(cgroup uint64) (id string, final bool)
}

func (o *Options) defaults() {
	if o.IdleFlush <= 0 {
		o.IdleFlush = 100 * time.Millisecond
	}
	if o.ConnIdle <= 0 {
		o.ConnIdle = 5 * time.Minute
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 16384
	}
	if o.Limits == (decoder.Limits{}) {
		o.Limits = decoder.DefaultLimits()
	}
	if o.Stats == nil {
		o.Stats = stats.NewSet()
	}
	if o.Limits.Errors == nil {
		o.Limits.Errors = newDecoderErrors(o.Stats)
	}
}

// decoderErrors counts decoder failures into the stats registry: one
// counter per reason, registered at zero so that /metrics names every
// reason before it happens, and indexed by Reason so that counting costs
// no lookup.
type decoderErrors []*stats.Counter

func newDecoderErrors(st *stats.Set) *decoderErrors {
	rs := decoder.Reasons()
	e := make(decoderErrors, len(rs)+1)
	for _, r := range rs {
		e[r] = st.Counter(stats.DecoderErrorsTotal, "Input the decoders could not decode, by decoder and reason (internal/decoder/doc.go explains each).",
			"decoder", r.Decoder(), "reason", r.String())
	}
	return &e
}

// CountError implements decoder.ErrorCounter.
func (e *decoderErrors) CountError(r decoder.Reason) {
	if int(r) < len(*e) && (*e)[r] != nil {
		(*e)[r].Inc()
	}
}

// Runtime holds the settings that may change while the pipeline runs.
type Runtime struct {
	TSize     int
	IdleFlush time.Duration
	// StreamParts applies to connections opened after the change.
	StreamParts bool
}

// Pipeline is driven by Run on one goroutine; SetRuntime and Connections
// may be called from any goroutine.
type Pipeline struct {
	opts    Options
	broker  Broker
	runtime atomic.Pointer[Runtime]
	nconns  atomic.Int64

	// procs counts tracked connections per process, for status; updated
	// on open and close only, never per chunk.
	procMu sync.Mutex
	procs  map[uint32]*Process

	// batch is set while RunSource hands the pipeline a chunk of a
	// drain whose end a Flush of batcher marks.
	batcher Batcher
	batch   bool

	conns    map[connKey]*conn
	lru      list.List // front: most recently active
	nextConn uint64
	seq      uint64
	now      int64
	lastIdle int64
	lastGC   int64
	// sweeps counts the idle sweep timer's firings, for tests.
	sweeps atomic.Uint64

	c counters
}

type counters struct {
	chunks, bytes       *stats.Counter
	events              [6]*stats.Counter
	lost, evicted       *stats.Counter
	tsize, decoderTrunc *stats.Counter
	incomplete          *stats.Counter
	conns               *stats.Gauge
}

// New returns a pipeline that publishes to b.
func New(opts Options, b Broker) *Pipeline {
	opts.defaults()
	p := &Pipeline{opts: opts, broker: b, conns: make(map[connKey]*conn)}
	p.runtime.Store(&Runtime{TSize: opts.TSize, IdleFlush: opts.IdleFlush, StreamParts: opts.StreamParts})
	st := opts.Stats
	p.c = counters{
		chunks:       st.Counter(stats.ChunksTotal, "Capture chunks received."),
		bytes:        st.Counter(stats.BytesTotal, "Plaintext bytes received."),
		lost:         st.Counter(stats.DropsTotal, "", "reason", "capture_lost_bytes"),
		evicted:      st.Counter(stats.DropsTotal, "", "reason", "conn_evicted"),
		tsize:        st.Counter(stats.TruncationsTotal, "Events whose payload was cut, by reason.", "reason", "tsize"),
		decoderTrunc: st.Counter(stats.TruncationsTotal, "", "reason", "decoder_limit"),
		incomplete:   st.Counter("tlstap_events_incomplete_total", "Events for messages that never completed."),
		conns:        st.Gauge(stats.Connections, "Connections tracked by the pipeline."),
	}
	for t := range p.c.events {
		p.c.events[t] = st.Counter(stats.EventsTotal, "Events emitted, by type.", "type", decoder.Type(t).String())
	}
	return p
}

// SetRuntime changes the run-time settings; they apply from the next chunk.
func (p *Pipeline) SetRuntime(r Runtime) {
	if r.IdleFlush <= 0 {
		r.IdleFlush = p.opts.IdleFlush
	}
	p.runtime.Store(&r)
}

// Runtime returns the current run-time settings.
func (p *Pipeline) Runtime() Runtime { return *p.runtime.Load() }

// Process is a process with connections the pipeline tracks.
type Process struct {
	PID         uint32
	Comm        string
	Connections int
}

// Processes returns the processes with tracked connections, by pid.
func (p *Pipeline) Processes() []Process {
	p.procMu.Lock()
	out := make([]Process, 0, len(p.procs))
	for _, pr := range p.procs {
		out = append(out, *pr)
	}
	p.procMu.Unlock()
	slices.SortFunc(out, func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	return out
}

// Connections returns the number of connections tracked.
func (p *Pipeline) Connections() int { return int(p.nconns.Load()) }

// Run consumes chunks until in is closed or ctx is done, then flushes every
// connection and returns. It must be called once.
func (p *Pipeline) Run(ctx context.Context, in <-chan capture.Chunk) error {
	// The clock runs fast only while some connection has data waiting
	// for its idle flush; otherwise it fires when the least recently
	// active connection becomes idle, and not at all while none is
	// tracked: an idle tlstap has no timer waking it.
	var (
		t     *time.Timer
		tick  <-chan time.Time
		armed bool // t fires at the fast sweep rate
	)
	if !p.opts.VirtualClock {
		t = time.NewTimer(time.Hour)
		t.Stop()
		tick = t.C
	}
	defer p.flushAll()
	for {
		select {
		case c, ok := <-in:
			if !ok {
				return nil
			}
			p.Handle(&c)
			if t != nil && !armed {
				t.Reset(p.firstFlush())
				armed = true
			}
		case now := <-tick:
			armed = p.sweep(now, t)
		case <-ctx.Done():
			// Drain what the source already handed over, so a SIGINT
			// after a burst loses nothing that reached us.
			for {
				select {
				case c, ok := <-in:
					if !ok {
						return nil
					}
					p.Handle(&c)
				default:
					return nil
				}
			}
		}
	}
}

// sweep runs the idle sweeps due at now and sets t for the next one. It
// reports whether t is set for an idle flush (some connection has data its
// idle flush has not seen); if not, t is set for the next connection to
// free, or not at all.
//
// The next idle flush is set for when it is due, not at the sweep rate: a
// timer firing costs a thread wake-up or two in Go's runtime, and firing
// every sweepEvery while a connection had seen data made the idle sweeps
// a large part of a lightly loaded tlstap's context switches (about 27 per
// keep-alive request before, about 20 after: docs/benchmarks.md, issue 19,
// session 6).
func (p *Pipeline) sweep(now time.Time, t *time.Timer) (armed bool) {
	p.sweeps.Add(1)
	p.advance(now.UnixNano())
	due, armed := p.nextFlush()
	switch {
	case armed:
		// No sooner than advance runs the idle flushes again.
		at := max(due, p.lastIdle+int64(p.sweepEvery()))
		t.Reset(max(time.Duration(at-now.UnixNano()), 0))
	case p.lru.Len() > 0:
		// The next connection to free; a second's slack
		// groups neighbours into one wake-up.
		oldest := p.lru.Back().Value.(*conn)
		due := time.Duration(oldest.last + int64(p.opts.ConnIdle) - now.UnixNano())
		t.Reset(max(due, 0) + slowSweep)
	}
	return armed
}

// firstFlush is how long after a chunk the first idle flush can be due:
// armed after a chunk while no idle flush was, the timer waits that long.
func (p *Pipeline) firstFlush() time.Duration { return p.runtime.Load().IdleFlush }

// RunSource runs src through the pipeline until src ends, then flushes
// every connection and returns src's error. It must be called once, and
// not together with Run.
//
// A src that is a capture.KeepRunner (live capture, and every source the
// engine wraps in its filters) calls Handle itself, on its own goroutine:
// for live capture that is the ring reader's, so a record is decoded and
// published with no channel and no goroutine hand-off on the way. On this
// kind of VM each hand-off to a goroutine on another, idle CPU cost a
// thread wake-up of about 100 µs (docs/benchmarks.md, issue 19), a fifth
// of the latency goal. A burst is then buffered by the kernel's ring
// rather than by a channel. The idle sweeps run on a timer goroutine, under
// the same lock as Handle; an idle pipeline has no timer armed.
//
// Other sources send on a channel that Run reads, as before.
func (p *Pipeline) RunSource(ctx context.Context, src capture.Source) error {
	kr, ok := src.(capture.KeepRunner)
	if !ok {
		chunks := make(chan capture.Chunk, 4096)
		done := make(chan error, 1)
		go func() {
			defer close(chunks)
			done <- src.Run(ctx, chunks)
		}()
		_ = p.Run(context.Background(), chunks)
		return <-done
	}
	var (
		mu    sync.Mutex // guards the pipeline's state, armed, arm and ended
		armed bool       // t is set for an idle flush
		arm   bool       // a chunk came while t was not: the drain's end sets it
		ended bool
		t     *time.Timer
	)
	if !p.opts.VirtualClock {
		t = time.AfterFunc(time.Hour, func() {
			mu.Lock()
			defer mu.Unlock()
			if !ended {
				armed = p.sweep(time.Now(), t)
			}
		})
		t.Stop()
	}
	dr, drains := src.(capture.DrainRunner)
	b, batches := p.broker.(Batcher)
	batched := drains && batches
	keep := func(c *capture.Chunk) bool {
		mu.Lock()
		if batched {
			p.batcher, p.batch = b, true
		}
		p.Handle(c)
		p.batch = false
		if t != nil && !armed {
			if batched {
				arm = true
			} else {
				t.Reset(p.firstFlush())
				armed = true
			}
		}
		mu.Unlock()
		return false // handled: nothing is sent on the (nil) channel
	}
	// At a drain's end its events go out first, then the timer is set if
	// a chunk needs it: setting a timer sooner than any other wakes the
	// thread parked in Go's poller, and the first chunk after a pause (a
	// single request) would pay for that before its event was written.
	drained := func() {
		b.Flush()
		mu.Lock()
		if arm && !armed && !ended {
			t.Reset(p.firstFlush())
			armed = true
		}
		arm = false
		mu.Unlock()
	}
	var err error
	if batched {
		// Events of one drain go out together: one write to standard
		// output per drain under load, while a drain of one record (a
		// single request) is flushed as soon as it was handled. The
		// sweeps publish unbatched: no drain end follows them.
		err = dr.RunDrain(ctx, nil, keep, drained)
	} else {
		err = kr.RunKeep(ctx, nil, keep)
	}
	mu.Lock()
	ended = true
	if t != nil {
		t.Stop()
	}
	p.flushAll()
	mu.Unlock()
	return err
}

// slowSweep is the slack of freeing idle connections (ConnIdle, minutes)
// while no data waits for an idle flush.
const slowSweep = time.Second

// nextFlush reports whether a connection has data its idle flush has not
// seen yet, and when the first such flush is due (Unix ns).
func (p *Pipeline) nextFlush() (due int64, pending bool) {
	idle := int64(p.runtime.Load().IdleFlush)
	for e := p.lru.Front(); e != nil; e = e.Next() {
		if cn := e.Value.(*conn); cn.dirty {
			if d := cn.last + idle; !pending || d < due {
				due = d
			}
			pending = true
		}
	}
	return due, pending
}

func (p *Pipeline) sweepEvery() time.Duration {
	return max(5*time.Millisecond, p.opts.IdleFlush/4)
}

// Handle processes one chunk. Run calls it; tests and benchmarks may call
// it directly (then Close flushes at the end).
func (p *Pipeline) Handle(c *capture.Chunk) {
	if p.opts.VirtualClock {
		p.advance(c.Time)
	}
	p.c.chunks.Inc()
	p.c.bytes.Add(uint64(len(c.Data)))

	cn := p.conns[connKey{c.PID, c.Conn}]
	if cn == nil {
		if c.Kind == capture.Close {
			return
		}
		cn = p.open(c)
	} else {
		cn.update(c)
		p.lru.MoveToFront(cn.lru)
	}
	cn.last = max(cn.last, c.Time)
	if !p.opts.VirtualClock {
		cn.last = max(cn.last, time.Now().UnixNano())
	}

	switch c.Kind {
	case capture.Data:
		if len(c.Data) == 0 {
			return
		}
		cn.dirty = true
		cn.sess.Feed(c.Dir, c.Time, c.Data, cn.emit)
		// Streams by content type have their head emitted at once
		// (issue 18), decided per chunk so that replays match.
		cn.sess.StartParts(c.Time, cn.emit)
	case capture.Lost:
		p.c.lost.Add(c.LostBytes)
		cn.sess.Gap(c.Dir, c.LostBytes)
	case capture.Close:
		p.close(cn, c.Time)
	}
}

// Close flushes and forgets every connection. Run does it on return.
func (p *Pipeline) Close() { p.flushAll() }

func (p *Pipeline) open(c *capture.Chunk) *conn {
	if len(p.conns) >= p.opts.MaxConns {
		if old := p.lru.Back(); old != nil {
			p.c.evicted.Inc()
			p.close(old.Value.(*conn), c.Time)
		}
	}
	p.nextConn++
	rt := p.runtime.Load()
	lim := p.opts.Limits
	// A body that keeps arriving for longer than raw data may wait is a
	// stream.
	lim.StreamParts, lim.StreamAfter = rt.StreamParts, rt.IdleFlush
	sess := session.New(session.Options{Limits: lim, RawOnly: p.opts.RawOnly})
	cn := newConn(c, p.nextConn, sess)
	// One closure per connection, not one per chunk.
	cn.emit = func(dir capture.Direction, m *decoder.Message) { p.emit(cn, dir, m) }
	cn.lru = p.lru.PushFront(cn)
	p.conns[cn.key] = cn
	p.procMu.Lock()
	if p.procs == nil {
		p.procs = make(map[uint32]*Process)
	}
	pr := p.procs[c.PID]
	if pr == nil {
		pr = &Process{PID: c.PID, Comm: cn.comm}
		p.procs[c.PID] = pr
	}
	pr.Connections++
	p.procMu.Unlock()
	p.nconns.Store(int64(len(p.conns)))
	p.c.conns.Set(int64(len(p.conns)))
	return cn
}

func (p *Pipeline) close(cn *conn, ts int64) {
	cn.sess.Flush(ts, decoder.Close, cn.emit)
	p.lru.Remove(cn.lru)
	delete(p.conns, cn.key)
	p.procMu.Lock()
	if pr := p.procs[cn.key.pid]; pr != nil {
		if pr.Connections--; pr.Connections <= 0 {
			delete(p.procs, cn.key.pid)
		}
	}
	p.procMu.Unlock()
	p.nconns.Store(int64(len(p.conns)))
	p.c.conns.Set(int64(len(p.conns)))
}

// advance moves the pipeline's clock and runs the idle sweeps that are due.
func (p *Pipeline) advance(now int64) {
	if now <= p.now {
		return
	}
	p.now = now
	rt := p.runtime.Load()
	if now-p.lastIdle >= int64(p.sweepEvery()) {
		p.lastIdle = now
		for e := p.lru.Front(); e != nil; e = e.Next() {
			cn := e.Value.(*conn)
			if cn.dirty && now-cn.last >= int64(rt.IdleFlush) {
				cn.dirty = false
				cn.sess.Flush(now, decoder.Idle, cn.emit)
			}
		}
	}
	if now-p.lastGC >= int64(time.Second) {
		p.lastGC = now
		// Least recently active connections are at the back.
		for e := p.lru.Back(); e != nil; {
			cn := e.Value.(*conn)
			if now-cn.last < int64(p.opts.ConnIdle) {
				break
			}
			e = e.Prev()
			p.close(cn, now)
		}
	}
}

func (p *Pipeline) flushAll() {
	for e := p.lru.Back(); e != nil; {
		cn := e.Value.(*conn)
		e = e.Prev()
		p.close(cn, max(p.now, cn.last))
	}
}

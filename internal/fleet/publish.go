package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// DrainTimeout bounds waiting for acknowledgements when a Publisher stops.
const DrainTimeout = 2 * time.Second

// Publisher publishes one broker subscription to a JetStream stream. It
// implements the engine's Service.
type Publisher struct {
	t    Target
	node string
	run  string // message id prefix, unique to this run
	sub  *broker.Subscription
	log  *slog.Logger
	dial func(ctx context.Context, network, addr string) (net.Conn, error) // nil: nats.go dials

	// state is poked by the NATS client's connection callbacks.
	state chan struct{}
	n     uint64 // messages built, the message id's counter
	nodes map[string]*nodeSubjects
	// acksAsked counts the messages that asked for an acknowledgement
	// (benchmarks report it per event).
	acksAsked uint64
	// free holds confirmed messages for message to fill again: a header
	// map per event was the publisher's largest cost (docs/benchmarks.md).
	free []*nats.Msg

	sent, errs, connects, resent, dups, unsent *stats.Counter
	up                                         *stats.Gauge
}

// inflight is one message published and not yet acknowledged. Only every
// ackEvery-th message, and the last before the queue runs dry, asks for an
// acknowledgement (ack != nil); the others are published without a reply
// subject. JetStream stores one connection's messages to a stream in the
// order they were sent, so an acknowledgement confirms every message sent
// before it too; when one fails or does not come, everything after the
// last confirmed message is sent again and JetStream drops what it already
// has by message id. This halves the cost of a message (no reply to
// build, route and match), measured in docs/benchmarks.md.
type inflight struct {
	msg *nats.Msg
	ack jetstream.PubAckFuture
}

// idlePoll is how often a publisher waiting for acknowledgements with an
// empty queue looks for new entries.
const idlePoll = time.Millisecond

// maxAckEvery is how many messages at most share one acknowledgement.
const maxAckEvery = 64

// ackEvery is maxAckEvery, or fewer so that a full in-flight window always
// holds several acknowledged messages.
func (p *Publisher) ackEvery() int {
	return max(1, min(maxAckEvery, p.t.InFlight/4))
}

// NewPublisher subscribes to b at once, so entries published before Run
// wait in the outage buffer. node names this tlstap in subjects and
// headers. st and log may be nil.
func NewPublisher(addr, node string, b *broker.Broker, st *stats.Set, log *slog.Logger) (*Publisher, error) {
	t, err := ParseURL(addr)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = stats.NewSet()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [6]byte
	rand.Read(id[:])
	label := []string{"sink", "nats"}
	p := &Publisher{
		t:        t,
		node:     node,
		run:      hex.EncodeToString(id[:]),
		log:      log.With("sink", "nats", "addr", redact(addr)),
		state:    make(chan struct{}, 1),
		sent:     st.Counter("tlstap_sink_sent_total", "Entries written by push sinks.", label...),
		errs:     st.Counter("tlstap_sink_errors_total", "Push sink connect and write failures.", label...),
		connects: st.Counter("tlstap_sink_connects_total", "Push sink connections (or files) opened.", label...),
		up:       st.Gauge("tlstap_sink_up", "Push sinks currently connected.", label...),
		resent:   st.Counter("tlstap_nats_resent_total", "Messages published again after a failed or unacknowledged publish."),
		dups:     st.Counter("tlstap_nats_duplicates_total", "Re-sent messages JetStream had already stored."),
		unsent:   st.Counter(stats.DropsTotal, "Entries dropped, by reason.", "reason", "nats_unsent_at_exit"),
	}
	p.sub = b.Subscribe(broker.SubOptions{Name: "sink_nats", Queue: t.Buffer, Policy: broker.Drop})
	return p, nil
}

// DialWith makes the publisher's connections with dial (call it before
// Run): tlstap passes a dialer that registers each connection's local end,
// so a NATS server on this machine that tlstap captures never feeds the
// published events back (see internal/selfnet).
func (p *Publisher) DialWith(dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	p.dial = dial
}

// natsDialer adapts a context dial function to nats.CustomDialer.
type natsDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (d natsDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d(ctx, network, addr)
}

// Dropped returns how many entries did not fit the outage buffer.
func (p *Publisher) Dropped() uint64 { return p.sub.Dropped() }

func (p *Publisher) poke() {
	select {
	case p.state <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends or the broker closes, then waits up to
// DrainTimeout for what is queued and in flight.
func (p *Publisher) Run(ctx context.Context) error {
	defer p.sub.Close()
	opts, err := p.t.options("tlstap " + p.node)
	if err != nil {
		return err
	}
	opts = append(opts,
		// Without a client-side buffer a publish during an outage fails at
		// once and the entry stays in our own bounded, counted queue.
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { p.poke() }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			p.log.Warn("disconnected", "err", err)
			p.poke()
		}),
		nats.ReconnectHandler(func(*nats.Conn) { p.log.Info("reconnected"); p.poke() }),
		nats.ClosedHandler(func(*nats.Conn) { p.poke() }),
	)
	if p.dial != nil {
		opts = append(opts, nats.SetCustomDialer(natsDialer(p.dial)))
	}
	nc, err := nats.Connect(p.t.Server, opts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(2*p.t.InFlight),
		jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return p.loop(ctx, nc, js)
}

func (p *Publisher) loop(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	var (
		flight  []inflight
		retry   []*nats.Msg // to send before anything new, in order
		ready   bool        // the stream is known to exist
		up      bool
		unacked int    // messages published since the last that asked for an ack
		conns   uint64 // reconnects seen, to notice a drop between two looks
		backoff = 50 * time.Millisecond
	)
	// rewind abandons everything in flight: a publish failed or the
	// connection went, and every unacknowledged message is sent again,
	// in order; JetStream drops the copies it already stored.
	rewind := func() {
		msgs := make([]*nats.Msg, 0, len(flight)+len(retry))
		for _, f := range flight {
			msgs = append(msgs, f.msg)
		}
		p.resent.Add(uint64(len(flight)))
		retry = append(msgs, retry...)
		flight = flight[:0]
		unacked = 0
		// Acks still due are not waited for; this also frees their
		// slots in the client's pending limit.
		js.CleanupPublisher()
	}
	pause := func() bool {
		ok := p.wait(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
		return ok
	}
	defer func() { p.finish(nc, js, flight, retry, up, ready) }()
	for ctx.Err() == nil {
		now := nc.IsConnected()
		if r := nc.Stats().Reconnects; now && up && r != conns {
			now = false // dropped and back since the last look
		}
		if now != up {
			if now {
				p.connects.Inc()
				p.up.Add(1)
				conns = nc.Stats().Reconnects
			} else {
				p.up.Add(-1)
				ready = false
				rewind()
			}
			up = now
			continue
		}
		if !up {
			if nc.IsClosed() {
				return errors.New("nats: connection closed")
			}
			if !p.wait(ctx, time.Second) {
				return nil
			}
			continue
		}
		if !ready {
			if err := p.ensureStream(ctx, js); err != nil {
				p.errs.Inc()
				p.log.Warn("creating stream", "stream", p.t.Stream, "err", err, "retry_in", backoff)
				if !pause() {
					return nil
				}
				continue
			}
			ready = true
		}

		// Full: wait for the oldest ack. Nothing new to send: wait for it
		// too, but look for new entries every idlePoll, so a producer a
		// little slower than the server is not held to one round trip
		// per message.
		full := len(flight) >= p.t.InFlight
		idle := len(retry) == 0 && len(flight) > 0 && p.sub.Len() == 0
		block := full || idle
		n, err := p.collect(ctx, flight, block, idle && !full)
		for _, f := range flight[:n] {
			p.recycle(f.msg)
		}
		clear(flight[:n])
		flight = flight[n:]
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.errs.Inc()
			p.log.Warn("publish not acknowledged; sending again", "err", err, "in_flight", len(flight))
			rewind()
			if !pause() {
				return nil
			}
			continue
		}
		if block {
			continue // look again: more acks, a state change, new entries
		}

		var msg *nats.Msg
		if len(retry) > 0 {
			msg, retry = retry[0], retry[1:]
		} else {
			e, err := p.sub.Next(ctx)
			if err != nil {
				return nil // broker closed or ctx ended: finish drains
			}
			msg = p.message(e)
		}
		// Ask for an acknowledgement every ackEvery messages, and on the
		// last one before going idle, so the tail is confirmed too.
		var ack jetstream.PubAckFuture
		if unacked++; unacked >= p.ackEvery() || (len(retry) == 0 && p.sub.Len() == 0) {
			ack, err = js.PublishMsgAsync(msg)
			p.acksAsked++
			unacked = 0
		} else {
			err = nc.PublishMsg(msg)
		}
		if err != nil {
			p.errs.Inc()
			retry = append([]*nats.Msg{msg}, retry...)
			// What went before without an acknowledgement needs one.
			if unacked = p.ackEvery(); !pause() {
				return nil
			}
			continue
		}
		backoff = 50 * time.Millisecond
		flight = append(flight, inflight{msg: msg, ack: ack})
	}
	return nil
}

// collect counts the confirmed messages at the head of flight and
// returns how many there are: those up to the last acknowledged message
// before the first one not yet acknowledged. With block it first waits for
// the first acknowledgement due (or a state change, a timeout, the end of
// ctx). A failed ack returns its error, with the count before it.
func (p *Publisher) collect(ctx context.Context, flight []inflight, block, poll bool) (int, error) {
	n := 0
	next := func(from int) int { // index of the next message with an ack
		for i := from; i < len(flight); i++ {
			if flight[i].ack != nil {
				return i
			}
		}
		return -1
	}
	c := next(0)
	if block && c < 0 {
		// Cannot happen (the last message before idling and every
		// ackEvery-th ask for one), but waiting for nothing would spin:
		// send them again, asking.
		return 0, errors.New("no acknowledgement requested in flight")
	}
	if block {
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		var look <-chan time.Time
		if poll {
			lt := time.NewTimer(idlePoll)
			defer lt.Stop()
			look = lt.C
		}
		select {
		case a := <-flight[c].ack.Ok():
			p.confirm(c, a)
			n = c + 1
		case err := <-flight[c].ack.Err():
			return 0, err
		case <-look:
			return 0, nil
		case <-p.state:
			return 0, nil
		case <-t.C:
			return 0, errors.New("no acknowledgement for 10s")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	for {
		c = next(n)
		if c < 0 {
			return n, nil
		}
		select {
		case a := <-flight[c].ack.Ok():
			p.confirm(c-n, a)
			n = c + 1
		case err := <-flight[c].ack.Err():
			return n, err
		default:
			return n, nil
		}
	}
}

// confirm counts an acknowledged message and the before messages it
// confirms (sent without asking; whether JetStream already had them is
// not known).
func (p *Publisher) confirm(before int, a *jetstream.PubAck) {
	p.sent.Add(uint64(before))
	p.count(a)
}

func (p *Publisher) count(a *jetstream.PubAck) {
	if a.Duplicate {
		p.dups.Inc()
	} else {
		p.sent.Inc()
	}
}

// wait sleeps until d passes, the connection changes state or ctx ends;
// false means ctx ended.
func (p *Publisher) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-p.state:
	case <-t.C:
	}
	return true
}

// ensureStream creates the stream if it does not exist; an existing one is
// left as its owner configured it.
func (p *Publisher) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, p.t.Stream); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        p.t.Stream,
		Description: "tlstap events (LogEntry protobuf), subjects PREFIX.NODE.KIND",
		Subjects:    []string{p.t.Prefix + ".>"},
		MaxAge:      p.t.MaxAge,
		MaxBytes:    orUnlimited(p.t.MaxBytes),
		Duplicates:  p.t.Duplicates,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil // another node won the race
	}
	return err
}

func orUnlimited(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// message wraps e for JetStream; its bytes are shared, not copied. It
// runs once per event, so it avoids what nats.Header.Set costs (key
// canonicalization, a map grown on demand) and builds each node's
// subjects and header value once (subjects).
func (p *Publisher) message(e *broker.Entry) *nats.Msg {
	p.n++
	node := p.node
	var m *nats.Msg
	if k := len(p.free); k > 0 {
		m, p.free = p.free[k-1], p.free[:k-1]
	} else {
		m = &nats.Msg{Header: make(nats.Header, 5)}
	}
	h := m.Header
	ev := e.Event()
	uuid, container, pod := "", "", ""
	if ev != nil {
		if n := ev.GetNode(); n != "" {
			node = n
		}
		uuid, container = ev.GetUuid(), ev.GetContainerId()
		if name := ev.GetPodName(); name != "" {
			pod = ev.GetPodNamespace() + "/" + name
		}
	}
	setHeader(h, HeaderUUID, uuid, ev != nil)
	setHeader(h, HeaderContainer, container, container != "")
	setHeader(h, HeaderPod, pod, pod != "")
	ns := p.subjects(node)
	m.Subject = ns.log
	if ev != nil {
		m.Subject = ns.event[min(ev.GetType(), uint32(len(ns.event)-1))]
	}
	// Keys are already canonical (Set would make them so); the node's
	// value slice is shared by its messages, which nats.go only reads.
	h[HeaderNode] = ns.header
	var id [32]byte
	setHeader(h, jetstream.MsgIDHeader, string(strconv.AppendUint(append(append(id[:0], p.run...), '-'), p.n, 10)), true)
	m.Data = e.Bytes
	return m
}

// setHeader sets or (without ok) deletes key, reusing the value slice a
// recycled message has for it.
func setHeader(h nats.Header, key, v string, ok bool) {
	if !ok {
		delete(h, key)
	} else if old := h[key]; len(old) == 1 {
		old[0] = v
	} else {
		h[key] = []string{v}
	}
}

// recycle keeps a confirmed message for message to reuse. nats.go has
// written it to the connection's buffer and dropped its acknowledgement
// future, so nothing else refers to it; the free list holds at most an
// in-flight window.
func (p *Publisher) recycle(m *nats.Msg) {
	if m != nil && len(p.free) < p.t.InFlight {
		m.Data = nil
		p.free = append(p.free, m)
	}
}

// nodeSubjects are one node's subjects, by event type (the last for
// every type Kind calls unknown) and for log entries, and its header value.
type nodeSubjects struct {
	event  [int(decoder.WebSocket) + 2]string
	log    string
	header []string
}

// maxNodes bounds the subject cache: a live capture has one node, a
// replay of merged recordings a few.
const maxSubjectNodes = 256

func (p *Publisher) subjects(node string) *nodeSubjects {
	if ns, ok := p.nodes[node]; ok {
		return ns
	}
	if p.nodes == nil || len(p.nodes) >= maxSubjectNodes {
		p.nodes = map[string]*nodeSubjects{}
	}
	ns := &nodeSubjects{header: []string{node}, log: Subject(p.t.Prefix, node, KindLog)}
	for t := range ns.event {
		ns.event[t] = Subject(p.t.Prefix, node, Kind(&eventpb.LogEntry{Payload: &eventpb.LogEntry_EventPayload{
			EventPayload: &eventpb.Event{Type: uint32(t)}}}))
	}
	p.nodes[node] = ns
	return ns
}

// finish waits up to DrainTimeout for the queue to go out and everything
// in flight to be acknowledged; what remains is counted as dropped.
func (p *Publisher) finish(nc *nats.Conn, js jetstream.JetStream, flight []inflight, retry []*nats.Msg, up, ready bool) {
	deadline := time.Now().Add(DrainTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// A short run (a replay with --exit) may end before the first
	// connection is up: give it the drain time to come.
	for !nc.IsConnected() && p.wait(ctx, 20*time.Millisecond) {
	}
	if !ready && nc.IsConnected() {
		ready = p.ensureStream(ctx, js) == nil
	}
	for ready && nc.IsConnected() && ctx.Err() == nil {
		var m *nats.Msg
		switch {
		case len(retry) > 0:
			m = retry[0]
		case p.sub.Len() > 0:
			e, err := p.sub.Next(context.Background())
			if err != nil {
				break
			}
			m = p.message(e)
		}
		if m == nil {
			break
		}
		ack, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Until(deadline)))
		if err != nil {
			if len(retry) == 0 {
				retry = append(retry, m)
			}
			break
		}
		if len(retry) > 0 {
			retry = retry[1:]
		}
		flight = append(flight, inflight{msg: m, ack: ack})
	}
	// The last messages may have been sent without asking for an
	// acknowledgement: ask with the last one again (JetStream drops the
	// copy and acknowledges it as a duplicate).
	if n := len(flight); n > 0 && flight[n-1].ack == nil && nc.IsConnected() {
		if ack, err := js.PublishMsgAsync(flight[n-1].msg, jetstream.WithStallWait(time.Until(deadline))); err == nil {
			flight = append(flight, inflight{msg: flight[n-1].msg, ack: ack})
		}
	}
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	acked, pending := 0, 0
wait:
	for _, f := range flight {
		if f.ack == nil {
			pending++
			continue
		}
		select {
		case a := <-f.ack.Ok():
			p.confirm(pending, a)
			acked += pending + 1
			pending = 0
		case <-f.ack.Err():
			break wait
		case <-timeout.C:
			break wait
		}
	}
	unsent := len(flight) - acked
	if n := len(flight); n > 1 && flight[n-1].msg == flight[n-2].msg && acked < n {
		unsent-- // the copy asking for the acknowledgement is not an entry
	}
	p.unsent.Add(uint64(unsent + len(retry) + p.sub.Len()))
	if up {
		p.up.Add(-1)
	}
}

// redact hides credentials in a URL for logs.
func redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil {
		return "nats://?"
	}
	u.RawQuery = ""
	return u.Redacted()
}

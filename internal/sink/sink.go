package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/stats"
)

// Format is what a sink writes: output.Format, the one format type.
type Format = output.Format

// The formats a sink writes.
const (
	// Protobuf: LogEntry messages, length-delimited on TCP and files.
	Protobuf = output.Protobuf
	// JSON: one output.JSON object per event.
	JSON = output.JSON
	// Text: output.Text blocks.
	Text = output.Text
)

// ParseFormat validates an --eventaddr-format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Protobuf, JSON, Text:
		return f, nil
	case "":
		return Protobuf, nil
	}
	return "", fmt.Errorf("unknown event format %q (want protobuf, json or text)", s)
}

// Options configure a sink. Zero values take the defaults.
type Options struct {
	Format Format
	// Queue is the subscription's queue length (default 4096 entries).
	Queue int
	// BackoffMin and BackoffMax bound the reconnect delay, which doubles
	// after each failure and is jittered as internal/backoff describes
	// (defaults 100 ms and 10 s).
	BackoffMin, BackoffMax time.Duration
	// DialTimeout bounds connecting, WriteTimeout one write (defaults 5 s).
	DialTimeout, WriteTimeout time.Duration
	// TLS configures wss:// (default: system roots).
	TLS *tls.Config
	// DialContext, if set, makes the tcp:// and ws(s):// connections;
	// tlstap registers their local ends through it so that the capture
	// never sees them (see internal/selfnet).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// RotateBytes starts a new file once the current one holds this many
	// bytes (0: never). RotateAge starts one once the current one is this
	// old and not empty (0: never). Files only.
	RotateBytes int64
	RotateAge   time.Duration
	// DrainTimeout bounds writing out what is still queued when the
	// context ends (default 2 s).
	DrainTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Format == "" {
		o.Format = Protobuf
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 100 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(10*time.Second, o.BackoffMin)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 2 * time.Second
	}
}

// conn is one open destination: a connection or a file.
type conn interface {
	// write sends one encoded entry; binary distinguishes protobuf from
	// text for message-oriented transports.
	write(ctx context.Context, b []byte, binary bool) error
	// flush pushes buffered bytes out; called whenever the queue runs dry.
	flush() error
	close() error
}

// rotator is a conn that wants to act at a given time even if no entry
// arrives (file rotation by age).
type rotator interface {
	due() time.Time
	tick() error
}

// Sink pushes one broker subscription to one address.
type Sink struct {
	addr   string
	kind   string
	opts   Options
	sub    *broker.Subscription
	log    *slog.Logger
	open   func(ctx context.Context) (conn, error)
	stream bool // length-prefix protobuf frames

	sent, errs, connects *stats.Counter
	up                   *stats.Gauge
	enc                  bytes.Buffer
	frame                []byte
	// written and abandoned are this sink's own totals for the summary
	// at exit; the stats counters are shared by every sink of a kind.
	written, abandoned atomic.Uint64
}

// New parses addr — tcp://host:port, ws://…, wss://… or a file path (or
// file://path) — and subscribes to b at once, so entries published before
// Run are queued. st and log may be nil.
func New(addr string, opts Options, b *broker.Broker, st *stats.Set, log *slog.Logger) (*Sink, error) {
	opts.defaults()
	if _, err := ParseFormat(string(opts.Format)); err != nil {
		return nil, err
	}
	if st == nil {
		st = stats.NewSet()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{addr: addr, opts: opts}
	u, err := url.Parse(addr)
	switch {
	case err == nil && u.Scheme == "tcp":
		if u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("sink %q: want tcp://host:port", addr)
		}
		s.kind, s.stream = "tcp", true
		host := u.Host
		s.open = func(ctx context.Context) (conn, error) { return dialTCP(ctx, host, &s.opts) }
	case err == nil && (u.Scheme == "ws" || u.Scheme == "wss"):
		if u.Host == "" {
			return nil, fmt.Errorf("sink %q: missing host", addr)
		}
		s.kind = u.Scheme
		s.open = func(ctx context.Context) (conn, error) { return dialWS(ctx, addr, &s.opts) }
	case err == nil && u.Scheme == "file":
		// file:///abs/path and file://relative/path alike.
		return New(strings.TrimPrefix(addr, "file://"), opts, b, st, log)
	case err == nil && strings.Contains(addr, "://"):
		return nil, fmt.Errorf("sink %q: unsupported scheme %q (want tcp, ws, wss or a file path)", addr, u.Scheme)
	default:
		if addr == "" {
			return nil, errors.New("sink: empty address")
		}
		s.kind, s.stream = "file", true
		s.open = func(context.Context) (conn, error) { return openFile(addr, &s.opts, st) }
	}
	s.log = log.With("sink", s.kind, "addr", redact(addr))
	label := []string{"sink", s.kind}
	s.sent = st.Counter("tlstap_sink_sent_total", "Entries written by push sinks.", label...)
	s.errs = st.Counter("tlstap_sink_errors_total", "Push sink connect and write failures.", label...)
	s.connects = st.Counter("tlstap_sink_connects_total", "Push sink connections (or files) opened.", label...)
	s.up = st.Gauge("tlstap_sink_up", "Push sinks currently connected.", label...)
	s.sub = b.Subscribe(broker.SubOptions{
		Name:   "sink_" + s.kind,
		Queue:  opts.Queue,
		Policy: broker.Drop,
		Filter: s.wants,
	})
	return s, nil
}

// redact hides credentials in a URL for logs.
func redact(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return addr
	}
	return u.Redacted()
}

// wants keeps non-event entries out of text formats; runs on the publisher.
func (s *Sink) wants(e *broker.Entry) bool {
	return s.opts.Format == Protobuf || e.Event() != nil
}

// Dropped returns how many entries this sink's queue has dropped.
func (s *Sink) Dropped() uint64 { return s.sub.Dropped() }

// Delivery reports what this sink did with its entries: written, failed
// (always 0: a failed write is retried on the next connection) and
// dropped (a full queue, or still queued when Run gave up at its end).
func (s *Sink) Delivery() (delivered, failed, dropped uint64) {
	return s.written.Load(), 0, s.Dropped() + s.abandoned.Load()
}

package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/stats"
)

// Mode says what a forwarder does with an event.
type Mode string

const (
	// Webhook sends each matching event to the URL.
	Webhook Mode = "webhook"
	// Proxy re-sends each matching captured request through the HTTP proxy
	// at the URL, to the request's real destination.
	Proxy Mode = "proxy"
)

// Format is the webhook body format.
type Format string

const (
	JSON     Format = "json"
	Protobuf Format = "protobuf"
)

// Options mirror the --forward-* flags. Zero values take the defaults.
type Options struct {
	// URLs are the destinations: webhook endpoints or proxy addresses
	// (e.g. Burp's http://127.0.0.1:8080). Each gets its own queue.
	URLs []string
	// Filter is the --forward-filter text (see Filter).
	Filter string
	// Method is the webhook's HTTP method (default POST).
	Method string
	Mode   Mode   // default webhook
	Format Format // webhook body, default json
	// Scheme is the scheme requests are replayed with in proxy mode.
	// Default https: every captured request travelled over TLS.
	Scheme string
	// Workers send concurrently per destination (default 4); with more
	// than one, a destination may see events out of order.
	Workers int
	// Queue is each destination's queue length (default 1024 events).
	Queue int
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// Retries is how many times a failed attempt is repeated (default 3;
	// negative: never). BackoffMin doubles per retry up to BackoffMax
	// (defaults 200 ms and 5 s), jittered as internal/backoff describes.
	Retries                int
	BackoffMin, BackoffMax time.Duration
	// TLS configures HTTPS webhooks (default: system roots). Proxy mode
	// ignores it: see the package documentation.
	TLS *tls.Config
	// DialContext, if set, makes every connection (to webhooks and to the
	// proxy); tlstap registers their local ends through it so that the
	// capture never sees them (see internal/selfnet).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o *Options) defaults() {
	if o.Mode == "" {
		o.Mode = Webhook
	}
	if o.Format == "" {
		o.Format = JSON
	}
	if o.Method == "" {
		o.Method = http.MethodPost
	}
	if o.Scheme == "" {
		o.Scheme = "https"
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 200 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(5*time.Second, o.BackoffMin)
	}
}

// safeMethods is proxy mode's method filter when the filter names none:
// replaying them should not change anything on the server.
var safeMethods = []string{"GET", "HEAD", "OPTIONS"}

// Forwarder sends events to its destinations; see the package doc.
type Forwarder struct {
	opts   Options
	filter *Filter
	log    *slog.Logger
	dests  []*dest
	self   int64
	guard  loopGuard

	retries, failed, skipped *stats.Counter
	st                       *stats.Set
	n                        deliveryCounts
}

type dest struct {
	url    *url.URL
	name   string // for logs and labels: scheme://host, no credentials
	client *http.Client
	sub    *broker.Subscription

	// A dead destination fails every event: warn once per warnEvery and
	// say how many failures went unlogged in between.
	lastWarn   atomic.Int64
	suppressed atomic.Int64
}

const warnEvery = 10 * time.Second

// New validates opts and subscribes to b, so events published before Run
// are queued. st and log may be nil.
func New(opts Options, b *broker.Broker, st *stats.Set, log *slog.Logger) (*Forwarder, error) {
	opts.defaults()
	if st == nil {
		st = stats.NewSet()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch opts.Mode {
	case Webhook, Proxy:
	default:
		return nil, fmt.Errorf("unknown forward mode %q (want proxy or webhook)", opts.Mode)
	}
	switch opts.Format {
	case JSON, Protobuf:
	default:
		return nil, fmt.Errorf("unknown forward format %q (want json or protobuf)", opts.Format)
	}
	if opts.Scheme != "https" && opts.Scheme != "http" {
		return nil, fmt.Errorf("unknown replay scheme %q (want https or http)", opts.Scheme)
	}
	if len(opts.URLs) == 0 {
		return nil, errors.New("forward: no URL")
	}
	filter, err := ParseFilter(opts.Filter)
	if err != nil {
		return nil, err
	}
	if opts.Mode == Proxy && !filter.Has("method") {
		if filter, err = filter.withMethods(safeMethods...); err != nil {
			return nil, err
		}
	}
	f := &Forwarder{
		opts:    opts,
		filter:  filter,
		log:     log.With("forward", string(opts.Mode)),
		self:    int64(os.Getpid()),
		st:      st,
		retries: st.Counter("tlstap_forward_retries_total", "Forwarder attempts repeated after a failure.", "mode", string(opts.Mode)),
		failed:  st.Counter("tlstap_forward_failed_total", "Events the forwarder gave up on after its retries.", "mode", string(opts.Mode)),
		skipped: st.Counter("tlstap_forward_skipped_total", "Request events that could not be replayed (malformed, CONNECT).", "mode", string(opts.Mode)),
	}
	for _, raw := range opts.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("forward URL %q: want http:// or https:// with a host", raw)
		}
		d := &dest{url: u, name: u.Scheme + "://" + u.Host, client: f.client(u)}
		f.dests = append(f.dests, d)
	}
	// Subscribe last, so a bad option leaves no subscription behind.
	for _, d := range f.dests {
		d.sub = b.Subscribe(broker.SubOptions{
			Name:   "forward_" + string(opts.Mode),
			Queue:  opts.Queue,
			Policy: broker.Drop,
			Filter: f.wants,
		})
	}
	return f, nil
}

func (f *Forwarder) client(u *url.URL) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = f.opts.Workers
	if f.opts.DialContext != nil {
		t.DialContext = f.opts.DialContext
	}
	if f.opts.Mode == Proxy {
		t.Proxy = http.ProxyURL(u)
		// The proxy presents certificates it made up for every host:
		// that is how Burp and mitmproxy see inside TLS. Verifying them
		// would need the proxy's CA; accepting them is the point.
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // see above and the package doc
		// Send what was captured: no Accept-Encoding of our own.
		t.DisableCompression = true
		t.ForceAttemptHTTP2 = false
	} else if f.opts.TLS != nil {
		t.TLSClientConfig = f.opts.TLS.Clone()
	}
	return &http.Client{
		Transport: t,
		Timeout:   f.opts.Timeout,
		// A redirect is the server's answer, not something to chase.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// wants runs on the publisher's goroutine: cheap checks only.
func (f *Forwarder) wants(e *broker.Entry) bool {
	ev := e.Event()
	if ev == nil {
		return false
	}
	// Never forward our own traffic: a webhook over a traced TLS library
	// would otherwise feed itself.
	if ev.GetPid() == f.self {
		return false
	}
	if f.guard.skip(ev) {
		return false
	}
	if f.opts.Mode == Proxy && !decoder.Type(ev.GetType()).IsRequest() {
		return false
	}
	return f.filter.Match(ev)
}

// Dropped returns how many events all destinations' queues dropped.
func (f *Forwarder) Dropped() uint64 {
	var n uint64
	for _, d := range f.dests {
		n += d.sub.Dropped()
	}
	return n
}

// Run sends until ctx ends or the broker closes; requests in flight are
// cancelled when ctx ends. After the broker closes, Run delivers what is
// queued and returns, so cancel ctx only to give up on that.
func (f *Forwarder) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, d := range f.dests {
		jobs := make(chan *broker.Entry)
		// One reader per destination hands entries to idle workers; the
		// queue stays in the subscription, where overflow is counted.
		wg.Go(func() {
			defer close(jobs)
			defer d.sub.Close()
			for {
				e, err := d.sub.Next(ctx)
				if err != nil {
					f.n.abandoned.Add(uint64(d.sub.Len()))
					return
				}
				if e.Event() == nil {
					continue // the broker's notice about drops; counted already
				}
				select {
				case jobs <- e:
				case <-ctx.Done():
					f.n.abandoned.Add(1 + uint64(d.sub.Len()))
					return
				}
			}
		})
		for range f.opts.Workers {
			wg.Go(func() {
				for e := range jobs {
					f.send(ctx, d, e)
				}
			})
		}
	}
	wg.Wait()
	for _, d := range f.dests {
		d.client.CloseIdleConnections()
	}
	return nil
}

package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// DefaultURL is the local server's stream.
const DefaultURL = "wss://127.0.0.1:28256/ws"

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("client: closed")

// Filters ask the server to send only matching events. Empty fields match
// everything; values of one field are alternatives, fields combine with AND.
// Filter is an expression in tlstap's filter language (docs/filters.md:
// "~m POST & ~c 5xx", "host=*.example.com & !path=/health"); the other
// fields are older spellings of single terms of it (PIDs is pid=…, Pnames
// comm=…) and are ANDed with it.
type Filters struct {
	Filter string

	PIDs   []int64
	Pnames []string
	// Types are numbers (0-5) or names (raw, http1-request, http2-request,
	// http1-response, http2-response, websocket, request, response, http).
	Types []string
	// Hosts match the HTTP Host/:authority: "example.com" on any port,
	// "example.com:8443", "*.example.com".
	Hosts []string
	// Ports match the source or destination port.
	Ports []uint16
	// Nodes and Containers match the fleet attribution; a container
	// matches by id prefix.
	Nodes      []string
	Containers []string
	// NoLogs leaves out the server's process-log entries.
	NoLogs bool
}

// Values returns f as stream query parameters.
func (f *Filters) Values() url.Values {
	v := url.Values{}
	f.encode(v)
	return v
}

func (f *Filters) encode(v url.Values) {
	if f.Filter != "" {
		v.Set("filter", f.Filter)
	}
	for _, p := range f.PIDs {
		v.Add("pid", strconv.FormatInt(p, 10))
	}
	for _, p := range f.Pnames {
		v.Add("pname", p)
	}
	for _, t := range f.Types {
		v.Add("type", t)
	}
	for _, h := range f.Hosts {
		v.Add("host", h)
	}
	for _, p := range f.Ports {
		v.Add("port", strconv.Itoa(int(p)))
	}
	for _, n := range f.Nodes {
		v.Add("node", n)
	}
	for _, c := range f.Containers {
		v.Add("container", c)
	}
	if f.NoLogs {
		v.Set("logs", "0")
	}
}

// Options configure a Client.
type Options struct {
	// URL is the stream, DefaultURL if empty. A "token" query parameter
	// in it is kept.
	URL string
	// Token is sent as "Authorization: Bearer".
	Token string
	// Fingerprint pins the server certificate by its SHA-256 (see
	// tlsauth.ParseFingerprint for the accepted forms); any other
	// certificate is refused.
	Fingerprint string
	// CACert is a PEM file of CAs to verify the server against instead of
	// the system roots.
	CACert string
	// ClientCert and ClientKey are PEM files for servers that require
	// mutual TLS.
	ClientCert, ClientKey string
	// InsecureSkipVerify accepts any server certificate. Anyone on the
	// path can then read the stream and the token.
	InsecureSkipVerify bool

	Filters Filters
	// Since resumes after this event seq on the first connection; 0
	// starts with live events. Replay asks for everything the server
	// retains (since=0).
	Since  uint64
	Replay bool

	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// attempts (defaults 250 ms and 30 s), jittered as internal/backoff
	// describes. NoReconnect ends the client
	// when the first connection ends.
	ReconnectMin, ReconnectMax time.Duration
	NoReconnect                bool
	// IdleTimeout reconnects when nothing, not even a heartbeat, arrived
	// for this long (default 60 s, four server heartbeats).
	IdleTimeout time.Duration
	// ReadLimit caps one message (default 256 MiB).
	ReadLimit int64
	// Buffer is the delivery channel's capacity (default 256).
	Buffer int
	// Header adds handshake headers (e.g. Origin).
	Header http.Header
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 250 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 30 * time.Second
	}
	o.ReconnectMax = max(o.ReconnectMax, o.ReconnectMin)
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 256 << 20
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Client is a reconnecting stream reader. Its goroutine runs from Dial
// until the context ends, Close is called or a permanent error occurs;
// then the channel is closed and Err says why.
type Client struct {
	opts   Options
	url    *url.URL
	httpc  *http.Client
	ch     chan *eventpb.LogEntry
	cancel context.CancelFunc
	done   chan struct{}

	// Resume state, owned by the run goroutine; lastSeq is atomic for
	// readers from outside.
	lastSeq atomic.Uint64
	resume  bool

	reconnects atomic.Int64
	errMu      sync.Mutex
	err        error
}

// Dial connects and starts the client: the first connection's errors
// (refused, unauthorized, wrong fingerprint) are returned here, later ones
// are retried. The client runs until ctx ends or Close.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	ws, err := c.dial(ctx)
	if err != nil {
		c.httpc.CloseIdleConnections()
		return nil, err
	}
	c.start(ctx, ws)
	return c, nil
}

// New starts a client that connects in the background and retries until
// it succeeds; permanent errors end it (see Err).
func New(ctx context.Context, opts Options) (*Client, error) {
	c, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	c.start(ctx, nil)
	return c, nil
}

func newClient(opts Options) (*Client, error) {
	opts.defaults()
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("client: url: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("client: url %q: scheme must be ws or wss", opts.URL)
	}
	tc, err := tlsConfig(&opts, u.Hostname())
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts: opts,
		url:  u,
		httpc: &http.Client{Transport: &http.Transport{
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: 10 * time.Second,
			// No proxy: the token must go to the server, nowhere else.
			Proxy: nil,
		}},
		ch:   make(chan *eventpb.LogEntry, opts.Buffer),
		done: make(chan struct{}),
	}
	if opts.Since > 0 || opts.Replay {
		c.resume = true
		c.lastSeq.Store(opts.Since)
	}
	return c, nil
}

func tlsConfig(o *Options, serverName string) (*tls.Config, error) {
	var c *tls.Config
	switch {
	case o.Fingerprint != "":
		fp, err := tlsauth.ParseFingerprint(o.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		c = tlsauth.PinnedConfig(fp)
	case o.CACert != "":
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("client: CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: CA %s: no PEM certificate", o.CACert)
		}
		c = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: serverName}
	default:
		c = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	}
	if o.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	c.NextProtos = []string{"http/1.1"}
	return c, nil
}

// C returns the channel entries are delivered on; it is closed when the
// client ends.
func (c *Client) C() <-chan *eventpb.LogEntry { return c.ch }

// Next returns the next entry: an event, a process log or notice, or a
// heartbeat. After the client ended it returns Err().
func (c *Client) Next(ctx context.Context) (*eventpb.LogEntry, error) {
	select {
	case m, ok := <-c.ch:
		if !ok {
			return nil, c.Err()
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// LastSeq returns the seq the client would resume after.
func (c *Client) LastSeq() uint64 { return c.lastSeq.Load() }

// Reconnects returns how many times the client reconnected.
func (c *Client) Reconnects() int { return int(c.reconnects.Load()) }

// Err returns why the client ended, nil while it runs.
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close stops the client and waits for its goroutine.
func (c *Client) Close() error {
	c.setErr(ErrClosed)
	c.cancel()
	<-c.done
	return nil
}

// Done is closed when the client has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) setErr(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

func (c *Client) start(ctx context.Context, ws *websocket.Conn) {
	ctx, c.cancel = context.WithCancel(ctx)
	go func() {
		defer close(c.done)
		defer close(c.ch)
		defer c.httpc.CloseIdleConnections()
		c.setErr(c.run(ctx, ws))
	}()
}

// run reads connection after connection until ctx ends or an error is
// permanent. ws, if not nil, is an established first connection.
func (c *Client) run(ctx context.Context, ws *websocket.Conn) error {
	bo := backoff.Backoff{Min: c.opts.ReconnectMin, Max: c.opts.ReconnectMax}
	attempt := 0
	for {
		if ws == nil {
			var err error
			ws, err = c.dial(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if permanent(err) || c.opts.NoReconnect {
					return err
				}
				c.opts.Logger.Debug("stream connect failed", "err", err, "attempt", attempt+1)
				if err := sleep(ctx, bo.Next()); err != nil {
					return err
				}
				attempt++
				continue
			}
		}
		got, err := c.read(ctx, ws)
		ws = nil
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.opts.NoReconnect {
			return err
		}
		if got > 0 {
			attempt = 0
			bo.Reset()
		}
		c.opts.Logger.Info("stream disconnected, reconnecting", "err", err, "resume_after", c.lastSeq.Load())
		c.reconnects.Add(1)
		if err := sleep(ctx, bo.Next()); err != nil {
			return err
		}
		attempt++
	}
}

// dial opens one connection, resuming if the client has a position.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	u := *c.url
	v := u.Query()
	c.opts.Filters.encode(v)
	if c.resume {
		v.Set("since", strconv.FormatUint(c.lastSeq.Load(), 10))
	}
	u.RawQuery = v.Encode()
	h := http.Header{}
	for k, vs := range c.opts.Header {
		h[k] = vs
	}
	if c.opts.Token != "" {
		h.Set("Authorization", "Bearer "+c.opts.Token)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: c.httpc, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			se := &StatusError{Code: resp.StatusCode, Status: resp.Status}
			if resp.StatusCode == http.StatusBadRequest && resp.Body != nil {
				// The server says what is wrong with the query (a filter's
				// parse error, with its position).
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
				se.Message = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "400 bad request:"))
			}
			return nil, se
		}
		return nil, fmt.Errorf("client: %w", err)
	}
	ws.SetReadLimit(c.opts.ReadLimit)
	return ws, nil
}

// StatusError is a refused handshake.
type StatusError struct {
	Code   int
	Status string
	// Message is the server's explanation of a 400 (bad filter), if any.
	Message string
}

func (e *StatusError) Error() string {
	switch e.Code {
	case http.StatusUnauthorized:
		return "client: server refused the token (401): pass the token shown at server start"
	case http.StatusForbidden:
		return "client: server refused the Origin (403)"
	}
	if e.Message != "" {
		return "client: server refused the connection: " + e.Status + ": " + e.Message
	}
	return "client: server refused the connection: " + e.Status
}

// permanent reports errors a retry cannot fix.
func permanent(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 400 && se.Code < 500 && se.Code != http.StatusTooManyRequests
	}
	var cve *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	return errors.Is(err, tlsauth.ErrFingerprint) || errors.As(err, &cve) || errors.As(err, &ue) || errors.As(err, &he)
}

// read delivers one connection's messages until it ends and returns how
// many it received.
func (c *Client) read(ctx context.Context, ws *websocket.Conn) (int, error) {
	// Reads carry no context: coder/websocket would arm a timer per
	// message. The watchdog below closes the connection instead, on
	// cancellation or when the server has gone silent.
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	wctx, stop := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		t := time.NewTicker(max(c.opts.IdleTimeout/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				if ctx.Err() != nil {
					_ = ws.Close(websocket.StatusNormalClosure, "")
				}
				return
			case now := <-t.C:
				if now.UnixNano()-last.Load() > int64(c.opts.IdleTimeout) {
					c.opts.Logger.Warn("stream silent, reconnecting", "idle", c.opts.IdleTimeout)
					_ = ws.CloseNow()
					return
				}
			}
		}
	}()
	defer func() {
		stop()
		<-watchDone
		_ = ws.CloseNow()
	}()

	n := 0
	for {
		typ, b, err := ws.Read(context.Background())
		if err != nil {
			return n, err
		}
		last.Store(time.Now().UnixNano())
		n++
		if typ != websocket.MessageBinary {
			continue // not part of the protocol
		}
		m := new(eventpb.LogEntry)
		if err := proto.Unmarshal(b, m); err != nil {
			c.opts.Logger.Warn("undecodable stream message", "err", err, "len", len(b))
			continue
		}
		switch {
		case m.GetEventPayload() != nil:
			// The latest, not the largest: after a server restart
			// sequence numbers start again at 1.
			c.lastSeq.Store(m.GetEventPayload().GetSeq())
			c.resume = true
		case !c.resume && m.GetHeartbeatPayload().GetCount() == 1:
			// A fresh stream starts right after the first heartbeat's
			// last_seq (see package server).
			c.lastSeq.Store(m.GetHeartbeatPayload().GetLastSeq())
			c.resume = true
		}
		select {
		case c.ch <- m:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	"github.com/tlstap/tlstap/internal/stats"
)

// Metric names of the server.
const (
	rejectedTotal     = "tlstap_server_rejected_total"
	rejectedHelp      = "WebSocket and API requests refused, by reason."
	clientsTotal      = "tlstap_server_clients_total"
	slowDisconnects   = "tlstap_server_slow_disconnects_total"
	sentTotal         = "tlstap_server_sent_total"
	sentBytesTotal    = "tlstap_server_sent_bytes_total"
	heartbeatsTotal   = "tlstap_server_heartbeats_total"
	listenerMain      = "main"
	listenerECaptureQ = "ecaptureq"
)

// shutdownGrace bounds how long Run waits for HTTP handlers after its
// context ends; WebSocket clients get a close frame and are always waited
// for.
const shutdownGrace = 5 * time.Second

// Server streams the broker's entries to WebSocket clients.
type Server struct {
	opts    Options
	b       *broker.Broker
	stats   *stats.Set
	log     *slog.Logger
	ecq     config.ECaptureQ
	token   string
	checker *tlsauth.Checker // nil with auth none
	ecqAuth *tlsauth.Checker // nil: the eCaptureQ listener needs no token
	fp      tlsauth.Fingerprint
	mux     *http.ServeMux

	mainLn, ecqLn net.Listener

	// connCtx is cancelled at shutdown; every client's context derives
	// from it.
	connCtx    context.Context
	cancelConn context.CancelFunc

	mu       sync.Mutex
	closing  bool
	clients  sync.WaitGroup
	nclients atomic.Int64
	ran      atomic.Bool

	m metrics
}

type metrics struct {
	rejected          map[string]*stats.Counter
	total             map[string]*stats.Counter
	clients           map[string]*stats.Gauge
	slow, sent, sentB *stats.Counter
	heartbeats        *stats.Counter
}

// New validates opts, loads or creates the certificate and token and binds
// the listeners, so that address and permission errors surface here. The
// caller must call Run, or Close if it gives up before.
func New(opts Options, b *broker.Broker, st *stats.Set, log *slog.Logger) (*Server, error) {
	opts.defaults()
	ecq, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = stats.NewSet()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, b: b, stats: st, log: log, ecq: ecq, mux: http.NewServeMux()}
	s.connCtx, s.cancelConn = context.WithCancel(context.Background())
	s.initMetrics()

	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = tlsauth.DefaultStateDir()
	}
	needToken := opts.Auth == AuthToken && (opts.Listen != "" || ecq.Token == config.ECQServerToken)
	if needToken {
		s.token = opts.Token
		if s.token == "" {
			if s.token, err = tlsauth.LoadOrCreateToken(stateDir); err != nil {
				return nil, &StateDirError{Dir: stateDir, Err: err}
			}
		}
		s.checker = tlsauth.NewChecker(s.token)
	}
	switch ecq.Token {
	case config.ECQServerToken:
		s.ecqAuth = s.checker
	case config.ECQOwnToken:
		s.ecqAuth = tlsauth.NewChecker(ecq.Secret)
	}

	var tlsConf *tls.Config
	if opts.Listen != "" && !opts.NoTLS {
		if tlsConf, err = s.tlsConfig(stateDir); err != nil {
			return nil, err
		}
	}
	s.mux.Handle("GET /ws", s.Auth(s.wsHandler(listenerMain)))
	s.mux.Handle("GET /api/v1/har", s.Auth(s.harHandler()))

	if opts.Listen != "" {
		ln, err := net.Listen("tcp", opts.Listen)
		if err != nil {
			return nil, &ListenError{Listener: listenerMain, Addr: opts.Listen, Err: err}
		}
		ln = corkListener{opts.wrap(ln, tlsConf != nil)}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		s.mainLn = ln
	}
	if opts.ECaptureQ != "" {
		ln, err := net.Listen("tcp", ecq.Addr)
		if err != nil {
			s.Close()
			return nil, &ListenError{Listener: listenerECaptureQ, Addr: ecq.Addr, Err: err}
		}
		ln = corkListener{opts.wrap(ln, false)} // eCaptureQ speaks plain ws
		s.ecqLn = ln
		if !isLoopback(ecq.Addr) && s.ecqAuth == nil {
			log.Warn("!!! eCaptureQ listener is on a non-loopback address WITHOUT authentication: anyone who can reach it reads all captured plaintext", "addr", ecq.Addr)
		}
		if s.ecqAuth == nil {
			// Web pages are shut out by the Origin and Host checks; local
			// processes are not.
			log.Warn("eCaptureQ listener needs no token: any local process can read every captured plaintext from it; add ?token to the ecaptureq URL to require one", "addr", ln.Addr().String())
		}
	}
	return s, nil
}

func (s *Server) initMetrics() {
	s.m = metrics{
		rejected:   map[string]*stats.Counter{},
		total:      map[string]*stats.Counter{},
		clients:    map[string]*stats.Gauge{},
		slow:       s.stats.Counter(slowDisconnects, "Clients disconnected because they stopped reading."),
		sent:       s.stats.Counter(sentTotal, "LogEntry messages written to WebSocket clients."),
		sentB:      s.stats.Counter(sentBytesTotal, "Bytes of LogEntry messages written to WebSocket clients."),
		heartbeats: s.stats.Counter(heartbeatsTotal, "Heartbeats written to WebSocket clients."),
	}
	for _, r := range []string{"unauthorized", "forbidden_origin", "forbidden_host", "bad_request", "too_many_clients", "shutting_down"} {
		s.m.rejected[r] = s.stats.Counter(rejectedTotal, rejectedHelp, "reason", r)
	}
	for _, l := range []string{listenerMain, listenerECaptureQ} {
		s.m.total[l] = s.stats.Counter(clientsTotal, "WebSocket clients accepted, by listener.", "listener", l)
		s.m.clients[l] = s.stats.Gauge(stats.Clients, "WebSocket clients connected, by listener.", "listener", l)
	}
}

func (s *Server) tlsConfig(stateDir string) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if s.opts.TLSCert != "" {
		cert, err = tls.LoadX509KeyPair(s.opts.TLSCert, s.opts.TLSKey)
	} else if cert, err = tlsauth.LoadOrCreateCert(stateDir); err != nil {
		return nil, &StateDirError{Dir: stateDir, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("server: certificate: %w", err)
	}
	s.fp = tlsauth.CertFingerprint(cert)
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// WebSocket upgrades need HTTP/1.1; coder/websocket does not
		// speak RFC 8441 over HTTP/2.
		NextProtos: []string{"http/1.1"},
	}
	if s.opts.ClientCA != "" {
		pem, err := os.ReadFile(s.opts.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("server: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server: client CA %s: no PEM certificate", s.opts.ClientCA)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// Handle mounts h on the main listener at pattern (a ServeMux pattern such
// as "GET /api/v1/config"), behind the token check if auth.
func (s *Server) Handle(pattern string, h http.Handler, auth bool) {
	if auth {
		h = s.Auth(h)
	}
	s.mux.Handle(pattern, h)
}

// Addr returns the main listener's address, or nil if it is disabled.
func (s *Server) Addr() net.Addr {
	if s.mainLn == nil {
		return nil
	}
	return s.mainLn.Addr()
}

// ECaptureQAddr returns the eCaptureQ listener's address, or nil.
func (s *Server) ECaptureQAddr() net.Addr {
	if s.ecqLn == nil {
		return nil
	}
	return s.ecqLn.Addr()
}

// Fingerprint returns the SHA-256 fingerprint of the main listener's
// certificate; the zero value without TLS.
func (s *Server) Fingerprint() tlsauth.Fingerprint { return s.fp }

// Token returns the token clients must present ("" with auth none).
func (s *Server) Token() string { return s.token }

// URLs returns ready-to-paste client URLs, token included: the main
// stream first, then the eCaptureQ one. They contain the secret: print
// them to the terminal, not into the event stream.
func (s *Server) URLs() []string {
	var urls []string
	if s.mainLn != nil {
		scheme := "wss"
		if s.opts.NoTLS {
			scheme = "ws"
		}
		u := scheme + "://" + printable(s.mainLn.Addr()) + "/ws"
		if s.token != "" {
			u += "?token=" + s.token
		}
		urls = append(urls, u)
	}
	if s.ecqLn != nil {
		u := "ws://" + printable(s.ecqLn.Addr()) + "/"
		switch s.ecq.Token {
		case config.ECQServerToken:
			u += "?token=" + s.token
		case config.ECQOwnToken:
			u += "?token=" + s.ecq.Secret
		}
		urls = append(urls, u)
	}
	return urls
}

// printable turns a wildcard bind address into one a local client can dial.
func printable(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	if ap.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String()
	}
	return ap.String()
}

// ClientCount returns the number of connected WebSocket clients.
func (s *Server) ClientCount() int { return int(s.nclients.Load()) }

// Run serves until ctx is done, then sends every client a close frame,
// waits for all of them and returns. It must be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("server: Run called twice")
	}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	var servers []*http.Server
	errc := make(chan error, 2)
	serve := func(ln net.Listener, h http.Handler, name string) {
		srv := &http.Server{
			Handler:           h,
			ConnContext:       withCork,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          errLog,
		}
		servers = append(servers, srv)
		go func() {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("server: %s listener: %w", name, err)
			}
			errc <- err
		}()
	}
	if s.mainLn != nil {
		s.log.Info("streaming server listening", "addr", s.mainLn.Addr().String(), "tls", !s.opts.NoTLS, "auth", s.opts.Auth)
		if !s.opts.NoTLS {
			s.log.Info("server certificate", "sha256", s.fp.String())
		}
		serve(s.mainLn, s.mux, listenerMain)
	}
	if s.ecqLn != nil {
		s.log.Info("eCaptureQ listener", "addr", s.ecqLn.Addr().String(), "token", s.ecqAuth != nil)
		serve(s.ecqLn, RequireToken(s.ecqAuth, s.stats, s.wsHandler(listenerECaptureQ)), listenerECaptureQ)
	}

	var err error
	pending := len(servers)
	select {
	case <-ctx.Done():
	case err = <-errc:
		pending--
	}

	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancelConn()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		if e := srv.Shutdown(sctx); e != nil {
			_ = srv.Close()
		}
	}
	for ; pending > 0; pending-- {
		if e := <-errc; err == nil {
			err = e
		}
	}
	// Hijacked connections are not the http.Server's business any more.
	s.clients.Wait()
	return err
}

// Close releases the listeners of a server whose Run was never called.
func (s *Server) Close() error {
	s.cancelConn()
	var errs []error
	if !s.ran.Load() {
		for _, ln := range []net.Listener{s.mainLn, s.ecqLn} {
			if ln != nil {
				errs = append(errs, ln.Close())
			}
		}
	}
	return errors.Join(errs...)
}

package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"
)

// DefaultListen is the main listener's address unless configured.
const DefaultListen = "127.0.0.1:28256"

// Auth modes.
const (
	AuthToken = "token" // the default: a bearer token is required
	AuthNone  = "none"  // no token; only allowed on loopback listeners
)

// Options configure a Server. The zero value of a field takes its default,
// except Listen and ECaptureQ where "" disables the listener.
type Options struct {
	// Listen is the main listener's host:port (DefaultListen); "" disables it.
	Listen string
	// ECaptureQ, if set, starts a plain-WebSocket listener for the
	// eCaptureQ GUI: "ws://HOST:PORT[/]". It upgrades on any path and
	// accepts only the GUI's Origin (see the package doc). On loopback it
	// needs no token. A non-loopback
	// address needs one: "ws://HOST:PORT/?token" requires the server's
	// token, "?token=SECRET" that secret (clients append ?token=...).
	// Without either, New fails unless Auth is AuthNone.
	ECaptureQ string

	// NoTLS serves the main listener over plain HTTP/WebSocket; only
	// allowed when it is bound to loopback.
	NoTLS bool
	// TLSCert and TLSKey are PEM files to use instead of the generated
	// self-signed certificate.
	TLSCert, TLSKey string
	// ClientCA, a PEM file, turns on mutual TLS: clients must present a
	// certificate signed by it (in addition to the token, unless AuthNone).
	ClientCA string

	// StateDir keeps the generated certificate and token; ""
	// means tlsauth.DefaultStateDir().
	StateDir string
	// Auth is AuthToken ("" too) or AuthNone.
	Auth string
	// Token replaces the generated token (at least 16 characters).
	Token string
	// AllowOrigins lists extra browser origins allowed to open WebSockets
	// on either listener: path.Match patterns against the Origin's
	// host[:port], or against scheme://host[:port] if the pattern contains
	// "://".
	AllowOrigins []string

	// Heartbeat is the interval between heartbeats (default 15 s).
	Heartbeat time.Duration
	// WriteTimeout disconnects a client whose socket accepted nothing for
	// this long (default 10 s).
	WriteTimeout time.Duration
	// ClientQueue is each client's broker queue length in entries (default
	// 4096). A client that falls further behind loses entries, and is
	// told how many.
	ClientQueue int
	// ClientQueueBytes also bounds that queue in memory (default 16 MiB):
	// behind on a download's parts, a client holds this much, not
	// ClientQueue parts.
	ClientQueueBytes int
	// ReadLimit caps a message a client may send; clients have nothing to
	// say, so their messages are read and discarded (default 4 KiB).
	ReadLimit int64
	// MaxClients caps concurrent WebSocket clients over both listeners
	// (default 256).
	MaxClients int

	// WrapListener, if set, wraps each listener's TCP socket beneath TLS.
	// tlstap registers its endpoints through it, so that the capture
	// never sees a connection to its own listeners (see internal/selfnet).
	WrapListener func(net.Listener) net.Listener
}

func (o *Options) defaults() {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.ClientQueue <= 0 {
		o.ClientQueue = 4096
	}
	if o.ClientQueueBytes <= 0 {
		o.ClientQueueBytes = 16 << 20
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 4 << 10
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 256
	}
	if o.Auth == "" {
		o.Auth = AuthToken
	}
}

// ecqTokenMode says which token the eCaptureQ listener requires.
type ecqTokenMode int

const (
	ecqNoToken     ecqTokenMode = iota
	ecqServerToken              // ?token: the server's token
	ecqOwnToken                 // ?token=SECRET
)

// ecqConfig is the parsed ECaptureQ option.
type ecqConfig struct {
	addr      string
	tokenMode ecqTokenMode
	token     string
}

func parseECaptureQ(s string) (ecqConfig, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ecqConfig{}, fmt.Errorf("ecaptureq %q: %w", s, err)
	}
	if u.Scheme != "ws" {
		return ecqConfig{}, fmt.Errorf("ecaptureq %q: scheme must be ws:// (the eCaptureQ GUI speaks plain WebSocket)", s)
	}
	if u.Port() == "" {
		return ecqConfig{}, fmt.Errorf("ecaptureq %q: missing port", s)
	}
	c := ecqConfig{addr: u.Host}
	qv := u.Query()
	for k := range qv {
		if k != "token" {
			return ecqConfig{}, fmt.Errorf("ecaptureq %q: unknown parameter %q", s, k)
		}
	}
	if qv.Has("token") {
		c.tokenMode = ecqServerToken
		if t := qv.Get("token"); t != "" {
			if len(t) < 16 {
				return ecqConfig{}, fmt.Errorf("ecaptureq: token shorter than 16 characters")
			}
			c.tokenMode, c.token = ecqOwnToken, t
		}
	}
	return c, nil
}

// isLoopback reports whether a listen address binds only loopback
// interfaces. An empty host binds every interface.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// validate checks the security rules that do not need the filesystem.
func (o *Options) validate() (ecq ecqConfig, err error) {
	if o.Listen == "" && o.ECaptureQ == "" {
		return ecq, errors.New("server: no listener configured")
	}
	if o.Auth != AuthToken && o.Auth != AuthNone {
		return ecq, fmt.Errorf("server: auth %q: want %q or %q", o.Auth, AuthToken, AuthNone)
	}
	if o.Token != "" && len(o.Token) < 16 {
		return ecq, errors.New("server: token shorter than 16 characters")
	}
	if o.Listen != "" {
		if _, _, err := net.SplitHostPort(o.Listen); err != nil {
			return ecq, fmt.Errorf("server: listen %q: %w", o.Listen, err)
		}
		if !isLoopback(o.Listen) {
			if o.NoTLS {
				return ecq, fmt.Errorf("server: refusing plain HTTP on non-loopback address %s: TLS can only be turned off on loopback", o.Listen)
			}
			if o.Auth == AuthNone {
				return ecq, fmt.Errorf("server: refusing auth %q on non-loopback address %s", AuthNone, o.Listen)
			}
		}
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return ecq, errors.New("server: TLSCert and TLSKey go together")
	}
	for _, p := range o.AllowOrigins {
		if _, err := path.Match(p, ""); err != nil {
			return ecq, fmt.Errorf("server: allow-origin %q: %w", p, err)
		}
	}
	if o.ECaptureQ != "" {
		if ecq, err = parseECaptureQ(o.ECaptureQ); err != nil {
			return ecq, fmt.Errorf("server: %w", err)
		}
		if !isLoopback(ecq.addr) && ecq.tokenMode == ecqNoToken && o.Auth != AuthNone {
			return ecq, fmt.Errorf("server: eCaptureQ listener on non-loopback address %s needs a token: use ws://%s/?token (clients then append ?token=...) or auth %q", ecq.addr, ecq.addr, AuthNone)
		}
		if o.Auth == AuthNone && ecq.tokenMode == ecqServerToken {
			ecq.tokenMode = ecqNoToken // there is no server token to require
		}
	}
	return ecq, nil
}

func (o *Options) wrap(ln net.Listener) net.Listener {
	if o.WrapListener == nil {
		return ln
	}
	return o.WrapListener(ln)
}

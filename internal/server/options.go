package server

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tlstap/tlstap/internal/config"
)

// DefaultListen is the main listener's address unless configured.
const DefaultListen = "127.0.0.1:28256"

// Auth modes.
const (
	AuthToken = config.AuthToken // the default: a bearer token is required
	AuthNone  = config.AuthNone  // no token; only allowed on loopback listeners
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

	// WrapListener, if set, wraps each listener's TCP socket beneath TLS;
	// tls says whether TLS runs over it. tlstap registers its endpoints
	// through it, so that the capture never sees a connection to its own
	// listeners (see internal/selfnet).
	WrapListener func(ln net.Listener, tls bool) net.Listener
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

// validate is New's guard: the settings must pass config.Validate's
// rules for the server (the command line judges them there first, before
// anything starts), and there must be a listener to start.
func (o *Options) validate() (ecq config.ECaptureQ, err error) {
	if o.Listen == "" && o.ECaptureQ == "" {
		return ecq, errors.New("server: no listener configured")
	}
	if errs := config.ValidateServer(o.settings()); len(errs) > 0 {
		return ecq, fmt.Errorf("server: %w", config.FieldErrors(errs))
	}
	if o.ECaptureQ != "" {
		if ecq, err = config.ParseECaptureQ(o.ECaptureQ); err != nil {
			return ecq, fmt.Errorf("server: ecaptureq %w", err) // checked above; kept for safety
		}
		if o.Auth == AuthNone && ecq.Token == config.ECQServerToken {
			ecq.Token = config.ECQNoToken // there is no server token to require
		}
	}
	return ecq, nil
}

// OptionsOf is the Options the settings c describe, for the command line
// (settings maps them back for the guard).
func OptionsOf(c config.Server) Options {
	return Options{
		Listen: c.Listen, ECaptureQ: c.ECaptureQ, NoTLS: !c.TLS,
		TLSCert: c.TLSCert, TLSKey: c.TLSKey, ClientCA: c.ClientCA, StateDir: c.StateDir,
		Auth: c.Auth, Token: c.Token, AllowOrigins: c.AllowOrigins,
		Heartbeat: c.Heartbeat, WriteTimeout: c.WriteTimeout, ClientQueue: c.ClientQueue,
	}
}

// settings is o as config.Server, which config.ValidateServer judges.
func (o *Options) settings() config.Server {
	return config.Server{
		Listen: o.Listen, ECaptureQ: o.ECaptureQ, TLS: !o.NoTLS,
		TLSCert: o.TLSCert, TLSKey: o.TLSKey, ClientCA: o.ClientCA, StateDir: o.StateDir,
		Auth: o.Auth, Token: o.Token, AllowOrigins: o.AllowOrigins,
		Heartbeat: o.Heartbeat, WriteTimeout: o.WriteTimeout, ClientQueue: o.ClientQueue,
	}
}

// isLoopback is config.IsLoopback: one rule for what is loopback.
func isLoopback(hostport string) bool { return config.IsLoopback(hostport) }

func (o *Options) wrap(ln net.Listener, tls bool) net.Listener {
	if o.WrapListener == nil {
		return ln
	}
	return o.WrapListener(ln, tls)
}

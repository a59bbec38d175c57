package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// Server is the stream server's settings (package server's Options, less
// what the program wires in). Like the rest of Run they come from flags
// only; Validate names them "run.server.<json name>" (the tags say the
// paths, nothing reads or writes them as JSON).
type Server struct {
	// Listen is the main listener's host:port; "" disables it.
	Listen string `json:"listen"`
	// ECaptureQ is the eCaptureQ GUI listener's ws:// URL (ParseECaptureQ);
	// "" disables it.
	ECaptureQ string `json:"ecaptureq"`
	// TLS serves the main listener over TLS; plain HTTP is allowed on
	// loopback only.
	TLS bool `json:"tls"`
	// TLSCert and TLSKey are PEM files replacing the generated
	// certificate; ClientCA, a PEM file, turns on mutual TLS.
	TLSCert  string `json:"tls_cert"`
	TLSKey   string `json:"tls_key"`
	ClientCA string `json:"client_ca"`
	// StateDir keeps the generated certificate and token ("": default).
	StateDir string `json:"state_dir"`
	// Auth is AuthToken ("" too) or AuthNone.
	Auth string `json:"auth"`
	// Token replaces the generated token (at least MinToken characters).
	Token string `json:"token"`
	// AllowOrigins are extra browser origins (path.Match patterns).
	AllowOrigins []string `json:"allow_origins"`
	// Heartbeat, WriteTimeout and ClientQueue tune the stream; 0 is the
	// server's default.
	Heartbeat    time.Duration `json:"heartbeat"`
	WriteTimeout time.Duration `json:"write_timeout"`
	ClientQueue  int           `json:"client_queue"`
}

// Server authentication modes.
const (
	AuthToken = "token" // a bearer token is required
	AuthNone  = "none"  // no token; loopback listeners only
)

// MinToken is the shortest token a user may choose.
const MinToken = 16

// ECQToken says which token the eCaptureQ listener requires.
type ECQToken int

// The eCaptureQ listener's token modes.
const (
	ECQNoToken     ECQToken = iota // no "token" parameter
	ECQServerToken                 // ?token: the server's token
	ECQOwnToken                    // ?token=SECRET: that secret
)

// ECaptureQ is a parsed eCaptureQ listener URL.
type ECaptureQ struct {
	Addr   string // host:port to listen on
	Token  ECQToken
	Secret string // ECQOwnToken's secret
}

// ParseECaptureQ parses "ws://HOST:PORT[/][?token[=SECRET]]": the GUI
// speaks plain WebSocket, on any path.
func ParseECaptureQ(s string) (ECaptureQ, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ECaptureQ{}, fmt.Errorf("%q: %w", s, unwrapURL(err))
	}
	if u.Scheme != "ws" {
		return ECaptureQ{}, fmt.Errorf("%q: scheme must be ws:// (the eCaptureQ GUI speaks plain WebSocket)", s)
	}
	if u.Port() == "" {
		return ECaptureQ{}, fmt.Errorf("%q: missing port", s)
	}
	c := ECaptureQ{Addr: u.Host}
	qv := u.Query()
	for k := range qv {
		if k != "token" {
			return ECaptureQ{}, fmt.Errorf("%q: unknown parameter %q", s, k)
		}
	}
	if qv.Has("token") {
		c.Token = ECQServerToken
		if t := qv.Get("token"); t != "" {
			if len(t) < MinToken {
				return ECaptureQ{}, fmt.Errorf("token shorter than %d characters", MinToken)
			}
			c.Token, c.Secret = ECQOwnToken, t
		}
	}
	return c, nil
}

// IsLoopback reports whether a listen address binds only loopback
// interfaces. An empty host binds every interface.
func IsLoopback(hostport string) bool {
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

// ValidateServer is Validate's check of the server settings alone, for
// the server's own guard (server.New).
func ValidateServer(s Server) []FieldError {
	var ck checker
	ck.server(s)
	return ck.errs
}

// server checks the server settings: the security rules (TLS and
// authentication off only on loopback, tokens long enough), the syntax of
// addresses and patterns, and that the certificate files load. Without a
// listener nothing is served, and nothing else is judged.
func (ck *checker) server(s Server) {
	const at = "run.server."
	if s.Listen == "" && s.ECaptureQ == "" {
		return
	}
	auth := s.Auth
	if auth == "" {
		auth = AuthToken
	}
	if auth != AuthToken && auth != AuthNone {
		ck.add(at+"auth", "%q: want %q or %q", s.Auth, AuthToken, AuthNone)
	}
	if s.Token != "" && len(s.Token) < MinToken {
		ck.add(at+"token", "must be at least %d characters, got %d", MinToken, len(s.Token))
	}
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			ck.add(at+"listen", "%q: want host:port (%v)", s.Listen, unwrapAddr(err))
		} else if !IsLoopback(s.Listen) {
			if !s.TLS {
				ck.add(at+"tls", "TLS can only be turned off on loopback, not on %s (run.server.listen)", s.Listen)
			}
			if auth == AuthNone {
				ck.add(at+"auth", "%q is refused on the non-loopback address %s (run.server.listen): loopback only", AuthNone, s.Listen)
			}
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		if s.TLSCert == "" {
			ck.add(at+"tls_key", "and run.server.tls_cert go together")
		} else {
			ck.add(at+"tls_cert", "and run.server.tls_key go together")
		}
	} else if s.TLSCert != "" && s.Listen != "" && s.TLS {
		if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
			ck.add(at+"tls_cert", "with run.server.tls_key: %v", unwrapPath(err))
		}
	}
	if s.ClientCA != "" && s.Listen != "" && s.TLS {
		if pem, err := os.ReadFile(s.ClientCA); err != nil {
			ck.add(at+"client_ca", "%v", unwrapPath(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			ck.add(at+"client_ca", "%s holds no PEM certificate", s.ClientCA)
		}
	}
	for _, p := range s.AllowOrigins {
		if _, err := path.Match(p, ""); err != nil {
			ck.add(at+"allow_origins", "%q: %v", p, err)
		}
	}
	if s.ECaptureQ != "" {
		ecq, err := ParseECaptureQ(s.ECaptureQ)
		switch {
		case err != nil:
			ck.add(at+"ecaptureq", "%v", err)
		case !IsLoopback(ecq.Addr) && ecq.Token == ECQNoToken && auth != AuthNone:
			ck.add(at+"ecaptureq", "non-loopback address %s needs a token: use ws://%s/?token (clients then append ?token=...) or auth %q", ecq.Addr, ecq.Addr, AuthNone)
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"heartbeat", s.Heartbeat}, {"write_timeout", s.WriteTimeout}} {
		if d.v < 0 {
			ck.add(at+d.field, "must be >= 0 (0: the default), got %s", d.v)
		}
	}
	if s.ClientQueue < 0 {
		ck.add(at+"client_queue", "must be >= 0 (0: the default), got %d", s.ClientQueue)
	}
}

// unwrapAddr keeps net.SplitHostPort's reason, without the address it
// repeats.
func unwrapAddr(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

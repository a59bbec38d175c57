package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/server/tlsauth"
)

// TestValidateServer: the stream server's settings, judged by Validate
// (as "run.server.*") before anything starts; server.New applies the same
// rules (ValidateServer) as its guard.
func TestValidateServer(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := tlsauth.SelfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key, junk := write("cert.pem", certPEM), write("key.pem", keyPEM), write("junk.pem", []byte("not PEM"))
	base := Server{Listen: "127.0.0.1:28256", TLS: true, Auth: AuthToken}
	tests := []struct {
		name string
		edit func(s *Server)
		// want is the field and a part of the reason of each error, in
		// order: "field: reason part".
		want []string
	}{
		{"defaults", func(*Server) {}, nil},
		{"nothing served", func(s *Server) { *s = Server{Auth: "maybe", Token: "x"} }, nil},
		{"everything valid", func(s *Server) {
			*s = Server{Listen: "[::]:1", TLS: true, TLSCert: cert, TLSKey: key, ClientCA: cert, Auth: "",
				Token: strings.Repeat("t", 16), AllowOrigins: []string{"https://*.example.com"},
				ECaptureQ: "ws://0.0.0.0:28257/?token", Heartbeat: time.Second, ClientQueue: 1}
		}, nil},
		{"plain HTTP on loopback", func(s *Server) { s.TLS, s.Auth, s.Listen = false, AuthNone, "localhost:1" }, nil},
		{"plain HTTP on all interfaces", func(s *Server) { s.Listen, s.TLS = "0.0.0.0:1", false },
			[]string{"run.server.tls: TLS can only be turned off on loopback, not on 0.0.0.0:1 (run.server.listen)"}},
		{"plain HTTP on an empty host", func(s *Server) { s.Listen, s.TLS = ":1", false },
			[]string{"run.server.tls: TLS can only be turned off on loopback"}},
		{"auth none on a LAN address", func(s *Server) { s.Listen, s.Auth = "192.0.2.1:1", AuthNone },
			[]string{`run.server.auth: "none" is refused on the non-loopback address 192.0.2.1:1`}},
		{"bad auth", func(s *Server) { s.Auth = "maybe" }, []string{`run.server.auth: "maybe": want "token" or "none"`}},
		{"short token", func(s *Server) { s.Token = "abc" }, []string{"run.server.token: must be at least 16 characters, got 3"}},
		{"listen without port", func(s *Server) { s.Listen = "127.0.0.1" },
			[]string{`run.server.listen: "127.0.0.1": want host:port (missing port in address)`}},
		{"cert without key", func(s *Server) { s.TLSCert = cert }, []string{"run.server.tls_cert: and run.server.tls_key go together"}},
		{"key without cert", func(s *Server) { s.TLSKey = key }, []string{"run.server.tls_key: and run.server.tls_cert go together"}},
		{"cert does not load", func(s *Server) { s.TLSCert, s.TLSKey = junk, key },
			[]string{"run.server.tls_cert: with run.server.tls_key: tls: failed to find any PEM data in certificate input"}},
		{"cert missing", func(s *Server) { s.TLSCert, s.TLSKey = filepath.Join(dir, "none.pem"), key },
			[]string{"run.server.tls_cert: with run.server.tls_key: " + filepath.Join(dir, "none.pem") + ": no such file or directory"}},
		{"cert unused without TLS", func(s *Server) { s.TLS, s.TLSCert, s.TLSKey = false, junk, junk }, nil},
		{"client CA not PEM", func(s *Server) { s.ClientCA = junk }, []string{"run.server.client_ca: " + junk + " holds no PEM certificate"}},
		{"client CA missing", func(s *Server) { s.ClientCA = filepath.Join(dir, "none.pem") },
			[]string{"run.server.client_ca: " + filepath.Join(dir, "none.pem") + ": no such file or directory"}},
		{"bad origin pattern", func(s *Server) { s.AllowOrigins = []string{"ok", "["} },
			[]string{`run.server.allow_origins: "[": syntax error in pattern`}},
		{"ecaptureq wss", func(s *Server) { s.ECaptureQ = "wss://127.0.0.1:1/" },
			[]string{`run.server.ecaptureq: "wss://127.0.0.1:1/": scheme must be ws://`}},
		{"ecaptureq without port", func(s *Server) { s.ECaptureQ = "ws://127.0.0.1/" },
			[]string{`run.server.ecaptureq: "ws://127.0.0.1/": missing port`}},
		{"ecaptureq unknown parameter", func(s *Server) { s.ECaptureQ = "ws://127.0.0.1:1/?x=1" },
			[]string{`run.server.ecaptureq: "ws://127.0.0.1:1/?x=1": unknown parameter "x"`}},
		{"ecaptureq short token", func(s *Server) { s.ECaptureQ = "ws://0.0.0.0:1/?token=short" },
			[]string{"run.server.ecaptureq: token shorter than 16 characters"}},
		{"ecaptureq open on the LAN", func(s *Server) { s.Listen, s.ECaptureQ = "", "ws://0.0.0.0:28257/" },
			[]string{"run.server.ecaptureq: non-loopback address 0.0.0.0:28257 needs a token: use ws://0.0.0.0:28257/?token"}},
		{"ecaptureq open on the LAN, auth none", func(s *Server) { s.Listen, s.ECaptureQ, s.Auth = "", "ws://0.0.0.0:28257/", AuthNone }, nil},
		{"negative tuning", func(s *Server) { s.Heartbeat, s.WriteTimeout, s.ClientQueue = -1, -time.Second, -1 },
			[]string{"run.server.heartbeat: must be >= 0 (0: the default), got -1ns",
				"run.server.write_timeout: must be >= 0 (0: the default), got -1s",
				"run.server.client_queue: must be >= 0 (0: the default), got -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Run.Server = base
			tt.edit(&c.Run.Server)
			errs := Validate(c)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d: %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, fe := range errs {
				if !strings.HasPrefix(fe.Error(), tt.want[i]) {
					t.Errorf("error %d:\n %s\nwant it to start with\n %s", i, fe.Error(), tt.want[i])
				}
			}
			// The server's guard judges alike.
			if got := ValidateServer(c.Run.Server); len(got) != len(errs) {
				t.Errorf("ValidateServer: %v, Validate: %v", got, errs)
			}
		})
	}
}

package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
)

func TestAuth(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	tests := []struct {
		name  string
		query string
		hdr   http.Header
		want  int
	}{
		{"no token", "", http.Header{"Authorization": nil}, http.StatusUnauthorized},
		{"wrong bearer", "", http.Header{"Authorization": {"Bearer " + strings.Repeat("x", 43)}}, http.StatusUnauthorized},
		{"wrong query token", "token=nope", http.Header{"Authorization": nil}, http.StatusUnauthorized},
		{"token prefix", "token=" + ts.token[:20], http.Header{"Authorization": nil}, http.StatusUnauthorized},
		{"basic scheme", "", http.Header{"Authorization": {"Basic " + ts.token}}, http.StatusUnauthorized},
		{"bearer", "", nil, http.StatusSwitchingProtocols},
		{"bearer lower-case scheme", "", http.Header{"Authorization": {"bearer " + ts.token}}, http.StatusSwitchingProtocols},
		{"query token", "token=" + ts.token, http.Header{"Authorization": nil}, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := ts.dial(t, tt.query, tt.hdr)
			if c != nil {
				c.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (err %v)", resp.StatusCode, tt.want, err)
			}
		})
	}
	if got := ts.st.Value("tlstap_server_rejected_total", "reason", "unauthorized"); got != 5 {
		t.Errorf("rejected{unauthorized} = %v, want 5", got)
	}
}

// TestHandle: mounted handlers with and without the token check.
func TestHandle(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	ts.Handle("GET /healthz", ok, false)
	ts.Handle("GET /api/v1/config", ok, true)
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	base := "https://" + ts.Addr().String()
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/api/v1/config", "", 401},
		{"/api/v1/config", "wrong-token-wrong-token", 401},
		{"/api/v1/config", ts.token, 200},
		{"/nothing", ts.token, 404},
	} {
		req, _ := http.NewRequest("GET", base+tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s with token %q: %d, want %d", tt.path, tt.token, resp.StatusCode, tt.want)
		}
	}
}

func TestOrigin(t *testing.T) {
	ts := start(t, server.Options{AllowOrigins: []string{"https://gui.example", "*.trusted.test"}}, broker.Options{})
	port := ts.Addr().String()[strings.LastIndexByte(ts.Addr().String(), ':'):]
	tests := []struct {
		name, origin, host string
		want               int
	}{
		{"no origin", "", "", 101},
		{"same origin", "https://" + ts.Addr().String(), "", 101},
		{"same origin localhost", "https://localhost" + port, "localhost" + port, 101},
		{"foreign", "https://evil.example", "", 403},
		// Debian 12's websocket-client sends http:// for a wss:// URL.
		{"same origin, http label", "http://" + ts.Addr().String(), "", 101},
		{"same origin, ws label", "ws://" + ts.Addr().String(), "", 403},
		{"same host, other port", "https://127.0.0.1:1", "", 403},
		{"dns rebinding", "https://evil.example" + port, "evil.example" + port, 403},
		{"null", "null", "", 403},
		{"allowed scheme pattern", "https://gui.example", "", 101},
		{"allowed scheme pattern wrong scheme", "http://gui.example", "", 403},
		{"allowed host pattern", "http://a.trusted.test", "", 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			hc := ts.httpClient()
			defer hc.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, ts.wsURL(""), &websocket.DialOptions{
				HTTPClient: hc, Host: tt.host,
				HTTPHeader: http.Header{"Authorization": {"Bearer " + ts.token}, "Origin": h["Origin"]},
			})
			if c != nil {
				c.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestBadQuery(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	hc := ts.httpClient()
	defer hc.CloseIdleConnections()
	for _, tt := range []struct{ query, wantInBody string }{
		{"bogus=1", `"bogus"`},
		{"pid=abc", `"pid"`},
		{"pid=-1", `"pid"`},
		{"pid=1,,2", `"pid"`},
		{"port=70000", `"port"`},
		{"type=9", `"type"`},
		{"type=gopher", `"type"`},
		{"logs=maybe", `"logs"`},
		{"since=x", `"since"`},
		{"since=1&since=2", `"since"`},
		{"host=" + strings.Repeat("h", 300), `"host"`},
		{"pid=" + strings.Repeat("1,", 100) + "1", `"pid"`},
	} {
		t.Run(tt.query[:min(len(tt.query), 20)], func(t *testing.T) {
			c, resp, err := ts.dial(t, tt.query, nil)
			if c != nil {
				c.CloseNow()
				t.Fatal("accepted")
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			// coder/websocket keeps the first 1 KiB of the body.
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tt.wantInBody) {
				t.Fatalf("body %q does not name %s", body, tt.wantInBody)
			}
		})
	}
}

func TestPinnedFingerprint(t *testing.T) {
	ts := start(t, server.Options{}, broker.Options{})
	other, err := tlsauth.ParseFingerprint(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name string
		opts client.Options
		ok   bool
	}{
		{"wrong pin", client.Options{Fingerprint: other.String()}, false},
		{"no pin, system roots", client.Options{}, false},
		{"right pin", client.Options{Fingerprint: ts.Fingerprint().String()}, true},
		{"right pin plain hex", client.Options{Fingerprint: strings.ToLower(strings.ReplaceAll(ts.Fingerprint().String(), ":", ""))}, true},
		{"insecure", client.Options{InsecureSkipVerify: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.URL, o.Token, o.NoReconnect = ts.wsURL(""), ts.token, true
			c, err := client.Dial(ctx, o)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Next(ctx); err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if tt.opts.Fingerprint != "" && !errors.Is(err, tlsauth.ErrFingerprint) {
				t.Fatalf("err = %v, want ErrFingerprint", err)
			}
		})
	}
}

func TestClientCAFile(t *testing.T) {
	dir := t.TempDir()
	ts := start(t, server.Options{StateDir: dir}, broker.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The generated certificate doubles as a CA for clients that prefer
	// chain verification to pinning.
	c, err := client.Dial(ctx, client.Options{URL: ts.wsURL(""), Token: ts.token, CACert: filepath.Join(dir, tlsauth.CertFile), NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts server.Options
		want string
	}{
		{"no tls on all interfaces", server.Options{Listen: "0.0.0.0:28256", NoTLS: true}, "TLS"},
		{"no tls on empty host", server.Options{Listen: ":28256", NoTLS: true}, "TLS"},
		{"no tls on lan address", server.Options{Listen: "192.0.2.1:28256", NoTLS: true}, "TLS"},
		{"auth none on all interfaces", server.Options{Listen: "[::]:28256", Auth: server.AuthNone}, "auth"},
		{"ecaptureq non-loopback without token", server.Options{Listen: "", ECaptureQ: "ws://0.0.0.0:28257/"}, "token"},
		{"ecaptureq wss", server.Options{Listen: "", ECaptureQ: "wss://127.0.0.1:28257/"}, "ws://"},
		{"ecaptureq short token", server.Options{Listen: "", ECaptureQ: "ws://0.0.0.0:28257/?token=short"}, "token"},
		{"ecaptureq unknown param", server.Options{Listen: "", ECaptureQ: "ws://127.0.0.1:28257/?x=1"}, "x"},
		{"no listener", server.Options{}, "no listener"},
		{"bad auth", server.Options{Listen: "127.0.0.1:0", Auth: "maybe"}, "auth"},
		{"short token", server.Options{Listen: "127.0.0.1:0", Token: "abc"}, "token"},
		{"bad origin pattern", server.Options{Listen: "127.0.0.1:0", AllowOrigins: []string{"["}}, "allow_origins"},
		{"cert without key", server.Options{Listen: "127.0.0.1:0", TLSCert: "x.pem"}, "tls_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.StateDir = dir
			s, err := server.New(tt.opts, broker.New(broker.Options{}, nil), nil, nil)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	// What the same rules allow on loopback.
	for _, o := range []server.Options{
		{Listen: "127.0.0.1:0", NoTLS: true, Auth: server.AuthNone},
		{Listen: "[::1]:0", NoTLS: true},
		{Listen: "localhost:0"},
	} {
		o.StateDir = dir
		s, err := server.New(o, broker.New(broker.Options{}, nil), nil, nil)
		if err != nil {
			t.Errorf("New(%+v): %v", o, err)
			continue
		}
		s.Close()
	}
}

// TestStateDir: one certificate and token per state directory, private.
func TestStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	open := func() (string, tlsauth.Fingerprint) {
		s, err := server.New(server.Options{Listen: "127.0.0.1:0", StateDir: dir}, broker.New(broker.Options{}, nil), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.Token(), s.Fingerprint()
	}
	tok1, fp1 := open()
	tok2, fp2 := open()
	if tok1 != tok2 || fp1 != fp2 {
		t.Errorf("second run: token or fingerprint changed")
	}
	if len(tok1) != 43 {
		t.Errorf("token %q: want 43 base64url characters", tok1)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v, want 0700", fi.Mode(), err)
	}
	for _, f := range []string{tlsauth.CertFile, tlsauth.KeyFile, tlsauth.TokenFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", f, fi.Mode(), err)
		}
	}
}

func TestMaxClients(t *testing.T) {
	ts := start(t, server.Options{MaxClients: 2}, broker.Options{})
	for range 2 {
		readEntry(t, ts.mustDial(t, ""))
	}
	c, resp, err := ts.dial(t, "", nil)
	if c != nil {
		c.CloseNow()
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client: %v %v, want 503", resp, err)
	}
	if got := ts.st.Value("tlstap_server_rejected_total", "reason", "too_many_clients"); got != 1 {
		t.Errorf("rejected{too_many_clients} = %v, want 1", got)
	}
}

func TestURLs(t *testing.T) {
	ts := start(t, server.Options{ECaptureQ: "ws://127.0.0.1:0/?token"}, broker.Options{})
	urls := ts.URLs()
	want := []string{
		"wss://" + ts.Addr().String() + "/ws?token=" + ts.token,
		"ws://" + ts.ECaptureQAddr().String() + "/?token=" + ts.token,
	}
	if len(urls) != 2 || urls[0] != want[0] || urls[1] != want[1] {
		t.Fatalf("URLs() = %q\nwant %q", urls, want)
	}
	// The eCaptureQ listener with ?token requires the server's token.
	for _, u := range []string{want[1], "ws://" + ts.ECaptureQAddr().String() + "/"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, resp, err := websocket.Dial(ctx, u, nil)
		cancel()
		if c != nil {
			c.CloseNow()
		}
		if u == want[1] && err != nil {
			t.Errorf("%s: %v", u, err)
		}
		if u != want[1] && (resp == nil || resp.StatusCode != http.StatusUnauthorized) {
			t.Errorf("%s without token: %v, want 401", u, err)
		}
	}
}

// TestOwnCertificate: TLSCert/TLSKey replace the generated certificate,
// and FileFingerprint of the file is what the server pins to.
func TestOwnCertificate(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := tlsauth.SelfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "own.crt"), filepath.Join(dir, "own.key")
	if err := os.WriteFile(cf, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := tlsauth.FileFingerprint(cf)
	if err != nil {
		t.Fatal(err)
	}
	ts := start(t, server.Options{TLSCert: cf, TLSKey: kf, StateDir: dir}, broker.Options{})
	if ts.Fingerprint() != want {
		t.Fatalf("server fingerprint %s, want the file's %s", ts.Fingerprint(), want)
	}
	readEntry(t, ts.mustDial(t, ""))
	if _, err := os.Stat(filepath.Join(dir, tlsauth.CertFile)); err == nil {
		t.Error("a certificate was generated although one was given")
	}
}

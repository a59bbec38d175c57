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

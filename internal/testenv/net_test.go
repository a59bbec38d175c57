package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestFreePort(t *testing.T) {
	for _, tt := range []struct {
		ip, want netip.Addr
	}{{netip.Addr{}, IPv4}, {IPv4, IPv4}, {IPv6, IPv6}} {
		a := FreePort(t, tt.ip)
		if a.Addr() != tt.want || a.Port() == 0 {
			t.Errorf("FreePort(%v) = %s", tt.ip, a)
		}
		l, err := net.Listen("tcp", a.String())
		if err != nil {
			t.Fatalf("port %s not free: %v", a, err)
		}
		l.Close()
	}
}

func TestWaitListening(t *testing.T) {
	a := FreePort(t, IPv4)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := WaitListening(ctx, a); err == nil {
		t.Error("WaitListening succeeded with nothing listening")
	}
	l, err := net.Listen("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel = context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := WaitListening(ctx, a); err != nil {
		t.Errorf("WaitListening with a listener: %v", err)
	}
}

// The certificate must verify for every loopback name tests use.
func TestNewCert(t *testing.T) {
	c := NewCert(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.PEM) {
		t.Fatal("PEM does not parse")
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := pair.Leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
}

// StartPythonHTTPS serves its files over TLS with the generated certificate.
func TestStartPythonHTTPS(t *testing.T) {
	srv := StartPythonHTTPS(t, IPv6, map[string][]byte{"dir/f.txt": []byte("served")})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srv.Cert.PEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get(srv.URL("/dir/f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "served" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	client.CloseIdleConnections()
}

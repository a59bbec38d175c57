package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

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

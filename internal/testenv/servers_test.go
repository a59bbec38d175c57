package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"testing"
)

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

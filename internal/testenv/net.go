package testenv

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Loopback addresses tests may bind.
var (
	IPv4 = netip.MustParseAddr("127.0.0.1")
	IPv6 = netip.MustParseAddr("::1")
)

// FreePort returns a loopback address with a port that was free a moment
// ago. ip must be a loopback address; the zero Addr means IPv4.
func FreePort(t testing.TB, ip netip.Addr) netip.AddrPort {
	t.Helper()
	if !ip.IsValid() {
		ip = IPv4
	}
	if !ip.IsLoopback() {
		t.Fatalf("testenv: %s is not a loopback address", ip)
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatalf("testenv: find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// WaitListening dials addr until something accepts or ctx ends.
func WaitListening(ctx context.Context, addr netip.AddrPort) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL is the https URL of path on addr.
func URL(addr netip.AddrPort, path string) string {
	return "https://" + addr.String() + path
}

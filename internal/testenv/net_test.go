package testenv

import (
	"context"
	"net"
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

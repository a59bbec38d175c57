package selfnet

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake records what the capture would exclude.
type fake struct {
	mu  sync.Mutex
	set map[netip.AddrPort]bool
}

func (f *fake) ExcludeEndpoint(ap netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[ap] = true
	return nil
}

func (f *fake) IncludeEndpoint(ap netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.set, ap)
	return nil
}

func (f *fake) has(ap netip.AddrPort) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set[ap]
}

func (f *fake) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.set)
}

func newFake() *fake { return &fake{set: map[netip.AddrPort]bool{}} }

func TestListenerAndDial(t *testing.T) {
	r := New(nil)
	x := newFake()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := r.Listener(ln, true)
	lnAddr := addrPort(ln.Addr())
	// Registered before the capture exists: handed over later.
	r.SetExcluder(x)
	if !x.has(lnAddr) {
		t.Fatalf("listener %v not excluded after SetExcluder", lnAddr)
	}

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := wl.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	out, err := r.DialContext(&net.Dialer{})(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	in, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	local := addrPort(out.LocalAddr())
	if !x.has(local) {
		t.Errorf("dialled connection's local end %v not excluded", local)
	}
	if got := r.Endpoints(); len(got) != 2 || !slices.Contains(got, local) || !slices.Contains(got, lnAddr) {
		// The accepted peer is the dialled local end: one entry, two references.
		t.Errorf("endpoints %v, want %v and %v", got, lnAddr, local)
	}

	// The peer is registered twice (accepted and dialled): it stays until
	// both are closed.
	in.Close()
	if !x.has(local) {
		t.Errorf("%v released while the dialled side is open", local)
	}
	out.Close()
	out.Close() // idempotent
	if x.has(local) {
		t.Errorf("%v still excluded after both sides closed", local)
	}
	wl.Close()
	if x.len() != 0 {
		t.Errorf("left excluded: %v", x.set)
	}
}

func TestIgnoredAndDisabled(t *testing.T) {
	r := New(nil)
	x := newFake()
	r.SetExcluder(x)
	for _, s := range []string{"0.0.0.0:80", "[::]:80", "127.0.0.1:0"} {
		r.Add(netip.MustParseAddrPort(s))
	}
	r.Add(netip.AddrPort{})
	if x.len() != 0 || len(r.Endpoints()) != 0 {
		t.Errorf("wildcards registered: %v", r.Endpoints())
	}
	// IPv4-mapped IPv6 is the IPv4 endpoint.
	r.Add(netip.MustParseAddrPort("[::ffff:127.0.0.1]:9"))
	if !x.has(netip.MustParseAddrPort("127.0.0.1:9")) {
		t.Errorf("mapped address not unmapped: %v", x.set)
	}

	d := New(nil)
	d.Disable()
	dx := newFake()
	d.SetExcluder(dx)
	d.Add(netip.MustParseAddrPort("127.0.0.1:9"))
	if dx.len() != 0 {
		t.Errorf("disabled registry excluded %v", dx.set)
	}

	var nilReg *Registry
	nilReg.Add(netip.MustParseAddrPort("127.0.0.1:9"))
	nilReg.Remove(netip.MustParseAddrPort("127.0.0.1:9"))
	nilReg.SetExcluder(x)
	if nilReg.Endpoints() != nil {
		t.Error("nil registry has endpoints")
	}
}

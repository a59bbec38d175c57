package selfnet

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// Excluder is what the capture offers: *openssl.Source has it.
type Excluder interface {
	ExcludeEndpoint(netip.AddrPort) error
	IncludeEndpoint(netip.AddrPort) error
}

// Registry is the set of tlstap's endpoints. Endpoints registered before
// the capture exists are handed to it by SetExcluder. A nil *Registry
// registers nothing, so code that may run without one needs no checks.
type Registry struct {
	log *slog.Logger

	mu  sync.Mutex
	x   Excluder
	eps map[netip.AddrPort]int // references: two listeners may share a peer address over time
	off bool
	// clients counts, per local process, its connections to tlstap's
	// listeners (see peers.go).
	clients map[uint32]int
}

// New returns an empty Registry; log receives exclusion failures (nil: discard).
func New(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{log: log, eps: map[netip.AddrPort]int{}}
}

// SetExcluder connects the registry to the capture and hands it every
// endpoint registered so far.
func (r *Registry) SetExcluder(x Excluder) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.x = x
	if r.off {
		return
	}
	for ap := range r.eps {
		r.exclude(ap)
	}
}

// Disable stops telling the capture about endpoints, so tlstap's own
// traffic through other processes is captured (for debugging tlstap; its
// secrets are still redacted). Call it before SetExcluder.
func (r *Registry) Disable() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.off = true
	r.mu.Unlock()
}

// Endpoints returns the endpoints registered now, in no order.
func (r *Registry) Endpoints() []netip.AddrPort {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(r.eps))
	for ap := range r.eps {
		out = append(out, ap)
	}
	return out
}

// Add registers ap; every Add needs one Remove. Wildcard addresses and
// port 0 are ignored: they name no connection's end.
func (r *Registry) Add(ap netip.AddrPort) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if r == nil || !concrete(ap) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eps[ap]++
	if r.eps[ap] == 1 && r.x != nil && !r.off {
		r.exclude(ap)
	}
}

// Remove unregisters ap once every Add of it is undone.
func (r *Registry) Remove(ap netip.AddrPort) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if r == nil || !concrete(ap) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.eps[ap]
	if !ok {
		return
	}
	if n > 1 {
		r.eps[ap] = n - 1
		return
	}
	delete(r.eps, ap)
	if r.x != nil && !r.off {
		if err := r.x.IncludeEndpoint(ap); err != nil {
			r.log.Warn("self-exclusion: releasing endpoint", "endpoint", ap, "err", err)
		}
	}
}

// exclude tells the capture; r.mu held. A failure (the kernel map is
// full) leaves that connection capturable, which is why the pipeline
// also redacts tlstap's secrets: say so.
func (r *Registry) exclude(ap netip.AddrPort) {
	if err := r.x.ExcludeEndpoint(ap); err != nil {
		r.log.Warn("self-exclusion: connection may be captured", "endpoint", ap, "err", err)
	}
}

func concrete(ap netip.AddrPort) bool {
	return ap.IsValid() && !ap.Addr().IsUnspecified() && ap.Port() != 0
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// Listener registers ln's address and the remote end of every connection
// it accepts, until that connection closes; closing ln releases its
// address. Wrap the raw TCP listener, beneath any TLS; tls says whether
// TLS runs over it. Only then does it also learn which local process is
// each client (see peers.go): a client's reads of a plain listener are no
// TLS reads, which the capture never sees, and the lookup walks every
// process's fds (milliseconds with a hundred processes, more on a busy
// host), which a plain listener should not pay per connection.
func (r *Registry) Listener(ln net.Listener, tls bool) net.Listener {
	if r == nil {
		return ln
	}
	l := &listener{Listener: ln, r: r, addr: addrPort(ln.Addr()), peers: tls}
	r.Add(l.addr)
	return l
}

type listener struct {
	net.Listener
	r     *Registry
	addr  netip.AddrPort
	peers bool // learn each client's process (TLS listeners)
	close sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cn := l.r.conn(c, addrPort(c.RemoteAddr())).(*conn)
	if !l.peers {
		return cn, nil
	}
	// Before the TLS handshake, so before any plaintext of the client's.
	if pid, ok := peerPID(addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())); ok {
		l.r.addClient(pid)
		cn.pid = pid
	}
	return cn, nil
}

func (l *listener) Close() error {
	l.close.Do(func() { l.r.Remove(l.addr) })
	return l.Listener.Close()
}

// DialContext returns a dial function (for http.Transport.DialContext and
// the like) that dials with d and registers the connection's local end
// until it closes.
func (r *Registry) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || r == nil {
			return c, err
		}
		return r.conn(c, addrPort(c.LocalAddr())), nil
	}
}

// conn registers ap for c's life.
func (r *Registry) conn(c net.Conn, ap netip.AddrPort) net.Conn {
	r.Add(ap)
	return &conn{Conn: c, r: r, ap: ap}
}

type conn struct {
	net.Conn
	r     *Registry
	ap    netip.AddrPort
	pid   int // the local client process holding the other end, 0 if none
	close sync.Once
}

// Close releases the endpoint after the socket is gone: the last bytes
// the peer reads were sent while it was still registered.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.close.Do(func() {
		c.r.Remove(c.ap)
		if c.pid != 0 {
			c.r.removeClient(c.pid)
		}
	})
	return err
}

package openssl

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// endpointKey is struct endpoint of bpf/self.h.
type endpointKey struct {
	Addr [16]byte
	Port uint16
	_    uint16
}

func keyOf(ap netip.AddrPort) endpointKey {
	// As16 maps IPv4 to ::ffff:a.b.c.d, as the probes do.
	return endpointKey{Addr: ap.Addr().Unmap().As16(), Port: ap.Port()}
}

// ExcludeEndpoint stops capture of every connection with ap at either end,
// whatever process holds it: tlstap calls it for its listeners, the peers
// they accept and the local ends of its own outgoing connections, so it
// never sees its own traffic through somebody else's libssl. A connection
// is judged when its addresses are learned and stays excluded for its life;
// what it would have sent is counted in Stats (Excluded*).
//
// ap must be a concrete address: a wildcard listener is covered by the
// peers it accepts, not by its own address.
func (s *Source) ExcludeEndpoint(ap netip.AddrPort) error {
	if !ap.IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return fmt.Errorf("exclude endpoint %v: want a concrete address and port", ap)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.objs.TlstapSelfEndpoints.Put(keyOf(ap), uint8(1)); err != nil {
		return fmt.Errorf("exclude endpoint %v: %w", ap, err)
	}
	// After the insertion, so that a probe that judged a connection without
	// seeing it finds the generation changed and judges again (self.h).
	if err := s.bumpSelfGen(); err != nil {
		return fmt.Errorf("exclude endpoint %v: %w", ap, err)
	}
	return nil
}

// bumpSelfGen tells the probes that the endpoint set grew: connections
// judged before must be judged again before their next data goes out.
// Callers hold s.mu, so there is one writer.
func (s *Source) bumpSelfGen() error {
	var gen uint32
	if err := s.objs.TlstapSelfGen.Lookup(uint32(0), &gen); err != nil {
		return fmt.Errorf("read self-exclusion generation: %w", err)
	}
	if err := s.objs.TlstapSelfGen.Put(uint32(0), gen+1); err != nil {
		return fmt.Errorf("bump self-exclusion generation: %w", err)
	}
	return nil
}

// IncludeEndpoint undoes ExcludeEndpoint once the endpoint is no longer
// tlstap's. Connections already excluded stay so.
func (s *Source) IncludeEndpoint(ap netip.AddrPort) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	err := s.objs.TlstapSelfEndpoints.Delete(keyOf(ap))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("include endpoint %v: %w", ap, err)
	}
	return nil
}

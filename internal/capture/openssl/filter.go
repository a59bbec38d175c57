package openssl

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// Filter selects what is captured. Each set, when not empty, must contain
// the process's value; empty sets match everything. tlstap's own process is
// never captured.
type Filter struct {
	// PIDs are process (thread group) ids.
	PIDs []uint32
	// UIDs are real user ids.
	UIDs []uint32
	// Comms are process names as the kernel keeps them: at most 15 bytes,
	// longer names are cut to 15 to match what the kernel reports.
	Comms []string
}

const (
	commLen = 16
	// maxFilterEntries per set; the BPF maps hold two generations of each.
	maxFilterEntries = 4096
)

// SetFilter replaces the filter. It is atomic for the probes: the new sets
// are written to the inactive generation, then one map write switches to
// it, so a call is judged by either the old or the new filter, never a mix.
func (s *Source) SetFilter(f Filter) error {
	for name, n := range map[string]int{"pid": len(f.PIDs), "uid": len(f.UIDs), "comm": len(f.Comms)} {
		if n > maxFilterEntries {
			return fmt.Errorf("filter: %d %s entries, at most %d", n, name, maxFilterEntries)
		}
	}
	s.filterMu.Lock()
	defer s.filterMu.Unlock()
	m := &s.objs.tlstapMaps
	next := s.gen ^ 1

	// Entries of next are leftovers from two SetFilters ago; no probe has
	// looked at them since the last switch.
	if err := clearGen(m.TlstapFilterPids, next, func(k *tlstapIdKey) uint32 { return k.Gen }); err != nil {
		return err
	}
	if err := clearGen(m.TlstapFilterUids, next, func(k *tlstapIdKey) uint32 { return k.Gen }); err != nil {
		return err
	}
	if err := clearGen(m.TlstapFilterComms, next, func(k *tlstapCommKey) uint32 { return k.Gen }); err != nil {
		return err
	}
	one := uint8(1)
	for _, pid := range f.PIDs {
		if err := m.TlstapFilterPids.Put(tlstapIdKey{Gen: next, Id: pid}, one); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}
	for _, uid := range f.UIDs {
		if err := m.TlstapFilterUids.Put(tlstapIdKey{Gen: next, Id: uid}, one); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}
	for _, c := range f.Comms {
		if err := m.TlstapFilterComms.Put(tlstapCommKey{Gen: next, Comm: commKey(c)}, one); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}
	cfg := tlstapConfig{
		SelfPid: uint32(os.Getpid()),
		PidsOn:  b2u(len(f.PIDs) > 0),
		UidsOn:  b2u(len(f.UIDs) > 0),
		CommsOn: b2u(len(f.Comms) > 0),
	}
	if err := m.TlstapConfigs.Put(next, cfg); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	// The whole value changes on every switch (the low bit is the
	// generation): the probes' per-thread verdicts (filter_cache in
	// bpf/tlstap.bpf.c) hold only while it is the one they were taken under.
	s.filterSwitches++
	if err := m.TlstapActive.Put(uint32(0), s.filterSwitches<<1|next); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	s.gen = next
	s.filter = f
	// Processes the old filter left out may run Go programs to attach to:
	// those running now (the rescan) and those started from now on, whose
	// executables the watcher would otherwise know as turned down.
	if s.goWatch != nil && s.watcher != nil {
		s.watcher.Forget()
	}
	s.goWatch.filterChanged()
	return nil
}

// commKey is the kernel's comm for name: NUL-padded, cut to 15 bytes.
func commKey(name string) [commLen]int8 {
	var k [commLen]int8
	for i := 0; i < len(name) && i < commLen-1; i++ {
		k[i] = int8(name[i])
	}
	return k
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// clearGen deletes the keys of generation gen from m.
func clearGen[K any](m *ebpf.Map, gen uint32, genOf func(*K) uint32) error {
	var (
		k    K
		v    uint8
		dead []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if genOf(&k) == gen {
			dead = append(dead, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	for i := range dead {
		if err := m.Delete(&dead[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("filter: %w", err)
		}
	}
	return nil
}

package openssl

import (
	"errors"

	"github.com/cilium/ebpf"

	"github.com/tlstap/tlstap/internal/capture"
)

// reap forgets the connections an exited process left behind and returns
// a Close chunk for each, preceded by Lost chunks for loss not yet
// reported. exit is the exit record's chunk: time, pid and comm.
//
// It runs on the ring reader's goroutine for every exiting process that
// had a connection, so the maps are read in batches (mapEntries) and the
// dead entries deleted in one call: walking them a key at a time, two
// system calls per entry, cost ~0.27 ms per exit here with a few hundred
// live connections, during which no record was read.
func (s *Source) reap(exit capture.Chunk, dst []capture.Chunk) []capture.Chunk {
	keys, vals, err := mapEntries[tlstapConnKey, tlstapConn](s.objs.TlstapConns, func(k *tlstapConnKey) bool { return k.Pid == exit.PID })
	if err != nil {
		s.log.Warn("reaping connections of an exited process", "pid", exit.PID, "err", err)
	}
	for i, k := range keys {
		v := &vals[i]
		c := exit
		c.Conn, c.FD, c.TLSVersion, c.Library = k.Ssl, v.Fd, v.Version, libraryName(v.Lib)
		c.Local, c.Remote = addrs(v.Tuple.Family, v.Tuple.Laddr, v.Tuple.Raddr, v.Tuple.Lport, v.Tuple.Rport)
		for dir, lost := range v.Lost {
			if lost > 0 {
				l := c
				l.Kind, l.Dir, l.LostBytes = capture.Lost, capture.Direction(dir), lost
				dst = append(dst, l)
			}
		}
		c.Kind = capture.Close
		dst = append(dst, c)
	}
	if err := deleteKeys(s.objs.TlstapConns, keys); err != nil {
		s.log.Warn("reaping connections of an exited process", "pid", exit.PID, "err", err)
	}
	if len(keys) > 0 {
		s.reapFDs(exit.PID)
	}
	return dst
}

// reapFDs forgets the fd-to-connection entries of an exited process: its
// fds were closed by the kernel, which no close(2) tracepoint sees.
func (s *Source) reapFDs(pid uint32) {
	keys, _, err := mapEntries[fdKey, uint64](s.objs.TlstapFdConns, func(k *fdKey) bool { return k.PID == pid })
	if err == nil {
		err = deleteKeys(s.objs.TlstapFdConns, keys)
	}
	if err != nil {
		s.log.Warn("reaping fds of an exited process", "pid", pid, "err", err)
	}
}

// fdKey mirrors struct fd_key in bpf/tlstap.bpf.c.
type fdKey struct {
	PID uint32
	FD  int32
}

// batchEntries is how many entries mapEntries asks the kernel for at once.
const batchEntries = 256

// mapEntries returns the entries of the hash map m whose key keep accepts,
// read batchEntries at a time (BPF_MAP_LOOKUP_BATCH), or a key at a time
// where the kernel has no batch lookup for m. Entries that the probes add
// or remove meanwhile may or may not be seen, as with any walk.
func mapEntries[K, V any](m *ebpf.Map, keep func(*K) bool) ([]K, []V, error) {
	var (
		keys   []K
		vals   []V
		cursor ebpf.MapBatchCursor
		kb     = make([]K, batchEntries)
		vb     = make([]V, batchEntries)
	)
	for {
		n, err := m.BatchLookup(&cursor, kb, vb, nil)
		for i := range n {
			if keep(&kb[i]) {
				keys, vals = append(keys, kb[i]), append(vals, vb[i])
			}
		}
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			return keys, vals, nil // the end
		case err != nil:
			// No batch lookup for this map on this kernel, or ENOSPC (a
			// hash bucket larger than the batch): the walk a key at a
			// time sees everything, from the start.
			return iterEntries[K, V](m, keep)
		}
	}
}

// iterEntries is mapEntries a key at a time.
func iterEntries[K, V any](m *ebpf.Map, keep func(*K) bool) ([]K, []V, error) {
	var (
		keys []K
		vals []V
		k    K
		v    V
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if keep(&k) {
			keys, vals = append(keys, k), append(vals, v)
		}
	}
	return keys, vals, it.Err()
}

// deleteKeys deletes keys from m, in one call where the kernel can;
// a key gone meanwhile (the LRU evicted it) is no error.
func deleteKeys[K any](m *ebpf.Map, keys []K) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := m.BatchDelete(keys, nil); err == nil {
		return nil
	}
	// A batch stops at its first missing key; the rest one by one.
	var errs []error
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

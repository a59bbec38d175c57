package openssl

import (
	"errors"

	"github.com/cilium/ebpf"

	"github.com/tlstap/tlstap/internal/capture"
)

// reap forgets the connections an exited process left behind and returns
// a Close chunk for each, preceded by Lost chunks for loss not yet
// reported. exit is the exit record's chunk: time, pid and comm.
func (s *Source) reap(exit capture.Chunk, dst []capture.Chunk) []capture.Chunk {
	var (
		k    tlstapConnKey
		v    tlstapConn
		dead []tlstapConnKey
	)
	it := s.objs.TlstapConns.Iterate()
	for it.Next(&k, &v) {
		if k.Pid != exit.PID {
			continue
		}
		dead = append(dead, k)
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
	if err := it.Err(); err != nil {
		s.log.Warn("reaping connections of an exited process", "pid", exit.PID, "err", err)
	}
	for i := range dead {
		if err := s.objs.TlstapConns.Delete(&dead[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			s.log.Warn("reaping connections of an exited process", "pid", exit.PID, "err", err)
		}
	}
	if len(dead) > 0 {
		s.reapFDs(exit.PID)
	}
	return dst
}

// reapFDs forgets the fd-to-connection entries of an exited process: its
// fds were closed by the kernel, which no close(2) tracepoint sees.
func (s *Source) reapFDs(pid uint32) {
	var (
		k    fdKey
		v    uint64
		dead []fdKey
	)
	it := s.objs.TlstapFdConns.Iterate()
	for it.Next(&k, &v) {
		if k.PID == pid {
			dead = append(dead, k)
		}
	}
	for i := range dead {
		if err := s.objs.TlstapFdConns.Delete(&dead[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			s.log.Warn("reaping fds of an exited process", "pid", pid, "err", err)
		}
	}
}

// fdKey mirrors struct fd_key in bpf/tlstap.bpf.c.
type fdKey struct {
	PID uint32
	FD  int32
}

package openssl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tlstap/tlstap/internal/capture"
)

// Layout of struct event in bpf/record.h. record_test.go checks these
// against the bpf2go-generated tlstapEvent so the two cannot drift apart.
const (
	offTS      = 0
	offConn    = 8
	offLost    = 16
	offPID     = 24
	offTID     = 28
	offUID     = 32
	offFD      = 36
	offLen     = 40
	offVersion = 44
	offKind    = 46
	offDir     = 47
	offFamily  = 48
	offLPort   = 50
	offRPort   = 52
	offLAddr   = 56
	offRAddr   = 72
	offComm    = 88
	offLib     = 104
	offCgroup  = 112
	headerSize = 120
)

// libraries names the BPF side's enum lib, the TLS library that carried a
// connection; the index is the enum's value.
var libraries = [...]string{"openssl", "gnutls", "nss", "gotls"}

// libraryName returns the name of enum lib value v, empty if unknown.
func libraryName(v uint8) string {
	if int(v) < len(libraries) {
		return libraries[v]
	}
	return ""
}

const (
	afInet  = 2
	afInet6 = 10
)

var errShortRecord = errors.New("ring record shorter than its header")

// decodeRecord turns one ring record into the chunks it stands for: a Lost
// notice first when the kernel dropped bytes of this direction before it,
// then the record itself. data aliases rec; the caller owns copying.
// bootNS converts the kernel's monotonic timestamp to Unix time.
func decodeRecord(rec []byte, bootNS int64, dst []capture.Chunk) ([]capture.Chunk, error) {
	if len(rec) < headerSize {
		return dst, fmt.Errorf("%w: %d bytes", errShortRecord, len(rec))
	}
	le := binary.LittleEndian
	kind := capture.Kind(rec[offKind])
	if kind > capture.Lost {
		return dst, fmt.Errorf("ring record of unknown kind %d", kind)
	}
	n := le.Uint32(rec[offLen:])
	if uint64(n) > uint64(len(rec)-headerSize) {
		return dst, fmt.Errorf("ring record claims %d data bytes, has %d", n, len(rec)-headerSize)
	}
	c := chunkOf(rec, bootNS)
	lost := le.Uint64(rec[offLost:])

	switch kind {
	case capture.Data:
		if lost > 0 {
			gap := c
			gap.Kind, gap.LostBytes = capture.Lost, lost
			dst = append(dst, gap)
		}
		c.Data = rec[headerSize : headerSize+int(n)]
	case capture.Lost:
		if lost == 0 {
			return dst, errors.New("ring record: loss notice of zero bytes")
		}
		c.LostBytes = lost
	}
	return append(dst, c), nil
}

// chunkOf reads the fields every record has; rec holds at least a header.
func chunkOf(rec []byte, bootNS int64) capture.Chunk {
	le := binary.LittleEndian
	c := capture.Chunk{
		Time:       int64(le.Uint64(rec[offTS:])) + bootNS,
		PID:        le.Uint32(rec[offPID:]),
		TID:        le.Uint32(rec[offTID:]),
		UID:        le.Uint32(rec[offUID:]),
		Comm:       comm(rec[offComm : offComm+16]),
		FD:         int32(le.Uint32(rec[offFD:])),
		Conn:       le.Uint64(rec[offConn:]),
		Dir:        capture.Direction(rec[offDir] & 1),
		Kind:       capture.Kind(rec[offKind]),
		TLSVersion: le.Uint16(rec[offVersion:]),
		Library:    libraryName(rec[offLib]),
		Cgroup:     le.Uint64(rec[offCgroup:]),
	}
	c.Local, c.Remote = tuple(rec)
	return c
}

func tuple(rec []byte) (local, remote netip.AddrPort) {
	le := binary.LittleEndian
	return addrs(rec[offFamily], [16]byte(rec[offLAddr:offLAddr+16]), [16]byte(rec[offRAddr:offRAddr+16]),
		le.Uint16(rec[offLPort:]), le.Uint16(rec[offRPort:]))
}

// addrs builds the tuple the BPF side copied from a struct sock.
func addrs(family uint8, laddr, raddr [16]byte, lport, rport uint16) (local, remote netip.AddrPort) {
	var l, r netip.Addr
	switch family {
	case afInet:
		l = netip.AddrFrom4([4]byte(laddr[:4]))
		r = netip.AddrFrom4([4]byte(raddr[:4]))
	case afInet6:
		// A v4-mapped peer of a dual-stack socket is reported as the IPv4
		// address, so both ends of one connection agree on the tuple.
		l = netip.AddrFrom16(laddr).Unmap()
		r = netip.AddrFrom16(raddr).Unmap()
	default:
		return netip.AddrPort{}, netip.AddrPort{}
	}
	return netip.AddrPortFrom(l, lport), netip.AddrPortFrom(r, rport)
}

// kindExit marks the record of a process whose last thread exited; it is
// not a capture.Kind but a request to reap the process's connections.
const kindExit = 3

// exitRecord reports whether rec announces a process exit, and returns its
// time, pid and comm as a chunk.
func exitRecord(rec []byte, bootNS int64) (capture.Chunk, bool) {
	if len(rec) < headerSize || rec[offKind] != kindExit {
		return capture.Chunk{}, false
	}
	return chunkOf(rec, bootNS), true
}

func comm(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

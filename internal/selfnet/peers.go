package selfnet

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/stats"
)

// Clients of tlstap's listeners are excluded by their connection's
// addresses. A program whose TLS runs over memory BIOs (node, Python
// asyncio) has no addresses in its chunks, so that test cannot see that
// it is reading tlstap's stream; without more, such a client would be
// sent its own reads back, endlessly. So the registry also learns which
// local process holds the other end of each accepted connection, and
// the chunks of those processes that carry no addresses are dropped
// while they are connected. Their other address-less connections are
// dropped too for that time: the price of never feeding a client itself.

// addClient and removeClient count a process's connections to tlstap.
func (r *Registry) addClient(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off {
		return
	}
	if r.clients == nil {
		r.clients = map[uint32]int{}
	}
	r.clients[uint32(pid)]++
}

func (r *Registry) removeClient(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients[uint32(pid)] <= 1 {
		delete(r.clients, uint32(pid))
		return
	}
	r.clients[uint32(pid)]--
}

// isClient reports whether pid holds a connection to one of tlstap's
// listeners.
func (r *Registry) isClient(pid uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clients[pid] > 0
}

// Source drops, from src, the chunks without addresses of processes that
// are connected to tlstap's listeners (see above), counting them in
// dropped (which may be nil). A nil Registry passes everything.
func (r *Registry) Source(src capture.Source, dropped *stats.Counter) capture.Source {
	if r == nil {
		return src
	}
	return capture.Filter(src, func(c *capture.Chunk) bool {
		if !c.Local.IsValid() && !c.Remote.IsValid() && r.isClient(c.PID) {
			if dropped != nil {
				dropped.Inc()
			}
			return false
		}
		return true
	})
}

// peerPID finds the local process that holds the socket at peer connected
// to ours, through /proc/net/tcp{,6} (peer's socket inode) and the fds of
// every process. It reports false when the peer is not on this machine or
// cannot be found.
func peerPID(ours, peer netip.AddrPort) (int, bool) {
	inode, ok := socketInode(peer, ours) // absent when the peer is elsewhere
	if !ok {
		return 0, false
	}
	link := fmt.Sprintf("socket:[%d]", inode)
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == link {
				return pid, true
			}
		}
	}
	return 0, false
}

// socketInode returns the inode of the TCP socket whose local end is
// local and remote end remote, from /proc/net/tcp and /proc/net/tcp6.
func socketInode(local, remote netip.AddrPort) (uint64, bool) {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if ino, ok := scanTCP(f, local, remote); ok {
			return ino, true
		}
	}
	return 0, false
}

func scanTCP(path string, local, remote netip.AddrPort) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		l, ok1 := parseProcAddr(fields[1])
		r, ok2 := parseProcAddr(fields[2])
		if !ok1 || !ok2 || !sameEnd(l, local) || !sameEnd(r, remote) {
			continue
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		return ino, true
	}
	return 0, false
}

func sameEnd(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap() == b.Addr().Unmap()
}

// parseProcAddr parses /proc/net/tcp's "0100007F:1F90": the address as
// the kernel stores it (32-bit words in host order, little-endian here),
// then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, false
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a, uint16(port)), true
}

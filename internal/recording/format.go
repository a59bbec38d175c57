package recording

import (
	"net/netip"
	"strings"

	"github.com/tlstap/tlstap/internal/capture"
	recordingpb "github.com/tlstap/tlstap/proto/gen/go/recording"
)

// Magic opens every recording file.
const Magic = "TLSTAPR1"

// Version is the format version this package writes and reads.
const Version = 1

// MaxRecord bounds one record, so a corrupt length cannot make the reader
// allocate gigabytes. Capture splits large calls into chunks far smaller.
const MaxRecord = 16 << 20

func toPB(c *capture.Chunk) *recordingpb.Chunk {
	pc := &recordingpb.Chunk{
		Time:       c.Time,
		Pid:        c.PID,
		Tid:        c.TID,
		Uid:        c.UID,
		Comm:       strings.ToValidUTF8(c.Comm, "\uFFFD"),
		Fd:         c.FD,
		Conn:       c.Conn,
		Dir:        recordingpb.Direction(c.Dir),
		Kind:       recordingpb.Kind(c.Kind),
		TlsVersion: uint32(c.TLSVersion),
		TlsLibrary: strings.ToValidUTF8(c.Library, "\uFFFD"),
		LostBytes:  c.LostBytes,
		Data:       c.Data,
		CgroupId:   c.Cgroup,
	}
	if c.Local.IsValid() {
		pc.LocalIp = c.Local.Addr().AsSlice()
		pc.LocalPort = uint32(c.Local.Port())
	}
	if c.Remote.IsValid() {
		pc.RemoteIp = c.Remote.Addr().AsSlice()
		pc.RemotePort = uint32(c.Remote.Port())
	}
	return pc
}

func addrPort(ip []byte, port uint32) (netip.AddrPort, bool) {
	if len(ip) == 0 {
		return netip.AddrPort{}, port == 0
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port > 0xffff {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

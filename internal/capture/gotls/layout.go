package gotls

// versOffsets is the offset of crypto/tls.Conn's vers field (uint16, the
// negotiated protocol version once the handshake is done) on amd64, by Go
// minor release. Only releases whose layout was checked are listed; the
// others are unknown and events from them carry version 0 rather than a
// guess. Checked by type-checking each release's crypto/tls with
// go/types' gc sizes (the x.0 and the latest patch release of 1.21 to
// 1.25, 1.26.0 and 1.26.8, Debian's 1.19.8), and for 1.19 and 1.26 also by
// reflect in a built program (TestVersOffset; 1.21.13 and 1.23.12 the
// same way, ad hoc, with toolchains from the module proxy).
//
// 1.21 added Conn.quic (a pointer) before vers. 1.17, 1.18 and 1.20 are
// likely laid out as 1.19, but no toolchain or source of those releases was
// at hand to check, so they are left out.
var versOffsets = map[int]int{
	19: 64,
	21: 72, 22: 72, 23: 72, 24: 72, 25: 72, 26: 72,
}

// versOffset returns the offset of tls.Conn.vers for the toolchain version
// v ("go1.26.8"), or -1 when it is not known.
func versOffset(v string) int {
	minor, ok := goMinor(v)
	if !ok {
		return -1
	}
	if off, ok := versOffsets[minor]; ok {
		return off
	}
	return -1
}

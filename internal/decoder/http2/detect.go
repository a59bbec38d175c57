package http2

import (
	"github.com/tlstap/tlstap/internal/decoder"
)

// IsClientPreface reports whether b starts with the client connection
// preface; needMore is set while b is a proper prefix of it.
func IsClientPreface(b []byte) (match, needMore bool) {
	n := min(len(b), len(clientPreface))
	if string(b[:n]) != clientPreface[:n] {
		return false, false
	}
	return n == len(clientPreface), n < len(clientPreface)
}

// IsServerStart reports whether b starts with a well-formed, non-ACK
// SETTINGS frame on stream 0 whose every setting has a valid value: the
// first frame a server sends. needMore is set while b is a prefix of such a
// frame. The frame must fit the initial 16384-byte frame size, as every
// first SETTINGS frame does, so one truncated gzip header or TLS record never
// keeps a caller waiting.
func IsServerStart(b []byte) (match, needMore bool) {
	// Bytes b does not have yet read as zero, which every check accepts, so
	// a prefix is rejected as soon as one byte it has is wrong.
	var hdr [frameHeaderLen]byte
	n := copy(hdr[:], b)
	if hdr[0] != 0 || (n > 3 && hdr[3] != frameSettings) || hdr[4] != 0 || hdr[5]|hdr[6]|hdr[7]|hdr[8] != 0 {
		return false, false
	}
	if n >= 3 {
		if l := uint32(hdr[1])<<8 | uint32(hdr[2]); l%6 != 0 || l > defaultMaxFrameSize {
			return false, false
		}
	}
	if n < frameHeaderLen {
		return false, true
	}
	h := parseFrameHeader(hdr[:])
	p := b[frameHeaderLen:]
	for len(p) >= 6 && h.length > 0 {
		if !validSetting(uint16(p[0])<<8|uint16(p[1]), uint32(p[2])<<24|uint32(p[3])<<16|uint32(p[4])<<8|uint32(p[5])) {
			return false, false
		}
		p, h.length = p[6:], h.length-6
	}
	if h.length > 0 {
		return false, true
	}
	return true, false
}

// IsFrameAligned reports whether b starts with at least two consecutive
// plausible HTTP/2 frame headers: a known type with only its defined flags,
// the stream id and length rules of the type, and a length within the
// protocol's maximum frame size. Every further frame header b holds, up to
// a few, must be plausible too. It is meant for picking up a connection in
// the middle, when the peer is known to speak HTTP/2.
func IsFrameAligned(b []byte) bool {
	_, ok := alignedAt(b, 0, maxFrameSize, false)
	return ok == alignYes
}

type alignResult uint8

const (
	alignNo alignResult = iota
	alignYes
	// alignMore: the headers so far are plausible but b ends before the
	// second.
	alignMore
)

// maxChain bounds how many frame headers alignedAt checks.
const maxChain = 8

// alignedAt classifies offset off of b as a frame boundary by walking the
// chain of frame headers from it, two at least. It returns the length of b needed to
// decide when the answer is alignMore. With exactEnd, a single plausible
// frame ending exactly at the end of b also counts: a capture chunk is one
// TLS write, and writers write whole frames.
func alignedAt(b []byte, off int, max uint32, exactEnd bool) (need int, r alignResult) {
	for n := 0; n < maxChain; n++ {
		if len(b)-off < frameHeaderLen {
			switch {
			case n >= 2, n == 1 && exactEnd && off == len(b):
				return 0, alignYes
			}
			return off + frameHeaderLen, alignMore
		}
		h := parseFrameHeader(b[off:])
		// Past the first two, unknown types (extensions, GREASE) pass on
		// the rules every frame follows.
		known := h.typ <= frameContinuation || n < 2
		if known && !h.plausible(max) || h.reserved || h.length > max {
			return 0, alignNo
		}
		off += frameHeaderLen + int(h.length)
	}
	return 0, alignYes
}

// IsPushPromise reports whether m is the request of a server push: an
// HTTP/2 request on an even stream, which only a PUSH_PROMISE creates.
func IsPushPromise(m *decoder.Message) bool {
	return m.Type == decoder.HTTP2Request && m.StreamID != 0 && m.StreamID%2 == 0
}

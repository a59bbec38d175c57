package websocket

import (
	"encoding/binary"
	"math/bits"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const (
	finBit  = 0x80
	rsv1Bit = 0x40
	rsv23   = 0x30
	maskBit = 0x80

	// maxControlPayload is the largest payload a control frame may carry.
	maxControlPayload = 125
	// maxHeader is a frame header with a 64-bit length and a mask key.
	maxHeader = 14
)

// header is a parsed frame header.
type header struct {
	fin    bool
	rsv1   bool
	opcode uint8
	masked bool
	key    [4]byte
	length uint64
}

// headerLen returns the length of the header whose first two bytes are b0
// and b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&maskBit != 0 {
		n += 4
	}
	return n
}

// parseHeader decodes a complete header; len(b) == headerLen(b[1]).
// It reports false for a 64-bit length with the most significant bit set,
// which RFC 6455 forbids.
func parseHeader(b []byte) (header, bool) {
	h := header{
		fin:    b[0]&finBit != 0,
		rsv1:   b[0]&rsv1Bit != 0,
		opcode: b[0] & 0x0f,
		masked: b[1]&maskBit != 0,
	}
	p := 2
	switch n := b[1] & 0x7f; n {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(b[p:]))
		p += 2
	case 127:
		h.length = binary.BigEndian.Uint64(b[p:])
		p += 8
		if h.length>>63 != 0 {
			return h, false
		}
	default:
		h.length = uint64(n)
	}
	if h.masked {
		copy(h.key[:], b[p:p+4])
	}
	return h, true
}

func isControl(op uint8) bool { return op&0x8 != 0 }

func knownOpcode(op uint8) bool {
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
		return true
	}
	return false
}

// mask XORs b in place with key, starting pos bytes into the key, and
// returns the key position after b. Masking is its own inverse.
func mask(key [4]byte, pos int, b []byte) int {
	k := binary.LittleEndian.Uint32(key[:])
	k = bits.RotateLeft32(k, -8*(pos&3))
	if len(b) >= 8 {
		k64 := uint64(k)<<32 | uint64(k)
		for len(b) >= 8 {
			v := binary.LittleEndian.Uint64(b)
			binary.LittleEndian.PutUint64(b, v^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= byte(k)
		k = bits.RotateLeft32(k, -8)
		pos++
	}
	return pos & 3
}

package websocket_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"testing"
)

// frameInfo is a frame header as an independent reader sees it.
type frameInfo struct {
	fin, rsv1 bool
	op        uint8
	lenBytes  int // 0, 2 or 8 extra length bytes
	length    uint64
}

// walkFrames lists the frames of a well-formed stream. It is deliberately
// separate from the decoder so that tests can say what the bytes contain.
func walkFrames(t *testing.T, b []byte) []frameInfo {
	t.Helper()
	var fs []frameInfo
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("short frame header")
		}
		f := frameInfo{fin: b[0]&0x80 != 0, rsv1: b[0]&0x40 != 0, op: b[0] & 0xf, length: uint64(b[1] & 0x7f)}
		p := 2
		switch f.length {
		case 126:
			f.lenBytes, f.length = 2, uint64(binary.BigEndian.Uint16(b[2:]))
		case 127:
			f.lenBytes, f.length = 8, binary.BigEndian.Uint64(b[2:])
		}
		p += f.lenBytes
		if b[1]&0x80 != 0 {
			p += 4
		}
		if uint64(len(b)-p) < f.length {
			t.Fatalf("short frame payload")
		}
		b = b[p+int(f.length):]
		fs = append(fs, f)
	}
	return fs
}

// checkFrames makes sure a big-script recording exercises fragmentation,
// all three length encodings and (if compressed) RSV1, in either direction.
func checkFrames(t *testing.T, c2s, s2c wsSide, compressed bool) {
	t.Helper()
	var cont, rsv1 int
	var lens [9]int
	for _, f := range append(walkFrames(t, c2s.bytes()), walkFrames(t, s2c.bytes())...) {
		if f.op == 0 {
			cont++
		}
		if f.rsv1 {
			rsv1++
		}
		lens[f.lenBytes]++
	}
	if cont == 0 || lens[0] == 0 || lens[2] == 0 || lens[8] == 0 {
		t.Fatalf("recording lacks coverage: %d continuation frames, length encodings %v", cont, lens)
	}
	if compressed != (rsv1 > 0) {
		t.Fatalf("%d compressed frames, compressed=%t", rsv1, compressed)
	}
}

// frame builds one frame; key != nil masks it.
func frame(fin, rsv1 bool, op byte, key []byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	var mbit byte
	if key != nil {
		mbit = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mbit|byte(n))
	case n <= 0xffff:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if key == nil {
		return append(b, payload...)
	}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// deflater compresses messages the way permessage-deflate senders do.
type deflater struct {
	w        *flate.Writer
	buf      bytes.Buffer
	takeover bool
}

func newDeflater(takeover bool) *deflater {
	d := &deflater{takeover: takeover}
	d.w, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	return d
}

// compress returns p deflated and sync-flushed, without the 4-byte tail.
func (d *deflater) compress(p []byte) []byte {
	if !d.takeover {
		d.w.Reset(&d.buf)
	}
	d.buf.Reset()
	d.w.Write(p)
	d.w.Flush()
	out := bytes.Clone(d.buf.Bytes())
	return bytes.TrimSuffix(out, []byte{0, 0, 0xff, 0xff})
}

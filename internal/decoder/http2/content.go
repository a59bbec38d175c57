package http2

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/internal/content"
)

// countFactor bounds how far past the body limit decompression goes only to
// learn the decoded length: a decompression bomb costs CPU, not memory,
// and not unboundedly much of it either.
const countFactor = 4

type decoded struct {
	out []byte
	// total is the decoded length, a lower bound when truncated.
	total     uint64
	truncated bool
}

// decodeContent undoes the codings of a Content-Encoding value, last
// applied first. Output beyond limit is dropped (truncated). cut says the
// input itself is incomplete, so running out of it is no error. ok is false
// when there is nothing to decode, or, with why saying which, when a
// coding is unknown or the data is corrupt; the caller then keeps the body
// as it was on the wire.
func decodeContent(enc string, in []byte, limit int, cut bool) (r decoded, ok bool, why decoder.Reason) {
	if len(in) == 0 {
		// HEAD, 304, or nothing arrived: nothing to decode, and the
		// field still tells what the body would be.
		return decoded{}, false, decoder.NoReason
	}
	codings := strings.Split(enc, ",")
	r = decoded{out: in, total: uint64(len(in))}
	for i := len(codings) - 1; i >= 0; i-- {
		c := strings.ToLower(strings.TrimSpace(codings[i]))
		if c == "identity" || c == "" {
			continue
		}
		next, err := inflate(c, r.out, limit, cut || r.truncated)
		if err != nil {
			return decoded{}, false, content.Reason(err)
		}
		next.truncated = next.truncated || r.truncated
		r = next
	}
	return r, true, decoder.NoReason
}

func inflate(coding string, in []byte, limit int, cut bool) (decoded, error) {
	zr, err := content.NewReader(coding, bytes.NewReader(in), limit)
	if err != nil {
		if cut && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
			return decoded{out: []byte{}}, nil
		}
		return decoded{}, err
	}
	defer zr.Close()
	return readBounded(zr, len(in), limit, cut)
}

// readBounded reads r up to limit bytes and counts on to countFactor*limit.
func readBounded(r io.Reader, inLen, limit int, cut bool) (decoded, error) {
	out := make([]byte, 0, min(limit, max(512, 4*inLen)))
	for len(out) < limit {
		if len(out) == cap(out) {
			out = slices.Grow(out, min(len(out), limit-len(out)))
		}
		n, err := r.Read(out[len(out):min(cap(out), limit)])
		out = out[:len(out)+n]
		if err == io.EOF {
			return decoded{out: out, total: uint64(len(out))}, nil
		}
		if err != nil {
			return finishCut(out, err, cut)
		}
	}
	d := decoded{out: out, total: uint64(len(out))}
	var scratch [4096]byte
	for d.total < uint64(countFactor)*uint64(limit) {
		n, err := r.Read(scratch[:])
		d.total += uint64(n)
		if err != nil {
			break
		}
	}
	// A body of exactly limit bytes is whole.
	d.truncated = d.total > uint64(len(out))
	return d, nil
}

func finishCut(out []byte, err error, cut bool) (decoded, error) {
	// A body cut short by a limit or a reset is expected to end early;
	// the caller flags it, so the prefix is not marked again here.
	if cut && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return decoded{out: out, total: uint64(len(out))}, nil
	}
	return decoded{}, err
}

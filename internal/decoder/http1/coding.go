package http1

import (
	"bytes"
	"errors"
	"io"

	"github.com/tlstap/tlstap/internal/decoder/internal/content"
)

// coding is a content or transfer coding the decoder can undo.
type coding uint8

const (
	codingGzip coding = iota + 1
	codingDeflate
	codingBrotli
	codingZstd
)

// maxCodings bounds a stacked coding list; more is not real traffic.
const maxCodings = 4

// countBudget bounds, as a multiple of MaxBodyBytes, how much decoded output
// beyond the cap is inflated only to learn the original length. A bomb
// stops costing CPU there and its length is reported as unknown.
const countBudget = 8

var errTooManyCodings = errors.New("http1: too many codings")

// parseCodings appends the codings of a Content-Encoding or
// Transfer-Encoding list to dst in the order they were applied. ok is false
// when a coding is unknown: such a body is kept as it was sent.
// "identity" and, for transfer codings, "chunked" are framing, not codings.
func parseCodings(dst []coding, list []byte, transfer bool) (_ []coding, ok bool) {
	ok = true
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		if i := bytes.IndexByte(item, ';'); i >= 0 {
			item = item[:i]
		}
		item = trimOWS(item)
		switch {
		case len(item) == 0, equalFold(item, "identity"):
		case transfer && equalFold(item, "chunked"):
		case equalFold(item, "gzip"), equalFold(item, "x-gzip"):
			dst = append(dst, codingGzip)
		case equalFold(item, "deflate"):
			dst = append(dst, codingDeflate)
		case equalFold(item, "br"):
			dst = append(dst, codingBrotli)
		case equalFold(item, "zstd"):
			dst = append(dst, codingZstd)
		default:
			ok = false
		}
	}
	if len(dst) > maxCodings {
		ok = false
	}
	return dst, ok
}

// decoded is the outcome of undoing a body's codings.
type decoded struct {
	body []byte
	// total is the full decoded length; known is false when it was not
	// learned (the input was cut, or the count budget ran out).
	total uint64
	known bool
	// capped: the output went on past the limit.
	capped bool
}

// decodeBody undoes codings (in application order) on wire, keeping at most
// limit bytes of output in dst. cut says wire is only a prefix of the body;
// then a decoder running out of input is expected and the output so far is
// the result.
func decodeBody(dst []byte, codings []coding, wire []byte, limit int, cut bool) (decoded, error) {
	if len(codings) > maxCodings {
		return decoded{}, errTooManyCodings
	}
	var closers [maxCodings]io.Closer
	nc := 0
	defer func() {
		for _, c := range closers[:nc] {
			c.Close()
		}
	}()
	var r io.Reader = bytes.NewReader(wire)
	for i := len(codings) - 1; i >= 0; i-- {
		var err error
		var c io.Closer
		r, c, err = newDecoder(codings[i], r, limit)
		if err != nil {
			if cut && len(dst) == 0 {
				return decoded{body: dst}, nil
			}
			return decoded{}, err
		}
		if c != nil {
			closers[nc] = c
			nc++
		}
	}
	out, err := readCapped(dst, r, limit)
	if err != nil {
		if cut && len(out) > 0 {
			return decoded{body: out}, nil
		}
		return decoded{}, err
	}
	d := decoded{body: out, total: uint64(len(out)), known: !cut}
	if len(out) < limit {
		return d, nil
	}
	if cut {
		// The length cannot be learned from a prefix; don't spend CPU on
		// inflating the rest of it.
		d.capped = true
		return d, nil
	}
	// Keep counting what the cap discards, within a budget.
	n, err := io.CopyN(io.Discard, r, int64(limit)*countBudget)
	d.total += uint64(n)
	d.capped = n > 0 || err != io.EOF
	if err != io.EOF {
		// The budget ran out or the input is corrupt past the cap: what
		// was kept is still the body's true prefix.
		d.known = false
	}
	return d, nil
}

// readCapped appends r's output to dst until EOF or limit bytes.
func readCapped(dst []byte, r io.Reader, limit int) ([]byte, error) {
	for len(dst) < limit {
		if len(dst) == cap(dst) {
			// Grow by doubling but never past limit.
			nb := make([]byte, len(dst), min(max(2*cap(dst), 4096), limit))
			copy(nb, dst)
			dst = nb
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// codingNames are the content-coding names of the coding constants.
var codingNames = [...]string{codingGzip: "gzip", codingDeflate: "deflate", codingBrotli: "br", codingZstd: "zstd"}

func newDecoder(c coding, r io.Reader, limit int) (io.Reader, io.Closer, error) {
	if int(c) >= len(codingNames) || codingNames[c] == "" {
		return nil, nil, errors.ErrUnsupported
	}
	rc, err := content.NewReader(codingNames[c], r, limit)
	if err != nil {
		return nil, nil, err
	}
	return rc, rc, nil
}

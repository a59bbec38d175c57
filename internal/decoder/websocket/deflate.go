package websocket

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
)

// windowSize is the largest LZ77 window permessage-deflate allows
// (max_window_bits=15). A smaller negotiated window only means the sender
// never refers that far back, so this one size serves every negotiation.
const windowSize = 32 << 10

// inflateCapFactor bounds the bytes inflated for one message to this many
// times MaxBodyBytes. Past MaxBodyBytes the output is only counted (for
// OriginalLength) and kept as the window for the next message; the factor
// bounds the time a decompression bomb can cost.
const inflateCapFactor = 4

// deflateTail is the empty stored block the sender strips from the end of
// every compressed message (RFC 7692 section 7.2.1).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// deflateParams are the permessage-deflate parameters that matter to a
// reader of one direction.
type deflateParams struct {
	enabled bool
	// takeover: the sender keeps its LZ77 window between messages.
	takeover bool
}

// parseExtensions finds permessage-deflate in a Sec-WebSocket-Extensions
// value (RFC 6455 section 9.1 syntax) and returns its parameters for the
// client→server direction if fromClient, else server→client. The window
// bits parameters are accepted and ignored: see windowSize.
func parseExtensions(s string, fromClient bool) deflateParams {
	for ext := range strings.SplitSeq(s, ",") {
		parts := strings.Split(ext, ";")
		if !strings.EqualFold(strings.TrimSpace(parts[0]), "permessage-deflate") {
			continue
		}
		p := deflateParams{enabled: true, takeover: true}
		for _, param := range parts[1:] {
			name, _, _ := strings.Cut(param, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			switch {
			case name == "client_no_context_takeover" && fromClient,
				name == "server_no_context_takeover" && !fromClient:
				p.takeover = false
			}
		}
		// A 101 response accepts at most one permessage-deflate offer.
		return p
	}
	return deflateParams{}
}

// errBomb reports that a message inflated beyond the hard cap.
var errBomb = errors.New("websocket: inflated size exceeds cap")

// inflater decompresses the messages of one direction.
type inflater struct {
	takeover bool
	fr       io.ReadCloser
	src      bytes.Reader
	// window holds the last windowSize bytes of output when takeover.
	window  []byte
	scratch []byte
}

func newInflater(takeover bool) *inflater {
	return &inflater{takeover: takeover}
}

// inflate decompresses one message. in must have spare room or be owned by
// the caller: deflateTail is appended to it. Output up to keep bytes is
// returned in out; total counts every inflated byte. It stops with errBomb
// after hardCap bytes. A stream that ends mid-block (a message cut short)
// returns what was inflated.
func (f *inflater) inflate(in []byte, keep, hardCap int) (out []byte, total int, err error) {
	in = append(in, deflateTail...)
	f.src.Reset(in)
	var dict []byte
	if f.takeover {
		dict = f.dict()
	}
	if f.fr == nil {
		f.fr = flate.NewReaderDict(&f.src, dict)
	} else if err := f.fr.(flate.Resetter).Reset(&f.src, dict); err != nil {
		return nil, 0, err
	}
	if f.scratch == nil {
		f.scratch = make([]byte, scratchSize)
	}
	// Output goes through scratch: a message that fits is copied out at
	// its exact size, a longer one grows out as it comes.
	for {
		n, rerr := f.fill()
		chunk := f.scratch[:n]
		f.remember(chunk)
		if k := min(n, keep-len(out)); k > 0 {
			if out == nil && rerr != nil {
				out = make([]byte, 0, k)
			}
			out = append(out, chunk[:k]...)
		}
		total += n
		if rerr != nil {
			return out, total, f.endErr(rerr)
		}
		if total > hardCap {
			return out, total, errBomb
		}
	}
}

// scratchSize is the inflate buffer kept per compressed direction.
const scratchSize = 16 << 10

// fill reads from the flate reader until scratch is full or it fails.
func (f *inflater) fill() (int, error) {
	n := 0
	for n < len(f.scratch) {
		k, err := f.fr.Read(f.scratch[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// endErr maps the reader's final error. Every message ends with the sync
// flush we appended, so the reader runs out of input looking for the next
// block header: that, or a final block, is a clean end. (A message cut
// short ends the same way; the caller knows it and marks it Incomplete.)
func (f *inflater) endErr(err error) error {
	if err == io.EOF || (errors.Is(err, io.ErrUnexpectedEOF) && f.src.Len() == 0) {
		return nil
	}
	return err
}

// remember keeps the tail of the output as the next message's dictionary.
func (f *inflater) remember(b []byte) {
	if !f.takeover || len(b) == 0 {
		return
	}
	if len(b) >= windowSize {
		f.window = append(f.window[:0], b[len(b)-windowSize:]...)
		return
	}
	if len(f.window)+len(b) > 2*windowSize {
		n := copy(f.window, f.window[len(f.window)-windowSize:])
		f.window = f.window[:n]
	}
	f.window = append(f.window, b...)
}

// dict returns the current window.
func (f *inflater) dict() []byte {
	if len(f.window) > windowSize {
		return f.window[len(f.window)-windowSize:]
	}
	return f.window
}

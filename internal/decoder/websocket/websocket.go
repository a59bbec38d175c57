package websocket

import (
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/raw"
)

// Options describe the direction a decoder reads.
type Options struct {
	// FromClient: frames in this direction travel client→server and so
	// must be masked; server→client frames must not be.
	FromClient bool
	// Extensions is the 101 response's Sec-WebSocket-Extensions header,
	// which says whether permessage-deflate is on and with which context
	// takeover.
	Extensions string
}

// prealloc caps the payload buffer allocated from a frame's announced
// length before the bytes arrive; larger payloads grow as they come.
const prealloc = 64 << 10

// Decoder decodes one direction of a WebSocket connection.
type Decoder struct {
	lim        decoder.Limits
	fromClient bool
	deflate    deflateParams
	inf        *inflater

	// raw takes every byte once the direction is no longer WebSocket.
	raw *raw.Decoder
	// gap: bytes were lost; the partial state is emitted Incomplete on
	// the next Feed or Flush (Gap cannot emit), then raw takes over.
	gap bool

	// The frame header being assembled.
	hdr   [maxHeader]byte
	nhdr  int
	hdrTS int64

	// The frame whose payload is being read.
	inFrame bool
	h       header
	keyPos  int
	remain  uint64
	last    int64 // time of the frame's latest byte

	// The control frame being read (≤ 125 bytes).
	ctl      []byte
	ctlStart int64

	msg message
}

// New returns a decoder for the direction described by opts. Zero fields
// of l take their decoder.DefaultLimits value.
func New(opts Options, l decoder.Limits) decoder.Decoder {
	def := decoder.DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = def.MaxBodyBytes
	}
	if l.MaxBufferBytes <= 0 {
		l.MaxBufferBytes = def.MaxBufferBytes
	}
	d := &Decoder{
		lim:        l,
		fromClient: opts.FromClient,
		deflate:    parseExtensions(opts.Extensions, opts.FromClient),
	}
	if d.deflate.enabled {
		d.inf = newInflater(d.deflate.takeover)
	}
	return d
}

// Feed decodes data received at ts.
func (d *Decoder) Feed(ts int64, data []byte, emit decoder.Emit) {
	if d.gap {
		d.abort(emit)
	}
	for len(data) > 0 {
		if d.raw != nil {
			d.raw.Feed(ts, data, emit)
			return
		}
		if !d.inFrame {
			data = d.readHeader(ts, data, emit)
			continue
		}
		n := int(min(d.remain, uint64(len(data))))
		d.readPayload(ts, data[:n])
		data = data[n:]
		d.remain -= uint64(n)
		if d.remain == 0 {
			d.endFrame(emit)
		}
	}
}

// Flush emits what is buffered on Close; WebSocket messages have their own
// boundaries, so Idle only concerns the raw fallback.
func (d *Decoder) Flush(ts int64, reason decoder.FlushReason, emit decoder.Emit) {
	if d.gap {
		d.abort(emit)
	}
	if d.raw != nil {
		d.raw.Flush(ts, reason, emit)
		return
	}
	if reason == decoder.Close {
		d.abort(emit)
	}
}

// Gap gives up on the framing: after lost bytes the next frame header
// cannot be found reliably.
func (d *Decoder) Gap(uint64) {
	if d.raw == nil {
		d.gap = true
	}
}

// readHeader collects header bytes and starts the frame once they are
// all there. It returns the unread data.
func (d *Decoder) readHeader(ts int64, data []byte, emit decoder.Emit) []byte {
	if d.nhdr == 0 {
		d.hdrTS = ts
	}
	d.last = ts
	for {
		need := 2
		if d.nhdr >= 2 {
			need = headerLen(d.hdr[1])
			if d.nhdr == need {
				break
			}
		}
		if len(data) == 0 {
			return data
		}
		n := copy(d.hdr[d.nhdr:need], data)
		d.nhdr += n
		data = data[n:]
		if d.nhdr == 2 {
			if why := d.validStart(); why != decoder.NoReason {
				d.fail(why, emit)
				return data
			}
		}
	}
	h, ok := parseHeader(d.hdr[:d.nhdr])
	if !ok {
		d.fail(decoder.WebSocketFrameLengthInvalid, emit)
		return data
	}
	d.nhdr = 0
	d.h, d.keyPos, d.remain, d.inFrame = h, 0, h.length, true
	switch {
	case isControl(h.opcode):
		d.ctl = d.ctl[:0]
		d.ctlStart = d.hdrTS
	case h.opcode != opContinuation:
		d.msg.active = true
		d.msg.opcode = h.opcode
		d.msg.compressed = h.rsv1
		d.msg.start = d.hdrTS
		d.msg.size = 0
		d.msg.over = false
		if !h.rsv1 {
			n := min(h.length, uint64(d.lim.MaxBodyBytes), prealloc)
			d.msg.payload = make([]byte, 0, n)
		}
	}
	if h.opcode < opClose {
		d.msg.end = ts
	}
	if d.remain == 0 {
		d.endFrame(emit)
	}
	return data
}

// validStart checks what the first two header bytes allow to check
// (RFC 6455 section 5.2, RFC 7692 section 6), naming what is wrong. Failing
// early keeps a non-WebSocket stream from waiting for a 14-byte header.
func (d *Decoder) validStart() decoder.Reason {
	b0, b1 := d.hdr[0], d.hdr[1]
	op := b0 & 0x0f
	switch {
	case b0&rsv23 != 0:
		return decoder.WebSocketFrameRSVBits
	case !knownOpcode(op):
		return decoder.WebSocketFrameOpcodeUnknown
	case (b1&maskBit != 0) != d.fromClient:
		return decoder.WebSocketFrameMask
	case isControl(op):
		if b0&finBit == 0 || b0&rsv1Bit != 0 || b1&0x7f > maxControlPayload {
			return decoder.WebSocketFrameControlInvalid
		}
	case op == opContinuation:
		if !d.msg.active || b0&rsv1Bit != 0 {
			return decoder.WebSocketFrameContinuationUnexpected
		}
	case d.msg.active || (b0&rsv1Bit != 0 && !d.deflate.enabled):
		return decoder.WebSocketFrameDataUnexpected
	}
	return decoder.NoReason
}

// readPayload consumes payload bytes of the current frame.
func (d *Decoder) readPayload(ts int64, b []byte) {
	d.last = ts
	if isControl(d.h.opcode) {
		d.ctl = d.unmaskAppend(d.ctl, b, len(b))
		return
	}
	m := &d.msg
	m.end = ts
	m.size += uint64(len(b))
	if m.compressed {
		room := d.lim.MaxBufferBytes - len(m.z)
		if room < len(b) {
			m.over = true
		}
		m.z = d.unmaskAppend(m.z, b, room)
		return
	}
	m.payload = d.unmaskAppend(m.payload, b, d.lim.MaxBodyBytes-len(m.payload))
}

// unmaskAppend appends up to room bytes of b to dst, unmasked, and advances
// the mask key past all of b.
func (d *Decoder) unmaskAppend(dst, b []byte, room int) []byte {
	keep := b[:max(0, min(room, len(b)))]
	n := len(dst)
	dst = append(dst, keep...)
	if d.h.masked {
		mask(d.h.key, d.keyPos, dst[n:])
		d.keyPos = (d.keyPos + len(b)) & 3
	}
	return dst
}

// endFrame completes the current frame.
func (d *Decoder) endFrame(emit decoder.Emit) {
	d.inFrame = false
	if isControl(d.h.opcode) {
		emit(d.control(false))
		return
	}
	if d.h.fin {
		d.finish(false, emit)
	}
}

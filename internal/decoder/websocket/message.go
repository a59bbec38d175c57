package websocket

import (
	"encoding/binary"
	"errors"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/raw"
)

// message is the data message being assembled from its fragments.
type message struct {
	active     bool
	opcode     uint8
	compressed bool
	start, end int64
	// payload holds up to MaxBodyBytes of an uncompressed message.
	payload []byte
	// z holds up to MaxBufferBytes of a compressed message.
	z []byte
	// size counts the payload bytes on the wire; over says z overflowed.
	size uint64
	over bool
}

// control returns the message for the current control frame.
func (d *Decoder) control(incomplete bool) *decoder.Message {
	m := &decoder.Message{
		Type:       decoder.WebSocket,
		Start:      d.ctlStart,
		End:        d.last,
		WSOpcode:   d.h.opcode,
		Incomplete: incomplete,
	}
	p := d.ctl
	if d.h.opcode == opClose && len(p) >= 2 {
		m.WSCloseCode = binary.BigEndian.Uint16(p)
		p = p[2:]
	}
	if len(p) > d.lim.MaxBodyBytes {
		m.Truncated, m.OriginalLength = true, uint64(len(p))
		p = p[:d.lim.MaxBodyBytes]
	}
	m.Payload = append([]byte(nil), p...)
	return m
}

// finish emits the current data message.
func (d *Decoder) finish(incomplete bool, emit decoder.Emit) {
	m := &d.msg
	out := &decoder.Message{
		Type:       decoder.WebSocket,
		Start:      m.start,
		End:        m.end,
		WSOpcode:   m.opcode,
		Incomplete: incomplete,
	}
	lost := false // the compression context no longer matches the sender's
	if m.compressed {
		hardCap := inflateCapFactor * d.lim.MaxBodyBytes
		p, total, err := d.inf.inflate(m.z, d.lim.MaxBodyBytes, hardCap)
		out.Payload = p
		if total > len(p) || m.over {
			out.Truncated = true
			out.OriginalLength = uint64(total)
		}
		switch {
		case errors.Is(err, errBomb):
			d.lim.CountError(decoder.WebSocketDeflateTooLarge)
			lost = d.deflate.takeover
		case err != nil:
			// Corrupt deflate data: this is not the stream we think it is.
			d.lim.CountError(decoder.WebSocketDeflateCorrupt)
			out.Incomplete = true
			lost = true
		case m.over:
			d.lim.CountError(decoder.WebSocketDeflateTooLarge)
			lost = d.deflate.takeover
		}
		if cap(m.z) > prealloc {
			m.z = nil
		} else {
			m.z = m.z[:0]
		}
	} else {
		out.Payload = m.payload
		if m.size > uint64(len(m.payload)) {
			out.Truncated = true
			out.OriginalLength = m.size
		}
	}
	*m = message{z: m.z}
	emit(out)
	if lost && !incomplete {
		d.raw = raw.New(d.lim.RawFlushBytes)
	}
}

// abort emits whatever is partial as Incomplete and resets the framing
// state: the connection closed, or bytes were lost.
func (d *Decoder) abort(emit decoder.Emit) {
	if d.msg.active {
		d.finish(true, emit)
	}
	if d.inFrame && isControl(d.h.opcode) {
		emit(d.control(true))
	}
	if d.nhdr > 0 {
		emit(&decoder.Message{
			Type:       decoder.Raw,
			Start:      d.hdrTS,
			End:        d.last,
			Payload:    append([]byte(nil), d.hdr[:d.nhdr]...),
			Incomplete: true,
		})
	}
	d.inFrame, d.nhdr = false, 0
	if d.gap {
		d.gap = false
		d.raw = raw.New(d.lim.RawFlushBytes)
	}
}

// fail switches to raw at a frame header that is not valid WebSocket,
// counted as why: the partial message is emitted Incomplete, and the header
// bytes go to raw.
func (d *Decoder) fail(why decoder.Reason, emit decoder.Emit) {
	d.lim.CountError(why)
	if d.msg.active {
		d.finish(true, emit)
	}
	d.raw = raw.New(d.lim.RawFlushBytes)
	d.raw.Feed(d.hdrTS, d.hdr[:d.nhdr], emit)
	d.nhdr = 0
}

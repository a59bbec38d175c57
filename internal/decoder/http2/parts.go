package http2

import (
	"strconv"

	"github.com/tlstap/tlstap/internal/decoder"
	bodysplit "github.com/tlstap/tlstap/internal/decoder/internal/split"
)

// A stream is streamed (decoder.Limits.StreamParts) when its body does not
// complete at once after its head (a request's first header block, a
// response's first non-1xx one; see decoder.Part): its head is emitted
// then, its DATA in parts as the splitter cuts them, and an End with the
// trailers when the stream ends. A stream that completes at once is
// emitted whole, exactly as without streaming.

// headDone marks s as streamable once its head block is complete.
func (d *Decoder) headDone(s *stream) {
	if !d.lim.StreamParts || s.promise || s.split != nil || s.streamable {
		return
	}
	last := len(s.blocks) - 1
	if last < 0 || (s.typ == decoder.HTTP2Response && informational(scanHead(s.block(last)).status)) {
		return
	}
	s.streamable, s.headBlocks = true, len(s.blocks)
	d.waiting++
}

// startStreams emits the heads of the streams whose body is still
// arriving when the connection goes idle.
func (d *Decoder) startStreams() {
	if d.waiting == 0 {
		return
	}
	d.waiting = 0
	for _, s := range d.open {
		switch {
		case !s.streamable || s.split != nil:
		case s == d.block:
			d.waiting++ // its trailers are arriving
		default:
			d.startStream(s)
		}
	}
}

// framed reports whether s's body has protocol boundaries to cut parts at.
func framed(s *stream) bool {
	h := scanHead(s.block(s.headBlocks - 1))
	if s.typ == decoder.HTTP2Request {
		h = scanHead(s.block(0))
	}
	return bodysplit.For(h.contentType, h.contentEncoding) != bodysplit.Window
}

func (d *Decoder) startStream(s *stream) {
	h := scanHead(s.block(s.headBlocks - 1))
	if s.typ == decoder.HTTP2Request {
		h = scanHead(s.block(0))
	}
	s.head = h
	m := d.partMessage(s, decoder.Head)
	m.Start, m.End = s.start, d.now
	m.Payload = d.renderHead(s)
	m.Truncated = s.headerCut
	d.emit(m)
	s.split = bodysplit.New(bodysplit.For(h.contentType, h.contentEncoding), d.lim.MaxPartBytes)
	s.partStart = d.now
	if len(s.body) > 0 {
		s.partStart = s.bodyStart
		s.split.Write(s.body, d.partEmit(s))
	}
	s.body = s.body[:0]
}

// partMessage returns a message of s's stream with its head's metadata.
func (d *Decoder) partMessage(s *stream, part decoder.Part) *decoder.Message {
	h := &s.head
	m := &decoder.Message{Type: s.typ, Part: part, StreamID: s.id, ContentType: h.contentType, ContentEncoding: h.contentEncoding}
	if s.typ == decoder.HTTP2Request {
		m.Method, m.Path, m.Host = h.method, h.path, h.authority
		if m.Host == "" {
			m.Host = h.host
		}
	} else {
		m.Status = parseStatus(h.status)
	}
	return m
}

// streamData passes DATA of a streamed stream to its splitter.
func (d *Decoder) streamData(s *stream, p []byte) {
	s.bodyLen += uint64(len(p))
	if s.split.Buffered() == 0 {
		s.partStart = d.now
	}
	s.split.Write(p, d.partEmit(s))
}

func (d *Decoder) partEmit(s *stream) bodysplit.Emit {
	return func(info decoder.PartInfo, data []byte) {
		m := d.partMessage(s, decoder.Body)
		m.PartInfo, m.Payload = info, data
		m.Start, m.End = s.partStart, d.now
		d.emit(m)
		s.partStart = d.now
	}
}

// idleParts emits what boundary-less streamed bodies buffered.
func (d *Decoder) idleParts() {
	for _, s := range d.open {
		if s.split != nil && s.split.Framing() == bodysplit.Window {
			s.split.Flush(d.partEmit(s))
		}
	}
}

// endStream emits the last part of streamed s and returns its End: the
// trailers, with a gRPC response's status.
func (d *Decoder) endStream(s *stream) *decoder.Message {
	s.split.Flush(d.partEmit(s))
	s.split = nil
	m := d.partMessage(s, decoder.End)
	m.Start, m.End = s.end, s.end
	m.Incomplete, m.Truncated = s.incomplete, s.headerCut
	m.OriginalLength = s.bodyLen
	var b []byte
	for i := s.headBlocks; i < len(s.blocks); i++ {
		fields := s.block(i)
		b = appendFields(b, fields, false, false)
		for _, f := range fields {
			switch f.Name {
			case "grpc-status":
				if code, err := strconv.ParseUint(f.Value, 10, 32); err == nil {
					if m.GRPCStatus == nil {
						m.GRPCStatus = &decoder.GRPCStatus{}
					}
					m.GRPCStatus.Code = uint32(code)
				}
			case "grpc-message":
				if m.GRPCStatus == nil {
					m.GRPCStatus = &decoder.GRPCStatus{}
				}
				m.GRPCStatus.Message = f.Value
			}
		}
	}
	m.Payload = b
	return m
}

// renderHead renders the head of a streamed message: its start line and
// fields as the whole-message rendering shows them, without a length.
func (d *Decoder) renderHead(s *stream) []byte {
	h := &s.head
	var b []byte
	first := 0
	if s.typ == decoder.HTTP2Request {
		b = appendRequestLine(b, h)
	} else {
		first = s.headBlocks - 1
		for i := range first {
			b = appendInformational(b, s.block(i))
		}
		b = appendStatusLine(b, h.status)
	}
	skipHost := s.typ == decoder.HTTP2Request && h.authority != ""
	for i := first; i < s.headBlocks; i++ {
		b = appendFields(b, s.block(i), skipHost, false)
	}
	return append(b, "\r\n"...)
}

package http1

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/internal/content"
)

// finish emits the message being decoded and prepares for the next one.
func (s *stream) finish(emit decoder.Emit) {
	m := &s.m
	var msg *decoder.Message
	if m.split != nil {
		msg = s.endStream(emit)
	} else {
		msg = s.build()
	}
	s.st = stIdle
	if m.switchTo != nil {
		s.conn.switchProtocols()
		// Emitted after Feed has kept the rest of the input for Detach.
		s.pending = append(s.pending, msg)
		return
	}
	if !s.resp && m.flags&(flagUpgrade|flagConnect) != 0 {
		if s.resolved {
			s.resolved = false
		} else {
			s.st = stWait
		}
	}
	s.deliver(msg, emit)
}

// build renders the message being decoded.
func (s *stream) build() *decoder.Message {
	m := &s.m
	hasBody := m.kind != bodyNone
	body := m.body
	wireCut := m.wire > uint64(len(m.body))
	total, known := m.wire, true
	capped := wireCut
	decoded := false
	switch {
	case !hasBody || len(m.body) == 0:
	case !m.decodable:
		// An unknown coding, or more of them than real traffic stacks.
		why := decoder.ContentCodingUnknown
		if len(m.codings) > maxCodings {
			why = decoder.ContentTooManyCodings
		}
		s.lim.count(why)
	case len(m.codings) > 0:
		d, err := decodeBody(s.dec[:0], m.codings, m.body, s.lim.body, wireCut || m.incomplete)
		switch {
		case errors.Is(err, errTooManyCodings):
			s.lim.count(decoder.ContentTooManyCodings)
		case err != nil:
			s.lim.count(content.Reason(err))
		default:
			decoded = true
			body, total, known = d.body, d.total, d.known
			capped = wireCut || d.capped
			if cap(d.body) <= keepCap {
				s.dec = d.body[:0]
			}
		}
	}
	msg := &decoder.Message{
		Start:            m.start,
		End:              m.end,
		Truncated:        m.truncated || capped,
		Incomplete:       m.incomplete,
		TransferEncoding: m.te,
		ContentEncoding:  m.ce,
		ContentType:      m.ctype,
		Upgrade:          m.switchTo,
	}
	msg.Payload = s.render(body, hasBody, decoded)
	if capped && known {
		msg.OriginalLength = uint64(len(msg.Payload)-len(body)) + total
	}
	s.describe(msg)
	if cap(m.body) > keepCap {
		m.body = nil
	}
	return msg
}

// describe fills the type and the start line's fields.
func (s *stream) describe(msg *decoder.Message) {
	m := &s.m
	if s.resp {
		msg.Type = decoder.HTTP1Response
		msg.Status = uint32(m.status)
		return
	}
	msg.Type = decoder.HTTP1Request
	msg.Method, msg.Path, msg.Host = m.method, m.path, m.host
}

var crlf = []byte("\r\n")

// render writes the message as HTTP/1.1 text: the start line and fields as
// sent, framing rewritten to a Content-Length for the body as decoded.
func (s *stream) render(body []byte, hasBody, decoded bool) []byte {
	m := &s.m
	size := s.startLine.end - s.startLine.off + len(m.trailer) + len(body) + 48
	for _, f := range s.fields {
		size += f.line.end - f.line.off + 2
	}
	p := make([]byte, 0, size)
	p = append(p, s.hdr[s.startLine.off:s.startLine.end]...)
	p = append(p, crlf...)
	lengthDone := !hasBody
	for _, f := range s.fields {
		switch {
		case hasBody && (f.kind == fieldContentLength || f.kind == fieldTransferEncoding):
			if !lengthDone {
				name := []byte("Content-Length")
				if f.kind == fieldContentLength {
					name = s.hdr[f.name.off:f.name.end]
				}
				p = appendLength(p, name, len(body))
				lengthDone = true
			}
			continue
		case decoded && f.kind == fieldContentEncoding:
			continue
		}
		p = append(p, s.hdr[f.line.off:f.line.end]...)
		p = append(p, crlf...)
	}
	if !lengthDone {
		p = appendLength(p, []byte("Content-Length"), len(body))
	}
	p = renderTrailer(p, m.trailer)
	p = append(p, crlf...)
	return append(p, body...)
}

// renderTrailer appends the fields of a chunked trailer section.
func renderTrailer(p, trailer []byte) []byte {
	for t := trailer; len(t) > 0; {
		line := t
		if k := bytes.IndexByte(t, '\n'); k >= 0 {
			line, t = t[:k], t[k+1:]
		} else {
			t = nil
		}
		if line = trimCR(line); bytes.IndexByte(line, ':') > 0 {
			p = append(p, line...)
			p = append(p, crlf...)
		}
	}
	return p
}

func appendLength(p, name []byte, n int) []byte {
	p = append(p, name...)
	p = append(p, ": "...)
	p = strconv.AppendInt(p, int64(n), 10)
	return append(p, crlf...)
}

// truncatedHeader emits a header section longer than lim.header, cut
// there, and resynchronises after it.
func (s *stream) truncatedHeader(b []byte, emit decoder.Emit) int {
	s.lim.count(decoder.HTTP1HeaderTooLarge)
	n := s.lim.header
	s.partial(b[:n], true, emit)
	s.st, s.candAt0 = stGarbage, b[n-1] == '\n'
	return n
}

// abandonHeader emits an incomplete header section left in buf: as an
// incomplete message when its start line was valid, else as garbage.
func (s *stream) abandonHeader(emit decoder.Emit) {
	if s.m.lineOK {
		s.partial(s.buf, false, emit)
	} else {
		s.toGarbage(s.m.start)
		s.addGarbage(s.m.end, s.buf, emit)
		s.flushGarbage(emit)
	}
	s.buf = s.buf[:0]
	s.st = stIdle
}

// partial emits the raw bytes of a header section that never completed.
func (s *stream) partial(b []byte, truncated bool, emit decoder.Emit) {
	m := &s.m
	if k := bytes.IndexByte(b, '\n'); k >= 0 {
		s.parseStartLine(b[:k])
	}
	if !s.resp {
		s.conn.push(m.flags)
	} else if m.status >= 200 || m.status == 101 {
		s.conn.pop()
	}
	msg := &decoder.Message{
		Start:      m.start,
		End:        m.end,
		Payload:    bytes.Clone(b),
		Truncated:  truncated,
		Incomplete: !truncated,
	}
	s.describe(msg)
	s.deliver(msg, emit)
}

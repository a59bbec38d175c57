package http2

import (
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/decoder"
)

// head is what rendering needs from a header block.
type head struct {
	method, path, authority, status, host string
	contentType, contentEncoding          string
}

func scanHead(fields []hpack.HeaderField) head {
	var h head
	for _, f := range fields {
		switch f.Name {
		case ":method":
			h.method = f.Value
		case ":path":
			h.path = f.Value
		case ":authority":
			h.authority = f.Value
		case ":status":
			h.status = f.Value
		case "host":
			if h.host == "" {
				h.host = f.Value
			}
		case "content-type":
			if h.contentType == "" {
				h.contentType = f.Value
			}
		case "content-encoding":
			if h.contentEncoding == "" {
				h.contentEncoding = f.Value
			} else {
				h.contentEncoding += ", " + f.Value
			}
		}
	}
	return h
}

func informational(status string) bool { return len(status) == 3 && status[0] == '1' }

// render turns a finished stream into its message.
func (d *Decoder) render(s *stream) *decoder.Message {
	m := &decoder.Message{Type: s.typ, Start: s.start, End: s.end, StreamID: s.id, Incomplete: s.incomplete}
	block := s.block
	// The head is the first block of a request, the first non-1xx block
	// of a response; blocks before it are 1xx heads, after it trailers.
	final := 0
	var h head
	if len(s.blocks) > 0 {
		h = scanHead(block(0))
		for s.typ == decoder.HTTP2Response && informational(h.status) && final+1 < len(s.blocks) {
			final++
			h = scanHead(block(final))
		}
	}
	if s.typ == decoder.HTTP2Response && informational(h.status) {
		// Only 1xx heads arrived: render them all, and no final one.
		return renderInformational(s, m)
	}
	m.ContentType = h.contentType
	// Without its pseudo-headers the head was not seen: what arrived are
	// trailers, or a block cut short. Never present that as whole.
	if (s.typ == decoder.HTTP2Request && h.method == "") || (s.typ == decoder.HTTP2Response && h.status == "") {
		m.Incomplete = true
	}
	truncated := s.bodyCut || s.headerCut

	body, bodyLen := s.body, s.bodyLen
	dropEncoding := false
	if h.contentEncoding != "" {
		r, ok, why := decodeContent(h.contentEncoding, s.body, d.lim.MaxBodyBytes, s.bodyCut || s.incomplete)
		d.lim.CountError(why)
		if ok {
			body, bodyLen, dropEncoding = r.out, r.total, true
			m.ContentEncoding = h.contentEncoding
			truncated = truncated || r.truncated
		}
	}

	size := len(body) + 64 + 16*len(s.blocks) + len(h.method) + len(h.path) + len(h.authority)
	for _, f := range s.fields {
		size += len(f.Name) + len(f.Value) + 4
	}
	b := make([]byte, 0, size)

	if s.typ == decoder.HTTP2Request {
		m.Method, m.Path = h.method, h.path
		m.Host = h.authority
		if m.Host == "" {
			m.Host = h.host
		}
		b = appendRequestLine(b, &h)
	} else {
		for i := range final {
			b = appendInformational(b, block(i))
		}
		m.Status = parseStatus(h.status)
		b = appendStatusLine(b, h.status)
	}
	if len(s.blocks) > 0 {
		skipHost := s.typ == decoder.HTTP2Request && h.authority != ""
		for i := final; i < len(s.blocks); i++ {
			b = appendFields(b, block(i), skipHost, dropEncoding)
		}
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	headLen := len(b)
	b = append(b, body...)
	m.Payload = b

	if truncated {
		m.Truncated = true
		m.OriginalLength = uint64(headLen) + max(bodyLen, uint64(len(body)))
	}
	return m
}

// appendRequestLine renders a request's pseudo-headers as an HTTP/1-style
// request line and Host field, the way every HTTP tool reads them.
func appendRequestLine(b []byte, h *head) []byte {
	target := h.path
	if target == "" && h.method == "CONNECT" {
		target = h.authority
	}
	b = appendValue(b, h.method)
	b = append(b, ' ')
	b = appendValue(b, target)
	b = append(b, " HTTP/2\r\n"...)
	if h.authority != "" {
		b = append(b, "Host: "...)
		b = appendValue(b, h.authority)
		b = append(b, "\r\n"...)
	}
	return b
}

func appendStatusLine(b []byte, status string) []byte {
	b = append(b, "HTTP/2 "...)
	b = appendValue(b, status)
	return append(b, "\r\n"...)
}

func appendInformational(b []byte, fields []hpack.HeaderField) []byte {
	b = appendStatusLine(b, scanHead(fields).status)
	b = appendFields(b, fields, false, false)
	return append(b, "\r\n"...)
}

// renderInformational renders a response of which only 1xx heads arrived.
// Status stays 0: the final status is unknown.
func renderInformational(s *stream, m *decoder.Message) *decoder.Message {
	m.Incomplete = true
	m.Truncated = s.headerCut
	var b []byte
	for i := range s.blocks {
		b = appendInformational(b, s.block(i))
	}
	m.Payload = b
	return m
}

// appendFields renders the regular fields of a block. content-length is
// always dropped: the rendering writes the length of the body it carries.
func appendFields(b []byte, fields []hpack.HeaderField, skipHost, skipEncoding bool) []byte {
	cookies := false
	for i, f := range fields {
		if strings.HasPrefix(f.Name, ":") {
			continue
		}
		switch {
		case f.Name == "content-length",
			skipHost && f.Name == "host",
			skipEncoding && f.Name == "content-encoding":
			continue
		case f.Name == "cookie":
			// HTTP/2 may split the cookie into one field per crumb; an
			// HTTP/1.1 message has a single line (RFC 9113 §8.2.3).
			if !cookies {
				cookies = true
				b = appendCookies(b, fields[i:])
			}
			continue
		}
		b = appendValue(b, f.Name)
		b = append(b, ": "...)
		b = appendValue(b, f.Value)
		b = append(b, "\r\n"...)
	}
	return b
}

func appendCookies(b []byte, fields []hpack.HeaderField) []byte {
	b = append(b, "cookie: "...)
	first := true
	for _, f := range fields {
		if f.Name != "cookie" {
			continue
		}
		if !first {
			b = append(b, "; "...)
		}
		first = false
		b = appendValue(b, f.Value)
	}
	return append(b, "\r\n"...)
}

// appendValue appends v with CR, LF and NUL replaced by spaces. HTTP/2
// forbids them in fields (RFC 9113 §8.2.1); copied through they would let a
// malformed field forge lines of the HTTP/1.1 rendering.
func appendValue(b []byte, v string) []byte {
	start := len(b)
	b = append(b, v...)
	if strings.ContainsAny(v, "\r\n\x00") {
		for i := start; i < len(b); i++ {
			if c := b[i]; c == '\r' || c == '\n' || c == 0 {
				b[i] = ' '
			}
		}
	}
	return b
}

func parseStatus(s string) uint32 {
	if len(s) != 3 {
		return 0
	}
	var n uint32
	for i := range 3 {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}

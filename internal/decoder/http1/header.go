package http1

import (
	"bytes"
	"errors"
	"strconv"
)

// fieldKind marks the header fields the decoder interprets.
type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldContentLength
	fieldTransferEncoding
	fieldContentEncoding
	fieldContentType
	fieldHost
	fieldUpgrade
	fieldWSExtensions
)

// span is a range of stream.hdr.
type span struct{ off, end int }

// field is one header line. name and value are parts of line; a folded
// (obs-fold) field's continuation lines are joined into line with one SP.
type field struct {
	line, name, value span
	kind              fieldKind
}

var (
	errFieldSyntax   = errors.New("http1: malformed header field")
	errContentLength = errors.New("http1: invalid Content-Length")
)

// findHeaderEnd looks for the empty line that ends a header section,
// starting at from, which must be a line start. It returns the offset just
// past that line, or -1 and the start of the first incomplete line.
func findHeaderEnd(b []byte, from int) (end, next int) {
	for {
		k := bytes.IndexByte(b[from:], '\n')
		if k < 0 {
			return -1, from
		}
		if k == 0 || (k == 1 && b[from] == '\r') {
			return from + k + 1, from + k + 1
		}
		from += k + 1
	}
}

// parseHeader copies the header section b (start line to empty line) into
// s.hdr with line ends removed, records its fields and interprets those the
// decoder needs.
func (s *stream) parseHeader(b []byte) error {
	s.hdr = s.hdr[:0]
	s.fields = s.fields[:0]
	k := bytes.IndexByte(b, '\n')
	s.hdr = append(s.hdr, trimCR(b[:k])...)
	s.startLine = span{0, len(s.hdr)}
	rest := b[k+1:]
	for {
		k := bytes.IndexByte(rest, '\n')
		if k < 0 {
			break
		}
		line := trimCR(rest[:k])
		rest = rest[k+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: RFC 9112 5.2 lets a recipient replace it with SP.
			if len(s.fields) == 0 {
				return errFieldSyntax
			}
			v := trimOWS(line)
			if !validValue(v) {
				return errFieldSyntax
			}
			f := &s.fields[len(s.fields)-1]
			if len(v) > 0 {
				if f.value.end > f.value.off {
					s.hdr = append(s.hdr, ' ')
				} else {
					f.value.off = len(s.hdr)
				}
				s.hdr = append(s.hdr, v...)
			}
			f.line.end, f.value.end = len(s.hdr), len(s.hdr)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validToken(line[:colon]) {
			return errFieldSyntax
		}
		v := trimOWS(line[colon+1:])
		if !validValue(v) {
			return errFieldSyntax
		}
		off := len(s.hdr)
		s.hdr = append(s.hdr, line[:colon+1]...)
		s.hdr = append(s.hdr, ' ')
		voff := len(s.hdr)
		s.hdr = append(s.hdr, v...)
		s.fields = append(s.fields, field{
			line:  span{off, len(s.hdr)},
			name:  span{off, off + colon},
			value: span{voff, len(s.hdr)},
			kind:  kindOf(line[:colon]),
		})
	}
	return s.interpret()
}

// interpret fills the message state from the parsed fields.
func (s *stream) interpret() error {
	m := &s.m
	m.hasLength = false
	var te, ce []byte
	for i := range s.fields {
		f := &s.fields[i]
		v := s.hdr[f.value.off:f.value.end]
		switch f.kind {
		case fieldContentLength:
			n, err := parseContentLength(v)
			if err != nil || (m.hasLength && n != m.length) {
				return errContentLength
			}
			m.length, m.hasLength = n, true
		case fieldTransferEncoding:
			te = appendList(te, v)
		case fieldContentEncoding:
			ce = appendList(ce, v)
		case fieldContentType:
			if m.ctype == "" {
				m.ctype = string(v)
			}
		case fieldHost:
			if m.host == "" {
				m.host = string(v)
			}
		case fieldUpgrade:
			m.upgrade = true
			if m.upgradeProto == "" {
				m.upgradeProto = string(bytes.ToLower(v))
			}
		case fieldWSExtensions:
			if m.wsExt == "" {
				m.wsExt = string(v)
			}
		}
	}
	m.codings = m.codings[:0]
	m.decodable = true
	if len(ce) > 0 {
		m.ce = string(ce)
		m.codings, m.decodable = parseCodings(m.codings, ce, false)
	}
	if len(te) > 0 {
		m.te = string(te)
		var ok bool
		m.codings, ok = parseCodings(m.codings, te, true)
		m.decodable = m.decodable && ok
		m.chunked = lastCoding(te, "chunked")
	}
	return nil
}

// parseContentLength accepts 1*DIGIT, or a list of identical values (RFC
// 9110 8.6 lets a recipient treat "5, 5" as 5).
func parseContentLength(v []byte) (uint64, error) {
	var n uint64
	seen := false
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = trimOWS(v[:i]), v[i+1:]
		} else {
			item, v = trimOWS(v), nil
		}
		if len(item) == 0 || len(item) > 18 {
			return 0, errContentLength
		}
		x, err := strconv.ParseUint(string(item), 10, 64)
		if err != nil || (seen && x != n) {
			return 0, errContentLength
		}
		n, seen = x, true
	}
	if !seen {
		return 0, errContentLength
	}
	return n, nil
}

func appendList(dst, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	if len(dst) > 0 {
		dst = append(dst, ", "...)
	}
	return append(dst, v...)
}

// lastCoding reports whether the last coding of list is name.
func lastCoding(list []byte, name string) bool {
	if i := bytes.LastIndexByte(list, ','); i >= 0 {
		list = list[i+1:]
	}
	if i := bytes.IndexByte(list, ';'); i >= 0 {
		list = list[:i]
	}
	return equalFold(trimOWS(list), name)
}

func kindOf(name []byte) fieldKind {
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			return fieldHost
		}
	case 7:
		if equalFold(name, "upgrade") {
			return fieldUpgrade
		}
	case 12:
		if equalFold(name, "content-type") {
			return fieldContentType
		}
	case 14:
		if equalFold(name, "content-length") {
			return fieldContentLength
		}
	case 16:
		if equalFold(name, "content-encoding") {
			return fieldContentEncoding
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return fieldTransferEncoding
		}
	case 24:
		if equalFold(name, "sec-websocket-extensions") {
			return fieldWSExtensions
		}
	}
	return fieldOther
}

// equalFold compares ASCII case-insensitively; s must be lower case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func validToken(b []byte) bool {
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func validValue(b []byte) bool {
	for _, c := range b {
		if !isFieldChar(c) {
			return false
		}
	}
	return true
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for n := len(b); n > 0 && (b[n-1] == ' ' || b[n-1] == '\t'); n-- {
		b = b[:n-1]
	}
	return b
}

// methodString returns the method as a string, without allocating for the
// registered ones.
func methodString(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "HEAD":
		return "HEAD"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(b)
}

package http1

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/internal/split"
)

// bodyKind is how a message's body is delimited (RFC 9112 6.3).
type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
	bodyClose
)

// chunkState is the position in chunked framing.
type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkExt
	chunkSizeLF
	chunkData
	chunkDataCR
	chunkDataLF
	chunkTrailer
)

// message is the state of the message being decoded.
type message struct {
	start, end int64
	// lineOK: the start line is complete and valid.
	lineOK bool

	method, path string
	status       int
	flags        reqFlags

	host, ctype, te, ce string
	upgrade             bool
	upgradeProto, wsExt string
	hasLength           bool
	length              uint64
	chunked             bool
	codings             []coding
	decodable           bool

	kind bodyKind
	// remain is what is left of the body (bodyLength) or of the chunk.
	remain uint64
	chunk  chunkState
	// lineLen and digits measure the current chunk-size line.
	lineLen, digits int
	// trailer holds the trailer section; tline measures its current line.
	trailer []byte
	tline   int
	tfirst  byte

	// body holds de-chunked wire bytes up to lim.body; wire counts all.
	body []byte
	wire uint64

	switchTo              *decoder.Upgrade
	truncated, incomplete bool

	// streamable: the body may be streamed (see startStream); split is
	// set once it is, and partStart is when its next part began.
	streamable bool
	split      *split.Splitter
	partStart  int64
	bodyStart  int64
}

// reset clears m for the next message, keeping its buffers.
func (m *message) reset() {
	*m = message{codings: m.codings[:0], body: m.body[:0], trailer: m.trailer[:0]}
	if cap(m.body) > keepCap {
		m.body = nil
	}
}

// header parses a header section at the start of b and returns the bytes
// consumed: 0 while it is incomplete.
func (s *stream) header(ts int64, b []byte, emit decoder.Emit) int {
	m := &s.m
	m.end = ts
	if !m.lineOK {
		k := bytes.IndexByte(b[s.scan:], '\n')
		if k < 0 {
			if len(b) >= s.lim.header {
				s.notStart(decoder.HTTP1StartLineTooLong)
				return 0
			}
			s.scan = len(b)
			return 0
		}
		k += s.scan
		if k >= s.lim.header {
			s.notStart(decoder.HTTP1StartLineTooLong)
			return 0
		}
		if ok, _ := isStart(s.resp, b[:k+1]); !ok {
			s.notStart(decoder.HTTP1StartLineInvalid)
			return 0
		}
		m.lineOK = true
		s.scan = k + 1
		s.flushGarbage(emit)
	}
	end, next := findHeaderEnd(b, s.scan)
	if end < 0 {
		s.scan = next
		if len(b) < s.lim.header {
			return 0
		}
	}
	if end < 0 || end > s.lim.header {
		return s.truncatedHeader(b, emit)
	}
	if err := s.parseHeader(b[:end]); err != nil {
		why := decoder.HTTP1HeaderFieldInvalid
		if errors.Is(err, errContentLength) {
			why = decoder.HTTP1ContentLengthInvalid
		}
		s.notStart(why)
		return 0
	}
	s.startBody()
	if m.kind == bodyNone || (m.kind == bodyLength && m.length == 0) {
		s.finish(emit)
		return end
	}
	m.streamable = s.lim.stream
	return end
}

// notStart turns a candidate that proved not to be a message into garbage,
// counting why.
func (s *stream) notStart(why decoder.Reason) {
	s.lim.count(why)
	s.toGarbage(s.m.start)
}

// parseStartLine fills the message fields of a start line.
func (s *stream) parseStartLine(line []byte) {
	m := &s.m
	line = trimCR(bytes.TrimSuffix(line, []byte("\n")))
	if s.resp {
		if len(line) >= len("HTTP/1.x 200") {
			m.status, _ = strconv.Atoi(string(line[9:12]))
		}
		return
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return
	}
	m.method = methodString(line[:sp])
	target := line[sp+1:]
	if k := bytes.LastIndexByte(target, ' '); k >= 0 {
		target = target[:k]
	}
	m.path = string(target)
	switch m.method {
	case "HEAD":
		m.flags |= flagHead
	case "CONNECT":
		m.flags |= flagConnect
	}
}

// startBody interprets a parsed header section: request bookkeeping,
// protocol switches and how the body is delimited.
func (s *stream) startBody() {
	m := &s.m
	s.parseStartLine(s.hdr[s.startLine.off:s.startLine.end])
	if !s.resp {
		if m.upgrade {
			m.flags |= flagUpgrade
		}
		if m.host == "" {
			m.host = hostOf(m.method, m.path)
		}
		s.conn.push(m.flags)
		switch {
		case m.chunked:
			m.kind = bodyChunked
		case m.hasLength:
			m.kind, m.remain = bodyLength, m.length
		}
		s.st = stBody
		return
	}
	st := m.status
	if st >= 200 || st == 101 {
		m.flags = s.conn.pop()
	}
	switch {
	case st == 101:
		m.switchTo = &decoder.Upgrade{Protocol: m.upgradeProto, Extensions: m.wsExt}
	case m.flags&flagConnect != 0 && st/100 == 2:
		m.switchTo = &decoder.Upgrade{Protocol: "tunnel"}
	case m.flags&(flagUpgrade|flagConnect) != 0 && st >= 200:
		s.conn.req.resume()
	}
	switch {
	case m.flags&flagHead != 0, st < 200, st == 204, st == 304, m.switchTo != nil:
	case m.te != "" && m.chunked:
		m.kind = bodyChunked
	case m.te != "":
		m.kind = bodyClose
	case m.hasLength:
		m.kind, m.remain = bodyLength, m.length
	default:
		m.kind = bodyClose
	}
	s.st = stBody
}

// hostOf finds the host of a request without a Host field in its target.
func hostOf(method, target string) string {
	if method == "CONNECT" {
		return target
	}
	i := bytes.Index([]byte(target), []byte("://"))
	if i < 0 {
		return ""
	}
	h := target[i+3:]
	if j := bytes.IndexAny([]byte(h), "/?#"); j >= 0 {
		h = h[:j]
	}
	return h
}

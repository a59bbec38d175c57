package http1

import (
	"bytes"

	"github.com/tlstap/tlstap/internal/decoder"
)

// maxChunkDigits keeps a chunk size within uint64.
const maxChunkDigits = 16

// body consumes body bytes at the start of b.
func (s *stream) body(ts int64, b []byte, emit decoder.Emit) int {
	m := &s.m
	m.end = ts
	switch m.kind {
	case bodyLength:
		n := int(min(uint64(len(b)), m.remain))
		s.write(b[:n], emit)
		m.remain -= uint64(n)
		if m.remain == 0 {
			s.finish(emit)
		}
		return n
	case bodyChunked:
		return s.chunked(b, emit)
	default:
		s.write(b, emit)
		return len(b)
	}
}

// chunked runs the chunked framing over b. Chunk-size lines and extensions
// are never buffered, only measured, so an endless one costs no memory.
func (s *stream) chunked(b []byte, emit decoder.Emit) int {
	m := &s.m
	i := 0
	for i < len(b) {
		c := b[i]
		switch m.chunk {
		case chunkSize:
			if h := unhex(c); h >= 0 {
				if m.digits == maxChunkDigits {
					return s.framingError(i, decoder.HTTP1ChunkSizeInvalid, emit)
				}
				m.remain = m.remain<<4 | uint64(h)
				m.digits++
				m.lineLen++
				i++
				continue
			}
			if m.digits == 0 {
				return s.framingError(i, decoder.HTTP1ChunkSizeInvalid, emit)
			}
			switch c {
			case ';', ' ', '\t':
				m.chunk = chunkExt
			case '\r':
				m.chunk = chunkSizeLF
			case '\n':
				s.sizeDone()
			default:
				return s.framingError(i, decoder.HTTP1ChunkSizeInvalid, emit)
			}
			i++
		case chunkExt:
			k := bytes.IndexByte(b[i:], '\n')
			if k < 0 {
				k = len(b) - i
			}
			if m.lineLen += k; m.lineLen > s.lim.header {
				return s.framingError(i, decoder.HTTP1ChunkLineTooLong, emit)
			}
			i += k
			if i < len(b) {
				i++
				s.sizeDone()
			}
		case chunkSizeLF:
			if c != '\n' {
				return s.framingError(i, decoder.HTTP1ChunkSizeInvalid, emit)
			}
			i++
			s.sizeDone()
		case chunkData:
			n := int(min(uint64(len(b)-i), m.remain))
			s.write(b[i:i+n], emit)
			m.remain -= uint64(n)
			i += n
			if m.remain == 0 {
				m.chunk = chunkDataCR
			}
		case chunkDataCR, chunkDataLF:
			switch {
			case c == '\r' && m.chunk == chunkDataCR:
				m.chunk = chunkDataLF
			case c == '\n':
				m.chunk, m.digits, m.lineLen = chunkSize, 0, 0
			default:
				return s.framingError(i, decoder.HTTP1ChunkDataNoCRLF, emit)
			}
			i++
		case chunkTrailer:
			k := bytes.IndexByte(b[i:], '\n')
			if k < 0 {
				s.addTrailer(b[i:])
				i = len(b)
				continue
			}
			s.addTrailer(b[i : i+k])
			i += k + 1
			if m.tline == 0 || (m.tline == 1 && m.tfirst == '\r') {
				// The empty line ends the message; it is not a trailer.
				m.trailer = m.trailer[:max(0, len(m.trailer)-m.tline)]
				s.finish(emit)
				return i
			}
			s.keepTrailer(crlf[1:])
			m.tline = 0
		}
	}
	return i
}

// sizeDone ends a chunk-size line.
func (s *stream) sizeDone() {
	m := &s.m
	m.digits, m.lineLen = 0, 0
	if m.remain == 0 {
		m.chunk, m.tline = chunkTrailer, 0
		return
	}
	m.chunk = chunkData
}

// addTrailer keeps bytes of the current trailer line.
func (s *stream) addTrailer(p []byte) {
	m := &s.m
	if len(p) == 0 {
		return
	}
	if m.tline == 0 {
		m.tfirst = p[0]
	}
	m.tline += len(p)
	s.keepTrailer(p)
}

// keepTrailer stores trailer bytes within what the header limit leaves.
func (s *stream) keepTrailer(p []byte) {
	m := &s.m
	room := s.lim.header - len(s.hdr) - len(m.trailer)
	if len(p) > room {
		p = p[:max(room, 0)]
		m.truncated = true
	}
	m.trailer = append(m.trailer, p...)
}

// framingError ends the message at a chunked framing error at b[i],
// counted as why, and resynchronises from there.
func (s *stream) framingError(i int, why decoder.Reason, emit decoder.Emit) int {
	s.lim.count(why)
	s.m.incomplete = true
	s.finish(emit)
	if s.st < stWait {
		s.st, s.candAt0 = stGarbage, true
	}
	return i
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// write stores body bytes up to lim.body and counts all of them; a streamed
// body goes to its splitter instead.
func (s *stream) write(p []byte, emit decoder.Emit) {
	m := &s.m
	if m.wire == 0 {
		m.bodyStart = m.end
	}
	m.wire += uint64(len(p))
	if m.split != nil {
		s.streamBody(p, emit)
		return
	}
	if m.streamable && (len(m.body)+len(p) >= s.lim.part || m.end-m.start >= s.lim.after) {
		// Too much, or too long, to be a message that completes at once.
		s.startStream(emit)
		s.streamBody(p, emit)
		return
	}
	room := s.lim.body - len(m.body)
	if room <= 0 || len(p) == 0 {
		return
	}
	p = p[:min(room, len(p))]
	if need := len(m.body) + len(p); need > cap(m.body) && m.kind == bodyLength {
		// The length is known: allocate once.
		if want := int(min(m.length, uint64(s.lim.body))); want > need {
			nb := make([]byte, len(m.body), want)
			copy(nb, m.body)
			m.body = nb
		}
	}
	m.body = appendCapped(m.body, p, s.lim.body)
}

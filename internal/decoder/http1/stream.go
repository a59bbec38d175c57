package http1

import (
	"bytes"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/internal/split"
)

// state is where a stream is in its input.
type state uint8

const (
	// stIdle expects a message start; blank lines between messages are
	// skipped.
	stIdle state = iota
	// stHeader collects a header section in buf until its empty line.
	stHeader
	// stBody consumes a body as it arrives.
	stBody
	// stGarbage resynchronises: bytes become Raw messages until a line
	// that starts a message.
	stGarbage
	// The states below do not parse; Feed only keeps bytes for later.

	// stWait: the request decoder after an Upgrade or CONNECT request,
	// until the response says whether the protocol switches.
	stWait
	// stSwitched: the protocol switched; bytes wait for Conn.Detach.
	stSwitched
	// stDetached: Detach was called; input is ignored.
	stDetached
)

// httpPrefix starts every status line; responses are also resynchronised on
// it mid-line, since a body without a final newline may precede it.
const httpPrefix = "HTTP/1."

// keepCap bounds the capacity a stream keeps in reusable buffers between
// messages, so that an idle connection holds little memory.
const keepCap = 64 << 10

// stream decodes one direction of a connection.
type stream struct {
	conn *Conn
	resp bool
	lim  limits
	st   state

	// buf holds input not yet consumed: an incomplete header section, or
	// everything while waiting for or after a protocol switch.
	buf []byte
	// scan is where the search for the end of the header section in buf
	// resumes.
	scan int
	// candAt0: the next input starts at a line start or right after a gap,
	// so it may begin a message. skip0: its first byte was just rejected
	// as a message start.
	candAt0, skip0 bool

	// garbage collects bytes that are not HTTP until they are emitted as
	// a Raw message.
	garbage             []byte
	gStart, gEnd, gHint int64
	gHinted             bool

	// pending holds messages completed where no emit was at hand (Gap, the
	// other direction switching protocols).
	pending []*decoder.Message

	// resolved: the response to this direction's Upgrade or CONNECT
	// request came before the request was complete.
	resolved bool
	// resync: input was dropped while waiting; resume in stGarbage.
	resync bool
	// resumed: buf holds input kept while waiting, not parsed yet.
	resumed bool

	m         message
	hdr       []byte
	fields    []field
	startLine span
	dec       []byte
}

// Feed consumes data received at ts.
func (s *stream) Feed(ts int64, data []byte, emit decoder.Emit) {
	s.flushPending(emit)
	s.resumed = false
	for {
		if s.st >= stWait {
			s.hold(data)
			break
		}
		if len(s.buf) == 0 {
			// Fast path: parse data in place and keep only what an
			// incomplete header section leaves over.
			n := s.process(ts, data, emit)
			data = data[n:]
			if s.st >= stWait {
				continue
			}
			s.buf = appendCapped(s.buf, data, s.lim.buffer)
			break
		}
		n := min(s.lim.buffer-len(s.buf), len(data))
		s.buf = appendCapped(s.buf, data[:n], s.lim.buffer)
		data = data[n:]
		c := s.process(ts, s.buf, emit)
		s.consume(c)
		if len(data) == 0 {
			break
		}
		if c == 0 && n == 0 && s.st < stWait {
			// Unreachable by construction (a header section is cut at
			// lim.header <= lim.buffer); never spin.
			break
		}
	}
	s.flushPending(emit)
	s.shrink()
}

// StartParts implements decoder.PartStarter.
func (s *stream) StartParts(_ int64, emit decoder.Emit) {
	if s.st == stBody && s.m.split == nil && s.m.streamable && split.For(s.m.ctype, s.m.ce) != split.Window {
		s.startStream(emit)
	}
}

// Flush emits what a closed connection leaves; on Idle only pending garbage.
func (s *stream) Flush(ts int64, reason decoder.FlushReason, emit decoder.Emit) {
	s.flushPending(emit)
	if s.st == stDetached {
		return
	}
	s.drain(ts, emit)
	if reason != decoder.Close {
		s.startStream(emit)
		s.idleParts(emit)
		if s.st == stGarbage {
			s.flushGarbage(emit)
		}
		s.shrink()
		return
	}
	if s.st == stWait {
		// No answer came: what followed the request is HTTP after all.
		s.st, s.resumed = stIdle, true
		s.drain(ts, emit)
	}
	switch s.st {
	case stHeader:
		s.abandonHeader(emit)
	case stBody:
		// A body delimited by the close is complete now.
		if s.m.kind != bodyClose {
			s.m.incomplete = true
		}
		s.finish(emit)
	case stGarbage, stSwitched:
		s.addGarbage(ts, s.buf, emit)
	}
	s.flushGarbage(emit)
	s.flushPending(emit)
	s.reset()
}

// Gap records that n bytes were lost before the next Feed.
func (s *stream) Gap(n uint64) {
	if n == 0 {
		return
	}
	if s.resp {
		// Responses were lost with the bytes: the request queue no longer
		// says which request the next response answers.
		s.conn.forget()
	}
	switch s.st {
	case stIdle:
		s.buf = s.buf[:0]
		return
	case stHeader:
		s.abandonHeader(nil)
	case stBody:
		m := &s.m
		m.incomplete = true
		inFrame := m.kind == bodyLength || (m.kind == bodyChunked && m.chunk == chunkData)
		switch {
		case m.kind == bodyClose:
			return
		case inFrame && n < m.remain:
			// The loss is inside the body: skip it and stay in frame.
			m.remain -= n
			return
		case inFrame && n == m.remain:
			m.remain = 0
			if m.kind == bodyChunked {
				m.chunk = chunkDataCR
				return
			}
			s.finish(nil)
			return
		}
		s.finish(nil)
	case stGarbage:
		s.addGarbage(s.gEnd, s.buf, nil)
		s.buf = s.buf[:0]
		s.flushGarbage(nil)
	case stWait:
		s.resync = true
		return
	default:
		return
	}
	if s.st < stWait {
		s.st, s.candAt0 = stGarbage, true
	}
}

// drain parses the input a request decoder kept while it waited for the
// answer to an Upgrade or CONNECT, once the answer let it resume.
func (s *stream) drain(ts int64, emit decoder.Emit) {
	if s.resumed && s.st < stWait {
		s.resumed = false
		s.consume(s.process(ts, s.buf, emit))
	}
}

// process parses in and returns how many bytes it consumed. It stops early
// only for an incomplete header section (or a possible message start, or a
// lone CR), which the caller keeps in buf, and when the stream stops
// parsing.
func (s *stream) process(ts int64, in []byte, emit decoder.Emit) int {
	off := 0
	for off < len(in) {
		b := in[off:]
		switch s.st {
		case stIdle:
			switch {
			case b[0] == '\n':
				off++
				continue
			case b[0] == '\r' && len(b) == 1:
				return off
			case b[0] == '\r' && b[1] == '\n':
				off += 2
				continue
			}
			if maybeStart(s.resp, b) {
				s.begin(ts)
			} else {
				s.lim.count(decoder.HTTP1StartLineInvalid)
				s.toGarbage(ts)
			}
		case stHeader:
			n := s.header(ts, b, emit)
			if n == 0 && s.st == stHeader {
				return off
			}
			off += n
		case stBody:
			off += s.body(ts, b, emit)
		case stGarbage:
			n := s.scanGarbage(ts, b, emit)
			if n == 0 && s.st == stGarbage {
				return off
			}
			off += n
		default:
			return off
		}
	}
	return off
}

// begin starts a message at the head of the input.
func (s *stream) begin(ts int64) {
	s.m.reset()
	s.m.start, s.m.end = ts, ts
	s.st = stHeader
	s.scan = 0
}

// toGarbage declares the head of the input not a message start.
func (s *stream) toGarbage(ts int64) {
	s.st = stGarbage
	s.candAt0, s.skip0 = false, true
	if !s.gHinted {
		s.gHint, s.gHinted = ts, true
	}
}

// scanGarbage moves bytes to the garbage until a candidate message start:
// a line start (or, for responses, "HTTP/1." anywhere) that maybeStart
// accepts.
func (s *stream) scanGarbage(ts int64, b []byte, emit decoder.Emit) int {
	next := -1 // cached position of the next httpPrefix
	if s.resp {
		from := 0
		if s.skip0 {
			from = 1
		}
		next = indexFrom(b, httpPrefix, from)
	}
	p := 0
	if !s.candAt0 && next != 0 {
		p = s.candidate(b, 0, &next)
	}
	s.candAt0, s.skip0 = false, false
	for p >= 0 && p < len(b) {
		if maybeStart(s.resp, b[p:]) {
			s.addGarbage(ts, b[:p], emit)
			s.begin(ts)
			return p
		}
		p = s.candidate(b, p, &next)
	}
	if p == len(b) {
		s.addGarbage(ts, b, emit)
		s.candAt0 = true
		return len(b)
	}
	// Keep a tail that may be the start of a status line cut by the read.
	keep := 0
	if s.resp {
		keep = prefixSuffix(b, httpPrefix)
	}
	s.addGarbage(ts, b[:len(b)-keep], emit)
	s.candAt0 = keep > 0
	return len(b) - keep
}

// candidate returns the next possible message start after p, or -1.
func (s *stream) candidate(b []byte, p int, next *int) int {
	q := -1
	if k := bytes.IndexByte(b[p:], '\n'); k >= 0 {
		q = p + k + 1
	}
	if *next >= 0 && *next <= p {
		*next = indexFrom(b, httpPrefix, p+1)
	}
	if *next >= 0 && (q < 0 || *next < q) {
		q = *next
	}
	return q
}

func indexFrom(b []byte, lit string, from int) int {
	if from >= len(b) {
		return -1
	}
	if k := bytes.Index(b[from:], []byte(lit)); k >= 0 {
		return from + k
	}
	return -1
}

// prefixSuffix returns the length of the longest proper prefix of lit that
// b ends with.
func prefixSuffix(b []byte, lit string) int {
	for k := min(len(lit)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == lit[:k] {
			return k
		}
	}
	return 0
}

// addGarbage appends p to the garbage, emitting a Raw message every
// lim.raw bytes.
func (s *stream) addGarbage(ts int64, p []byte, emit decoder.Emit) {
	for len(p) > 0 {
		if len(s.garbage) == 0 {
			s.gStart = ts
			if s.gHinted {
				s.gStart = s.gHint
			}
		}
		s.gHinted = false
		n := min(len(p), s.lim.raw-len(s.garbage))
		s.garbage = appendCapped(s.garbage, p[:n], s.lim.raw)
		s.gEnd = ts
		p = p[n:]
		if len(s.garbage) >= s.lim.raw {
			s.flushGarbage(emit)
		}
	}
}

func (s *stream) flushGarbage(emit decoder.Emit) {
	s.gHinted = false
	if len(s.garbage) == 0 {
		return
	}
	m := &decoder.Message{Type: decoder.Raw, Start: s.gStart, End: s.gEnd, Payload: s.garbage}
	s.garbage = nil
	s.deliver(m, emit)
}

// deliver emits m, or keeps it for the next Feed or Flush when there is no
// emit (Gap).
func (s *stream) deliver(m *decoder.Message, emit decoder.Emit) {
	if emit == nil {
		s.pending = append(s.pending, m)
		return
	}
	emit(m)
}

func (s *stream) flushPending(emit decoder.Emit) {
	for len(s.pending) > 0 {
		m := s.pending[0]
		s.pending[0] = nil
		s.pending = s.pending[1:]
		emit(m)
	}
	s.pending = nil
}

// hold keeps data for after a protocol decision, within lim.buffer.
func (s *stream) hold(data []byte) {
	if s.st == stDetached {
		return
	}
	n := min(s.lim.buffer-len(s.buf), len(data))
	s.buf = appendCapped(s.buf, data[:n], s.lim.buffer)
	if n < len(data) && s.st == stWait {
		s.resync = true
	}
}

// resume lets a request decoder waiting for an upgrade answer parse again.
func (s *stream) resume() {
	if s.st != stWait {
		s.resolved = true
		return
	}
	s.st, s.resumed = stIdle, true
	if s.resync {
		s.st, s.candAt0, s.resync = stGarbage, true, false
	}
}

// switchNow stops parsing: the connection speaks another protocol now.
func (s *stream) switchNow() {
	switch s.st {
	case stBody:
		s.m.incomplete = true
		s.finish(nil)
	case stGarbage:
		s.flushGarbage(nil)
	case stDetached:
		return
	}
	s.st = stSwitched
}

// appendCapped appends p to b growing b's capacity no further than limit
// (append alone may allocate up to twice what is asked). It appends all of
// p even past limit; callers bound len(p).
func appendCapped(b, p []byte, limit int) []byte {
	if need := len(b) + len(p); need > cap(b) {
		nb := make([]byte, len(b), max(need, min(max(2*cap(b), 512), limit)))
		copy(nb, b)
		b = nb
	}
	return append(b, p...)
}

func (s *stream) consume(c int) {
	switch {
	case c == 0:
	case c >= len(s.buf):
		s.buf = s.buf[:0]
	default:
		s.buf = s.buf[:copy(s.buf, s.buf[c:])]
	}
}

// shrink releases large buffers between messages.
func (s *stream) shrink() {
	if len(s.buf) == 0 && cap(s.buf) > keepCap {
		s.buf = nil
	}
}

// reset returns the stream to its initial state after the connection
// closed.
func (s *stream) reset() {
	s.buf, s.garbage, s.dec, s.hdr, s.fields = nil, nil, nil, nil, nil
	s.m = message{}
	s.st, s.scan, s.candAt0, s.skip0 = stIdle, 0, false, false
	s.resolved, s.resync, s.resumed, s.gHinted = false, false, false, false
}

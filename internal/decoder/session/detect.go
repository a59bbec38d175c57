package session

import (
	"bytes"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/http1"
	"github.com/tlstap/tlstap/internal/decoder/http2"
)

// mark is where a Feed's bytes start in a detection buffer.
type mark struct {
	ts  int64
	off int
}

// maxMarks bounds the Feed times kept for bytes under detection. Reads
// with the same time share a mark, and past the bound later reads are
// replayed with the last time kept: only a start line trickling in over
// dozens of reads loses time precision.
const maxMarks = 32

// eagerTests is how much of a direction's start the detection tests
// examine at every Feed. Past it they run only when the bytes could have
// changed the answer cheaply to tell (a line end) or the buffer doubled:
// rerunning them per Feed would cost quadratic time on a long start line
// fed a byte at a time. A test's answer on a prefix never changes once
// given, so running later decides the same; settle runs the tests before
// anything whose outcome depends on the decision.
const eagerTests = 1 << 10

// test runs the detection tests on the bytes buffered for d.
func (s *Session) test(d *direction) (proto, side, bool) {
	p, sd, ok := classify(d.pend[:min(len(d.pend), s.limit)], d.h1only)
	if !ok && len(d.pend) >= s.limit {
		return protoRaw, 0, true
	}
	return p, sd, ok
}

// whyRaw names why the detection tests say d is raw: every test rejected its
// bytes, or the buffer filled while one still wanted more.
func (s *Session) whyRaw(d *direction) decoder.Reason {
	if _, _, ok := classify(d.pend[:min(len(d.pend), s.limit)], d.h1only); !ok {
		return decoder.SessionBufferFull
	}
	return decoder.SessionNoProtocol
}

// settle decides direction i if the bytes it holds already do.
func (s *Session) settle(i int) {
	d := &s.dirs[i]
	if d.proto != protoNone || len(d.pend) == 0 {
		return
	}
	d.tested = len(d.pend)
	if p, sd, ok := s.test(d); ok {
		why := decoder.NoReason
		if p == protoRaw {
			why = s.whyRaw(d)
		}
		s.decide(i, p, sd, why)
	}
}

// detect decides the direction's protocol when the bytes allow, buffering
// them until then.
func (s *Session) detect(i int, ts int64, data []byte) {
	d, peer := &s.dirs[i], &s.dirs[1-i]
	switch {
	case s.opts.RawOnly:
		s.decide(i, protoRaw, 0, decoder.NoReason)
	case peer.proto == protoHTTP1 || peer.proto == protoHTTP2:
		s.decide(i, peer.proto, 1-peer.side, decoder.NoReason)
	case len(d.pend) == 0:
		// The common case: the first read decides, nothing is copied.
		p, sd, ok := classify(data[:min(len(data), s.limit)], d.h1only)
		if !ok && len(data) < s.limit {
			d.pend = append(d.pend, data...)
			d.marks = append(d.marks, mark{ts, 0})
			d.tested = len(d.pend)
			return
		}
		why := decoder.SessionNoProtocol
		if !ok {
			p, why = protoRaw, decoder.SessionBufferFull
		}
		s.decide(i, p, sd, why)
	default:
		if last := d.marks[len(d.marks)-1]; last.ts != ts && len(d.marks) < maxMarks {
			d.marks = append(d.marks, mark{ts, len(d.pend)})
		}
		d.pend = append(d.pend, data...)
		n := len(d.pend)
		if n > eagerTests && n < 2*d.tested && n < s.limit && bytes.IndexByte(data, '\n') < 0 {
			return
		}
		s.settle(i)
		s.switchIfUpgraded(ts)
		return
	}
	if d.dec != nil {
		d.dec.Feed(ts, data, d.emit)
	}
	s.switchIfUpgraded(ts)
}

// side is which end a direction is: for HTTP/1 whether it carries requests
// or responses, for HTTP/2 client or server.
type side uint8

const (
	client side = iota
	server
)

// detectTests are the detection tests in the order they are asked.
var detectTests = [...]struct {
	fn func([]byte) (match, needMore bool)
	p  proto
	sd side
}{
	{http2.IsClientPreface, protoHTTP2, client},
	{http2.IsServerStart, protoHTTP2, server},
	{http1.IsRequestStart, protoHTTP1, client},
	{http1.IsResponseStart, protoHTTP1, server},
}

// classify asks the detection tests in order (only the HTTP/1 ones if
// h1only). ok is false while a test needs more bytes.
func classify(b []byte, h1only bool) (p proto, sd side, ok bool) {
	tests := detectTests[:]
	if h1only {
		tests = tests[2:]
	}
	for _, t := range tests {
		match, more := t.fn(b)
		switch {
		case match:
			return t.p, t.sd, true
		case more:
			return protoNone, 0, false
		}
	}
	return protoRaw, 0, true
}

// held are bytes held during detection and the times of their Feeds.
type held struct {
	pend  []byte
	marks []mark
}

// replay feeds the bytes to d's decoder with their original times.
func (h held) replay(d *direction) {
	for k, mk := range h.marks {
		end := len(h.pend)
		if k+1 < len(h.marks) {
			end = h.marks[k+1].off
		}
		if mk.off < end {
			d.dec.Feed(mk.ts, h.pend[mk.off:end], d.emit)
		}
	}
}

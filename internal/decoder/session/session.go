package session

import (
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/http1"
)

// Emit receives each completed message with the direction it travelled.
type Emit func(dir capture.Direction, m *decoder.Message)

// Options configure a session.
type Options struct {
	// Limits bound every decoder of the session; zero fields take their
	// decoder.DefaultLimits value. Detection holds at most MaxHeaderBytes
	// (and MaxBufferBytes) of a direction's first bytes.
	Limits decoder.Limits
	// RawOnly disables protocol detection (every direction is raw).
	RawOnly bool
}

// proto is what a direction is decoded as.
type proto uint8

const (
	protoNone proto = iota // still detecting
	protoRaw
	protoHTTP1
	protoHTTP2
	protoWebSocket
)

var protoNames = [...]string{"", "raw", "http1", "http2", "websocket"}

// direction is the state of one direction.
type direction struct {
	proto proto
	dec   decoder.Decoder
	// side is the end whose bytes these are, for HTTP/1 and HTTP/2.
	side side
	// h1only: re-detection of a raw direction tests HTTP/1 starts only.
	h1only bool
	// recheck: the raw decoder was flushed idle; test the next byte.
	recheck bool
	// gap: gapN bytes were lost while detecting; resolved when emit is
	// at hand.
	gap  bool
	gapN uint64
	// pend holds the bytes under detection, marks their Feed times.
	pend  []byte
	marks []mark
	// tested is len(pend) when the detection tests last ran.
	tested int
	// emit adapts decoder emits to the session's, checking for upgrades.
	emit decoder.Emit
}

// Session decodes both directions of one connection.
type Session struct {
	opts  Options
	limit int // detection buffer cap
	dirs  [2]direction
	h1    *http1.Conn
	// h1req is the index of the HTTP/1 request direction.
	h1req int
	// upgrade is set by an emitted HTTP/1 response that switches
	// protocols; the switch happens once its decoder returns.
	upgrade *decoder.Upgrade
	out     Emit
}

// New returns a session with no protocol detected yet.
func New(opts Options) *Session {
	def := decoder.DefaultLimits()
	hdr, buf := opts.Limits.MaxHeaderBytes, opts.Limits.MaxBufferBytes
	if hdr <= 0 {
		hdr = def.MaxHeaderBytes
	}
	if buf <= 0 {
		buf = def.MaxBufferBytes
	}
	// A start line fits a header section; detection holds no more.
	s := &Session{opts: opts, limit: min(hdr, buf)}
	for i := range s.dirs {
		dir := capture.Direction(i)
		s.dirs[i].emit = func(m *decoder.Message) {
			if m.Upgrade != nil && s.dirs[i].proto == protoHTTP1 {
				s.upgrade = m.Upgrade
			}
			s.out(dir, m)
		}
	}
	return s
}

// Protocol reports what dir is decoded as: "" while detecting, "raw",
// "http1", "http2" or "websocket".
func (s *Session) Protocol(dir capture.Direction) string {
	d := &s.dirs[dir&1]
	if d.proto == protoNone && len(d.pend) > 0 {
		// Tests may be due (see detect); report what they would say.
		if p, _, ok := s.test(d); ok {
			return protoNames[p]
		}
	}
	return protoNames[d.proto]
}

// Feed consumes data that travelled in dir.
func (s *Session) Feed(dir capture.Direction, ts int64, data []byte, emit Emit) {
	if len(data) == 0 {
		return
	}
	s.out = emit
	defer func() { s.out = nil }()
	i := int(dir & 1)
	d := &s.dirs[i]
	if d.gap {
		s.afterGap(i)
	}
	if d.recheck {
		d.recheck = false
		d.proto, d.dec, d.h1only = protoNone, nil, true
	}
	if d.proto == protoNone {
		s.detect(i, ts, data)
		return
	}
	d.dec.Feed(ts, data, d.emit)
	s.switchIfUpgraded(ts)
}

// Flush flushes both directions, Read first. A direction still being
// detected is decided raw: what it holds is emitted, not kept waiting for
// bytes that may never come.
func (s *Session) Flush(ts int64, reason decoder.FlushReason, emit Emit) {
	s.out = emit
	defer func() { s.out = nil }()
	for i := range s.dirs {
		d := &s.dirs[i]
		if d.gap {
			s.afterGap(i)
		}
		if d.proto == protoNone && len(d.pend) > 0 {
			if s.settle(i); d.proto == protoNone {
				s.decide(i, protoRaw, 0, decoder.SessionUndecidedFlush)
			}
		}
		if d.dec == nil {
			continue
		}
		d.dec.Flush(ts, reason, d.emit)
		s.switchIfUpgraded(ts)
		if reason == decoder.Idle && d.proto == protoRaw && !s.opts.RawOnly {
			d.recheck = true
		}
	}
}

// StartParts lets each direction's decoder emit the heads of messages whose
// body is still arriving (decoder.PartStarter); the pipeline calls it once it
// has decoded everything captured so far.
func (s *Session) StartParts(ts int64, emit Emit) {
	s.out = emit
	defer func() { s.out = nil }()
	for i := range s.dirs {
		if ps, ok := s.dirs[i].dec.(decoder.PartStarter); ok {
			ps.StartParts(ts, s.dirs[i].emit)
		}
	}
}

// Gap tells dir's decoder that n bytes were lost.
func (s *Session) Gap(dir capture.Direction, n uint64) {
	d := &s.dirs[dir&1]
	switch {
	case d.dec != nil:
		d.dec.Gap(n)
	case len(d.pend) > 0:
		// Gap cannot emit, and deciding may; the next Feed or Flush
		// resolves it.
		d.gap = true
		d.gapN += n
	}
}

// afterGap resolves a gap that hit a direction under detection: if the
// bytes before it decide the protocol, its decoder gets the gap; otherwise
// what follows is the middle of something unknown, and the direction is
// raw.
func (s *Session) afterGap(i int) {
	d := &s.dirs[i]
	n := d.gapN
	d.gap, d.gapN = false, 0
	if s.settle(i); d.proto == protoNone {
		s.decide(i, protoRaw, 0, decoder.SessionUndecidedGap)
		return
	}
	d.dec.Gap(n)
}

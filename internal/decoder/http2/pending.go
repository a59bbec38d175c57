package http2

import "github.com/tlstap/tlstap/internal/decoder"

// pending buffers bytes while the decoder cannot parse frames yet: at the
// start, until the preface or first SETTINGS is seen, and after a gap,
// until frame boundaries are found again.
type pending struct {
	buf []byte
	// marks record when each chunk arrived, so replayed frames keep their
	// timestamps. Past maxMarks, chunks share the last mark's time.
	marks  []mark
	lastTs int64
	// base is where the search for frame boundaries starts: bytes before
	// it came before a gap and cannot be followed across it.
	base int
	// Offsets in [base, next) are classified; cands are those of them
	// that need more bytes to decide, in ascending order.
	next  int
	cands []cand
}

type mark struct {
	off int
	ts  int64
}

type cand struct{ off, need int }

const (
	maxMarks = 256
	maxCands = 64
)

func (p *pending) add(ts int64, data []byte) {
	if len(p.marks) < maxMarks {
		p.marks = append(p.marks, mark{len(p.buf), ts})
	}
	p.buf = append(p.buf, data...)
	p.lastTs = ts
}

func (p *pending) firstTs() int64 {
	if len(p.marks) == 0 {
		return p.lastTs
	}
	return p.marks[0].ts
}

// gap starts the boundary search after the bytes buffered so far.
func (p *pending) gap() {
	p.base, p.next = len(p.buf), len(p.buf)
	p.cands = p.cands[:0]
}

// reset forgets everything; buf is not reused, a message may own it.
func (p *pending) reset() { *p = pending{} }

// align looks for the first frame boundary at or after base. A boundary is
// two consecutive plausible frame headers or, at base, which starts a
// capture chunk, one plausible frame that ends exactly where the data does.
func (p *pending) align(max uint32) (int, bool) {
	b := p.buf
	for i := 0; i < len(p.cands); {
		c := &p.cands[i]
		if len(b) < c.need && c.off != p.base {
			i++
			continue
		}
		need, r := alignedAt(b, c.off, max, c.off == p.base)
		switch r {
		case alignYes:
			return c.off, true
		case alignNo:
			p.cands = append(p.cands[:i], p.cands[i+1:]...)
		default:
			c.need = need
			i++
		}
	}
	for ; p.next+frameHeaderLen <= len(b); p.next++ {
		need, r := alignedAt(b, p.next, max, p.next == p.base)
		switch r {
		case alignYes:
			return p.next, true
		case alignMore:
			if len(p.cands) < maxCands {
				p.cands = append(p.cands, cand{p.next, need})
			}
		}
	}
	return 0, false
}

type startKind uint8

const (
	startWait   startKind = iota
	startClean            // the connection's first bytes
	startMiddle           // somewhere later
)

// checkStart tells a connection's start from its middle. It returns the
// offset of the first frame on a clean start.
func (d *Decoder) checkStart() (startKind, int) {
	b := d.pend.buf
	if d.side == Client {
		match, more := IsClientPreface(b)
		switch {
		case match:
			return startClean, len(clientPreface)
		case more:
			return startWait, 0
		}
		return startMiddle, 0
	}
	// Only the header decides, at any chunking; the settings are checked
	// as the frame is parsed.
	match, more := IsServerStart(b[:min(len(b), frameHeaderLen)])
	switch {
	case len(b) >= frameHeaderLen && (match || more):
		return startClean, 0
	case len(b) < frameHeaderLen && more:
		return startWait, 0
	}
	return startMiddle, 0
}

// buffer holds data until frames can be parsed, then replays it.
func (d *Decoder) buffer(ts int64, data []byte) {
	d.pend.add(ts, data)
	if d.mode == modeStart {
		kind, off := d.checkStart()
		switch kind {
		case startWait:
			return
		case startClean:
			d.replay(off, off)
			return
		}
		// Picking up a connection in the middle: HPACK state is unknown.
		d.mode = modeResync
		d.resetHPACK()
	}
	limit := uint32(min(maxFrameSize, max(d.lim.MaxBufferBytes-2*frameHeaderLen, 0)))
	if off, ok := d.pend.align(limit); ok {
		d.stats.Resyncs++
		d.replay(off, 0)
		return
	}
	if len(d.pend.buf) > d.lim.MaxBufferBytes {
		d.fail(ts, decoder.HTTP2ResyncBufferFull, nil, d.pend.buf)
	}
}

// replay parses the buffered bytes from off on as frames. Bytes in
// [from, off) are emitted raw: whatever came before the first frame
// boundary found.
func (d *Decoder) replay(off, from int) {
	p := d.pend
	d.pend.reset()
	if off > from {
		d.emitRawPending(p, p.buf[from:off:off])
	}
	d.mode = modeFrames
	for i, mk := range p.marks {
		end := len(p.buf)
		if i+1 < len(p.marks) {
			end = p.marks[i+1].off
		}
		lo := max(mk.off, off)
		if lo >= end {
			continue
		}
		if d.mode == modeFrames {
			d.frames(mk.ts, p.buf[lo:end])
		} else {
			d.toRaw(mk.ts, p.buf[lo:end])
		}
	}
}

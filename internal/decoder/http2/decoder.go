package http2

import (
	"bytes"

	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/raw"
)

// Side says which end of the connection sent the frames a decoder sees.
type Side int

const (
	// Client frames start with the connection preface and carry requests.
	Client Side = iota
	// Server frames start with SETTINGS and carry responses and pushes.
	Server
)

func (s Side) String() string {
	if s == Server {
		return "server"
	}
	return "client"
}

type mode uint8

const (
	// modeStart waits for the preface (client) or the first SETTINGS
	// (server) to tell a connection's start from its middle.
	modeStart mode = iota
	modeFrames
	// modeResync buffers until frame boundaries are found again.
	modeResync
	// modeRaw is final: everything goes to the raw decoder.
	modeRaw
)

// phase is where the frame parser is within the current frame.
type phase uint8

const (
	phaseHeader  phase = iota // the 9-byte frame header
	phasePrefix               // fixed fields before the content: pad length, priority, promised stream, ...
	phaseContent              // DATA, header block fragment, settings, debug data
	phasePad                  // padding, skipped
)

// Stats counts what a decoder could not decode as whole HTTP/2 messages.
type Stats struct {
	// Evicted streams were emitted Incomplete because Limits.MaxStreams
	// other streams were open.
	Evicted uint64
	// Gaps is the number of Gap calls; Resyncs the number of times frame
	// boundaries were found again after one (or after a start in the
	// middle of a connection).
	Gaps, Resyncs uint64
	// HPACKFailures counts header blocks that referred to HPACK state
	// lost in a gap, or failed to decode after one; their streams are
	// emitted Incomplete, with the fields that did decode.
	HPACKFailures uint64
	// RawBytes were handed to the raw decoder: skipped while resyncing, or
	// everything after an unrecoverable framing error.
	RawBytes uint64
}

// Decoder decodes one direction of an HTTP/2 connection. The zero value is
// not usable; call New.
type Decoder struct {
	side Side
	lim  decoder.Limits
	mode mode
	// emit is the Emit of the running Feed or Flush call.
	emit decoder.Emit

	// Frame parser.
	phase   phase
	hdr     [frameHeaderLen]byte
	hdrN    int
	fh      frameHeader
	frameTs int64 // when the current frame's first byte arrived
	pre     [9]byte
	preN    int
	preLen  int
	content uint32 // content bytes left in the frame
	pad     uint32 // padding bytes left in the frame
	set     [6]byte
	setN    int
	cur     *stream // the DATA frame's stream, nil if untracked

	// Header block in progress (HEADERS or PUSH_PROMISE, then CONTINUATION).
	blockOpen      bool
	blockStream    uint32
	block          *stream
	blockEndStream bool
	blockFailed    bool
	// blockLost: a field of the block referred to a lost table entry.
	blockLost bool

	hpack *hpack.Decoder
	// tainted: the HPACK table may lack entries (the decoder started in
	// the middle of the connection or lost bytes). Decode errors then
	// restart HPACK rather than end decoding.
	tainted bool

	// open holds the streams in flight, oldest first.
	open []*stream
	last *stream
	free []*stream

	pend  pending
	raw   *raw.Decoder
	stats Stats

	// peer decodes the other direction (see Pair); peerResets are streams
	// it reset, waiting for this decoder's next call to be emitted.
	peer       *Decoder
	peerResets []*stream

	// now is the time of the running Feed or Flush; waiting counts
	// streams whose head may start streaming at the next idle flush.
	now     int64
	waiting int
}

// Pair links the decoders of a connection's two directions, so that a
// RST_STREAM one side sends also ends the stream on the other side: the
// response to a request the client cancelled, the upload the server
// refused. The other side's message is emitted Incomplete, with End the
// time of the reset, at that side's next Feed or Flush (a decoder emits
// only from its own calls). Paired decoders share state: call them from one
// goroutine, as the pipeline does. Anything but a client and a server
// decoder from New is ignored.
func Pair(a, b decoder.Decoder) {
	x, ok := a.(*Decoder)
	y, ok2 := b.(*Decoder)
	if !ok || !ok2 || x == y || x.side == y.side {
		return
	}
	x.peer, y.peer = y, x
}

// peerReset ends stream id, reset by the other side at ts.
func (d *Decoder) peerReset(id uint32, ts int64) {
	s := d.find(id)
	if s == nil || s == d.block {
		// Mid header block the stream must live to the block's end;
		// it is then emitted, or stays open until the connection ends.
		return
	}
	if s == d.cur {
		d.cur = nil // the rest of the DATA frame is dropped
	}
	d.remove(s)
	s.incomplete, s.end = true, ts
	d.peerResets = append(d.peerResets, s)
}

func (d *Decoder) emitPeerResets() {
	for i, s := range d.peerResets {
		d.peerResets[i] = nil
		d.emitStream(s)
	}
	d.peerResets = d.peerResets[:0]
}

// New returns a decoder for the frames one side of a connection sends.
// Zero fields of l take their decoder.DefaultLimits value.
func New(side Side, l decoder.Limits) decoder.Decoder {
	return newDecoder(side, l)
}

func newDecoder(side Side, l decoder.Limits) *Decoder {
	def := decoder.DefaultLimits()
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = def.MaxBodyBytes
	}
	if l.MaxBufferBytes <= 0 {
		l.MaxBufferBytes = def.MaxBufferBytes
	}
	if l.MaxStreams <= 0 {
		l.MaxStreams = def.MaxStreams
	}
	if l.MaxHPACKTable == 0 {
		l.MaxHPACKTable = def.MaxHPACKTable
	}
	if l.RawFlushBytes <= 0 {
		l.RawFlushBytes = def.RawFlushBytes
	}
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = def.MaxPartBytes
	}
	if l.StreamAfter <= 0 {
		l.StreamAfter = def.StreamAfter
	}
	d := &Decoder{side: side, lim: l}
	d.hpack = hpack.NewDecoder(initialHeaderTableSize, d.onField)
	d.initHPACK(initialHeaderTableSize)
	return d
}

// initHPACK configures d.hpack with a table of size bytes.
func (d *Decoder) initHPACK(size uint32) {
	d.hpack.SetMaxDynamicTableSize(size)
	// The encoder of this direction is bounded by SETTINGS the other
	// direction sent, which this decoder does not see: accept any size up
	// to the limit.
	d.hpack.SetAllowedMaxDynamicTableSize(max(d.lim.MaxHPACKTable, size))
	d.hpack.SetMaxStringLength(d.lim.MaxHeaderBytes)
}

// resetHPACK replaces the HPACK state after it was lost. The encoder's
// table holds entries this decoder never saw, at most MaxHPACKTable/32 of
// them (an entry costs 32 bytes over its strings). The new table starts
// full of that many placeholders, entries with an empty name no real field
// has, and at the largest allowed size. Every entry added from now on is
// one the encoder added, at the index the encoder uses; the placeholders
// are the oldest, so they are evicted first and never before the encoder
// evicts a real entry. A field then decodes either right or, when it
// refers to an entry from before, as a placeholder, which onField catches.
// Unlike failing the block, that keeps the rest of the block, and the
// entries it adds, decodable.
func (d *Decoder) resetHPACK() {
	d.hpack = hpack.NewDecoder(d.lim.MaxHPACKTable, d.onField)
	d.initHPACK(d.lim.MaxHPACKTable)
	d.tainted = true
	// Literal with incremental indexing, new name "", value "".
	fill := bytes.Repeat([]byte{0x40, 0, 0}, int(d.lim.MaxHPACKTable/32))
	d.hpack.SetEmitEnabled(false)
	_, err := d.hpack.Write(fill)
	if err == nil {
		err = d.hpack.Close()
	}
	d.hpack.SetEmitEnabled(true)
	if err != nil {
		// Cannot happen with the bytes above; an empty table is the
		// safe fallback, as references to the lost entries then fail.
		d.hpack = hpack.NewDecoder(d.lim.MaxHPACKTable, d.onField)
		d.initHPACK(d.lim.MaxHPACKTable)
	}
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() Stats { return d.stats }

// Feed consumes the next bytes the side sent, received at ts.
func (d *Decoder) Feed(ts int64, data []byte, emit decoder.Emit) {
	if len(data) == 0 {
		return
	}
	d.emit, d.now = emit, ts
	d.emitPeerResets()
	switch d.mode {
	case modeRaw:
		d.toRaw(ts, data)
	case modeStart, modeResync:
		d.buffer(ts, data)
	default:
		d.frames(ts, data)
	}
	d.emit = nil
}

// StartParts implements decoder.PartStarter.
func (d *Decoder) StartParts(ts int64, emit decoder.Emit) {
	if d.mode == modeRaw || d.waiting == 0 {
		return
	}
	d.emit, d.now = emit, ts
	defer func() { d.emit = nil }()
	d.waiting = 0
	for _, s := range d.open {
		switch {
		case !s.streamable || s.split != nil:
		case s != d.block && framed(s):
			d.startStream(s)
		default:
			d.waiting++
		}
	}
}

// Flush emits nothing on Idle: HTTP/2 messages end with END_STREAM, not with
// silence. On Close every stream in flight is emitted Incomplete and bytes
// still waiting for a frame boundary are emitted raw.
func (d *Decoder) Flush(ts int64, reason decoder.FlushReason, emit decoder.Emit) {
	d.emit, d.now = emit, ts
	defer func() { d.emit = nil }()
	d.emitPeerResets()
	if d.mode == modeRaw {
		d.raw.Flush(ts, reason, emit)
		return
	}
	if reason != decoder.Close {
		d.startStreams()
		d.idleParts()
		return
	}
	d.closeAll(ts)
	if len(d.pend.buf) > 0 {
		p := d.pend
		d.pend.reset()
		d.emitRawPending(p, p.buf)
	}
}

// Gap marks the streams in flight Incomplete and makes the decoder look for
// frame boundaries again in what follows, with a fresh HPACK table.
func (d *Decoder) Gap(n uint64) {
	if n == 0 {
		return
	}
	d.stats.Gaps++
	switch d.mode {
	case modeRaw:
		d.raw.Gap(n)
		return
	case modeFrames:
		for _, s := range d.open {
			s.incomplete = true
		}
		if d.block != nil {
			d.block.incomplete = true
			if d.block.promise {
				// The promise is not in open; it would be lost.
				d.open = append(d.open, d.block)
			}
		}
		d.phase, d.hdrN, d.cur = phaseHeader, 0, nil
		d.endBlockState()
	}
	d.resetHPACK()
	d.mode = modeResync
	d.pend.gap()
}

// frames runs the frame parser over p.
func (d *Decoder) frames(ts int64, p []byte) {
	for len(p) > 0 && d.mode == modeFrames {
		switch d.phase {
		case phaseHeader:
			if d.hdrN == 0 {
				d.frameTs = ts
				if len(p) >= frameHeaderLen {
					// Common case: the whole header is here. Keep a copy
					// for a failure after it.
					copy(d.hdr[:], p)
					d.fh = parseFrameHeader(p)
					if why := d.beginFrame(ts); why != decoder.NoReason {
						d.fail(ts, why, nil, p)
						return
					}
					p = p[frameHeaderLen:]
					break
				}
			}
			n := copy(d.hdr[d.hdrN:], p)
			d.hdrN += n
			p = p[n:]
			if d.hdrN < frameHeaderLen {
				return
			}
			d.hdrN = 0
			d.fh = parseFrameHeader(d.hdr[:])
			if why := d.beginFrame(ts); why != decoder.NoReason {
				d.fail(ts, why, d.hdr[:], p)
				return
			}
		case phasePrefix:
			n := copy(d.pre[d.preN:d.preLen], p)
			d.preN += n
			p = p[n:]
			if d.preN < d.preLen {
				return
			}
			if why := d.afterPrefix(ts); why != decoder.NoReason {
				d.fail(ts, why, append(d.hdr[:], d.pre[:d.preLen]...), p)
				return
			}
		case phaseContent:
			n := min(int(d.content), len(p))
			if why := d.onContent(p[:n]); why != decoder.NoReason {
				d.fail(ts, why, nil, p)
				return
			}
			d.content -= uint32(n)
			p = p[n:]
		case phasePad:
			n := min(int(d.pad), len(p))
			d.pad -= uint32(n)
			p = p[n:]
		}
		if why := d.advance(ts); why != decoder.NoReason {
			d.fail(ts, why, nil, p)
			return
		}
	}
}

// advance moves past finished phases and ends the frame when nothing of it
// is left to read.
func (d *Decoder) advance(ts int64) decoder.Reason {
	switch d.phase {
	case phaseHeader, phasePrefix:
		return decoder.NoReason
	case phaseContent:
		if d.content > 0 {
			return decoder.NoReason
		}
		d.phase = phasePad
		fallthrough
	case phasePad:
		if d.pad > 0 {
			return decoder.NoReason
		}
	}
	d.phase = phaseHeader
	return d.endFrame(ts)
}

// beginFrame checks the frame header in d.fh and sets up its prefix.
func (d *Decoder) beginFrame(ts int64) decoder.Reason {
	h := d.fh
	if h.typ <= frameContinuation {
		if !streamOK(h.typ, h.stream) {
			return streamReasons[h.typ]
		}
		if !lengthOK(h) {
			return lengthReasons[h.typ]
		}
	}
	// Only CONTINUATION of the same stream may follow a header block
	// fragment without END_HEADERS (RFC 9113 §6.10).
	switch {
	case d.blockOpen && (h.typ != frameContinuation || h.stream != d.blockStream):
		return decoder.HTTP2FrameContinuationExpected
	case !d.blockOpen && h.typ == frameContinuation:
		return decoder.HTTP2FrameContinuationUnexpected
	}
	d.preN, d.preLen, d.pad, d.setN = 0, 0, 0, 0
	switch h.typ {
	case frameData, frameHeaders, framePushPromise:
		if h.has(flagPadded) {
			d.preLen = 1
		}
		if h.typ == frameHeaders && h.has(flagPriority) {
			d.preLen += 5
		}
		if h.typ == framePushPromise {
			if d.side == Client {
				return decoder.HTTP2FramePushPromiseFromClient
			}
			d.preLen += 4
		}
	case framePriority, frameRSTStream, framePing, frameWindowUpdate:
		d.preLen = int(h.length)
	case frameGoAway:
		d.preLen = 8
	}
	d.content = h.length - uint32(d.preLen)
	d.phase = phaseContent
	if d.preLen > 0 {
		d.phase = phasePrefix
		return decoder.NoReason
	}
	return d.afterPrefix(ts)
}

// afterPrefix acts on the fixed fields once they are in d.pre and starts the
// frame's content.
func (d *Decoder) afterPrefix(ts int64) decoder.Reason {
	h := d.fh
	d.phase = phaseContent
	switch h.typ {
	case frameData:
		if !d.padding() {
			return decoder.HTTP2FramePadTooLong
		}
		d.cur = d.find(h.stream)
	case frameHeaders:
		if !d.padding() {
			return decoder.HTTP2FramePadTooLong
		}
		if d.side == Client && h.stream%2 == 0 {
			return decoder.HTTP2FrameHeadersStreamEven
		}
		s := d.find(h.stream)
		if s == nil {
			s = d.newStream(h.stream, d.frameTs, ts)
		}
		d.beginBlock(s, h.stream, h.has(flagEndStream))
	case framePushPromise:
		if !d.padding() {
			return decoder.HTTP2FramePadTooLong
		}
		off := d.preLen - 4
		id := uint32(d.pre[off]&0x7f)<<24 | uint32(d.pre[off+1])<<16 | uint32(d.pre[off+2])<<8 | uint32(d.pre[off+3])
		if id == 0 || id%2 != 0 {
			return decoder.HTTP2FramePushPromiseStreamInvalid
		}
		s := d.alloc()
		s.id, s.typ, s.start, s.promise = id, decoder.HTTP2Request, d.frameTs, true
		d.beginBlock(s, h.stream, false)
	}
	return decoder.NoReason
}

// padding takes the pad length from the prefix of a PADDED frame.
func (d *Decoder) padding() bool {
	if !d.fh.has(flagPadded) {
		return true
	}
	n := uint32(d.pre[0])
	if n > d.content {
		return false
	}
	d.content -= n
	d.pad = n
	return true
}

// onContent consumes content bytes of the current frame.
func (d *Decoder) onContent(p []byte) decoder.Reason {
	switch d.fh.typ {
	case frameData:
		switch s := d.cur; {
		case s == nil:
		case s.split != nil:
			d.streamData(s, p)
		case s.streamable && (len(s.body)+len(p) >= d.lim.MaxPartBytes || d.now-s.start >= int64(d.lim.StreamAfter)):
			// Too much, or too long, to be a message that completes at once.
			d.startStream(s)
			d.streamData(s, p)
		default:
			s.addBody(p, d.lim.MaxBodyBytes, d.now)
		}
	case frameHeaders, frameContinuation, framePushPromise:
		return d.fragment(p)
	case frameSettings:
		for len(p) > 0 {
			n := copy(d.set[d.setN:], p)
			d.setN += n
			p = p[n:]
			if d.setN < len(d.set) {
				break
			}
			d.setN = 0
			b := d.set
			if !validSetting(uint16(b[0])<<8|uint16(b[1]), uint32(b[2])<<24|uint32(b[3])<<16|uint32(b[4])<<8|uint32(b[5])) {
				return decoder.HTTP2FrameSettingsValue
			}
		}
	}
	return decoder.NoReason
}

// endFrame acts on a frame once all of it has been read.
func (d *Decoder) endFrame(ts int64) decoder.Reason {
	h := d.fh
	switch h.typ {
	case frameData:
		if s := d.cur; s != nil && h.has(flagEndStream) {
			d.finish(s, ts)
		}
		d.cur = nil
	case frameHeaders, framePushPromise, frameContinuation:
		if h.has(flagEndHeaders) {
			return d.endBlock(ts)
		}
		d.blockOpen = true
	case frameRSTStream:
		if s := d.find(h.stream); s != nil {
			s.incomplete = true
			d.finish(s, ts)
		}
		if d.peer != nil {
			d.peer.peerReset(h.stream, ts)
		}
	}
	return decoder.NoReason
}

// fail switches the direction to raw for good after a framing error,
// counted as why: the streams in flight are emitted Incomplete and hdr
// (what of the failing frame was consumed already, if kept) and rest go to
// the raw decoder.
func (d *Decoder) fail(ts int64, why decoder.Reason, hdr, rest []byte) {
	d.lim.CountError(why)
	d.closeAll(ts)
	d.mode = modeRaw
	d.raw = raw.New(d.lim.RawFlushBytes)
	// The raw decoder copies what it is fed: hdr may alias d.hdr.
	d.toRaw(ts, hdr)
	d.toRaw(ts, rest)
	d.pend.reset()
}

func (d *Decoder) toRaw(ts int64, p []byte) {
	if len(p) == 0 {
		return
	}
	d.stats.RawBytes += uint64(len(p))
	d.raw.Feed(ts, p, d.emit)
}

// emitRawPending emits b, bytes of p the caller gives up, as one raw
// message.
func (d *Decoder) emitRawPending(p pending, b []byte) {
	d.stats.RawBytes += uint64(len(b))
	d.emit(&decoder.Message{Type: decoder.Raw, Start: p.firstTs(), End: p.lastTs, Payload: b})
}

// closeAll emits every stream in flight as Incomplete, oldest first.
func (d *Decoder) closeAll(ts int64) {
	if d.block != nil && d.block.promise {
		d.block.incomplete = true
		d.open = append(d.open, d.block)
	}
	d.endBlockState()
	for len(d.open) > 0 {
		s := d.open[0]
		s.incomplete = true
		d.finish(s, ts)
	}
	d.cur = nil
}

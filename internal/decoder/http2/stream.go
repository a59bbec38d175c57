package http2

import (
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/decoder"
	bodysplit "github.com/tlstap/tlstap/internal/decoder/internal/split"
)

// stream is one message in flight: a request or response, or the request a
// PUSH_PROMISE carries.
type stream struct {
	id         uint32
	typ        decoder.Type
	promise    bool
	start, end int64
	// fields of every header block, in order; blocks[i] is where block i
	// starts (1xx heads, the head, trailers).
	fields   []hpack.HeaderField
	blocks   []int
	hdrBytes int
	body     []byte
	// bodyLen counts every DATA byte, kept or not.
	bodyLen uint64
	// bodyCut and headerCut: a limit dropped part of the body or fields.
	bodyCut, headerCut bool
	incomplete         bool

	// Streaming (see parts.go): streamable once the head is complete,
	// headBlocks is the number of blocks up to and including the head,
	// split is set once the head was emitted.
	streamable bool
	headBlocks int
	head       head
	split      *bodysplit.Splitter
	partStart  int64
	bodyStart  int64
}

// maxPooled bounds what recycled streams keep, so one large body does not
// stay allocated for the connection's life.
const (
	maxPooled     = 8
	maxPooledBody = 64 << 10
)

// maxBlocks bounds the header blocks kept per stream: 1xx heads, the head
// and trailers. RFC 9113 sets no limit on 1xx heads.
const maxBlocks = 8

// block returns the fields of header block i.
func (s *stream) block(i int) []hpack.HeaderField {
	end := len(s.fields)
	if i+1 < len(s.blocks) {
		end = s.blocks[i+1]
	}
	return s.fields[s.blocks[i]:end]
}

func (s *stream) addBody(p []byte, limit int, ts int64) {
	if s.bodyLen == 0 {
		s.bodyStart = ts
	}
	s.bodyLen += uint64(len(p))
	if room := limit - len(s.body); len(p) > room {
		p = p[:max(room, 0)]
		s.bodyCut = true
	}
	if len(s.body)+len(p) > cap(s.body) {
		// Double rather than let append grow large slices by a quarter:
		// fewer copies of a big body, at most twice its size allocated.
		n := min(max(2*cap(s.body), len(s.body)+len(p), 512), limit)
		s.body = append(make([]byte, 0, n), s.body...)
	}
	s.body = append(s.body, p...)
}

func (d *Decoder) alloc() *stream {
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free = d.free[:n-1]
		return s
	}
	return new(stream)
}

func (d *Decoder) recycle(s *stream) {
	if len(d.free) >= maxPooled {
		return
	}
	body := s.body[:0]
	if cap(body) > maxPooledBody {
		body = nil
	}
	clear(s.fields) // drop the strings
	*s = stream{fields: s.fields[:0], blocks: s.blocks[:0], body: body}
	d.free = append(d.free, s)
}

// find returns the open stream id, or nil.
func (d *Decoder) find(id uint32) *stream {
	if d.last != nil && d.last.id == id {
		return d.last
	}
	for _, s := range d.open {
		if s.id == id {
			d.last = s
			return s
		}
	}
	return nil
}

// newStream opens stream id, first evicting the oldest stream when
// MaxStreams are open.
func (d *Decoder) newStream(id uint32, start, ts int64) *stream {
	if len(d.open) >= d.lim.MaxStreams {
		d.stats.Evicted++
		d.lim.CountError(decoder.HTTP2StreamEvicted)
		old := d.open[0]
		old.incomplete = true
		d.finish(old, ts)
	}
	s := d.alloc()
	s.id, s.start = id, start
	s.typ = decoder.HTTP2Request
	if d.side == Server {
		s.typ = decoder.HTTP2Response
	}
	d.open = append(d.open, s)
	d.last = s
	return s
}

func (d *Decoder) remove(s *stream) {
	if d.last == s {
		d.last = nil
	}
	for i, o := range d.open {
		if o == s {
			copy(d.open[i:], d.open[i+1:])
			d.open[len(d.open)-1] = nil
			d.open = d.open[:len(d.open)-1]
			return
		}
	}
}

// finish emits s, ended at ts, and forgets it.
func (d *Decoder) finish(s *stream, ts int64) {
	s.end = ts
	d.remove(s)
	d.emitStream(s)
}

// emitStream emits s, which ended, whole or as the End of its parts, and
// recycles it.
func (d *Decoder) emitStream(s *stream) {
	var m *decoder.Message
	if s.split != nil {
		m = d.endStream(s)
	} else {
		m = d.render(s)
	}
	d.recycle(s)
	d.emit(m)
}

// beginBlock starts a header block for s, arriving in frames on stream
// frameStream (the associated stream for a PUSH_PROMISE).
func (d *Decoder) beginBlock(s *stream, frameStream uint32, endStream bool) {
	d.block, d.blockStream, d.blockEndStream = s, frameStream, endStream
	d.blockFailed = false
	if len(s.blocks) < maxBlocks {
		s.blocks = append(s.blocks, len(s.fields))
	} else {
		// Endless 1xx heads or trailers: decode, keep nothing.
		s.headerCut = true
	}
	d.hpack.SetEmitEnabled(!s.headerCut)
}

// fragment feeds header block bytes to HPACK. The decoder keeps partial
// fields between calls, so fragments need not end on field boundaries.
func (d *Decoder) fragment(p []byte) decoder.Reason {
	if d.blockFailed || len(p) == 0 {
		return decoder.NoReason
	}
	if _, err := d.hpack.Write(p); err != nil {
		return d.hpackError(err)
	}
	return decoder.NoReason
}

// hpackError decides what a decoding error means. With a table known to be
// complete it means the bytes are not what they seemed: a connection error.
// After lost bytes it means the block used entries never seen: the stream
// is Incomplete and HPACK restarts at the end of the block.
func (d *Decoder) hpackError(err error) decoder.Reason {
	if strings.Contains(err.Error(), "size update too large") {
		return decoder.HTTP2HPACKTableTooLarge
	}
	if !d.tainted {
		return decoder.HTTP2HPACKInvalid
	}
	d.blockFailed = true
	d.stats.HPACKFailures++
	d.lim.CountError(decoder.HTTP2HPACKLostEntry)
	if d.block != nil {
		d.block.incomplete = true
	}
	return decoder.NoReason
}

func (d *Decoder) onField(f hpack.HeaderField) {
	s := d.block
	if s == nil {
		return
	}
	if f.Name == "" {
		// A placeholder for an entry lost in a gap (see resetHPACK).
		d.blockLost = true
		s.incomplete = true
		return
	}
	// Size as RFC 9113 §6.5.2 counts it for SETTINGS_MAX_HEADER_LIST_SIZE.
	n := len(f.Name) + len(f.Value) + 32
	if s.hdrBytes+n > d.lim.MaxHeaderBytes {
		// Stop storing, keep decoding: the table must stay in step.
		s.headerCut = true
		d.hpack.SetEmitEnabled(false)
		return
	}
	s.hdrBytes += n
	s.fields = append(s.fields, f)
}

// endBlock completes the header block at END_HEADERS.
func (d *Decoder) endBlock(ts int64) decoder.Reason {
	if !d.blockFailed {
		if err := d.hpack.Close(); err != nil {
			if why := d.hpackError(err); why != decoder.NoReason {
				return why
			}
		}
	}
	s, failed, endStream := d.block, d.blockFailed, d.blockEndStream
	if d.blockLost && !failed {
		d.stats.HPACKFailures++
		d.lim.CountError(decoder.HTTP2HPACKLostEntry)
	}
	d.endBlockState()
	if failed {
		d.resetHPACK()
	}
	switch {
	case s == nil:
	case s.promise:
		// The promised request is complete with its header block.
		s.end = ts
		m := d.render(s)
		d.recycle(s)
		d.emit(m)
	case endStream:
		d.finish(s, ts)
	default:
		d.headDone(s)
	}
	return decoder.NoReason
}

func (d *Decoder) endBlockState() {
	d.blockOpen, d.block, d.blockFailed, d.blockLost, d.blockEndStream, d.blockStream = false, nil, false, false, false, 0
	d.hpack.SetEmitEnabled(true)
}

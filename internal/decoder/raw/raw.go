package raw

import "github.com/tlstap/tlstap/internal/decoder"

// Decoder buffers bytes until a flush.
type Decoder struct {
	limit int
	buf   []byte
	start int64
	end   int64
	// gap: bytes were lost after buf; what follows must not be glued to it.
	gap bool
}

// New returns a raw decoder that emits at least every flushBytes bytes.
func New(flushBytes int) *Decoder {
	if flushBytes <= 0 {
		flushBytes = decoder.DefaultLimits().RawFlushBytes
	}
	return &Decoder{limit: flushBytes}
}

// Feed buffers data and emits full flushBytes-sized messages.
func (d *Decoder) Feed(ts int64, data []byte, emit decoder.Emit) {
	if d.gap {
		d.gap = false
		if len(d.buf) > 0 {
			d.emit(emit)
		}
	}
	for len(data) > 0 {
		if len(d.buf) == 0 {
			d.start = ts
		}
		d.end = ts
		n := min(d.limit-len(d.buf), len(data))
		d.buf = append(d.buf, data[:n]...)
		data = data[n:]
		if len(d.buf) >= d.limit {
			d.emit(emit)
		}
	}
}

// Flush emits whatever is buffered, for either reason.
func (d *Decoder) Flush(_ int64, _ decoder.FlushReason, emit decoder.Emit) {
	if len(d.buf) > 0 {
		d.emit(emit)
	}
}

// Gap ends the current message at the next Feed: raw data has no framing
// to lose, but bytes on either side of a hole are not one message. The
// lost bytes themselves are counted by the pipeline.
func (d *Decoder) Gap(uint64) { d.gap = true }

// Buffered reports the number of bytes waiting for a flush.
func (d *Decoder) Buffered() int { return len(d.buf) }

func (d *Decoder) emit(emit decoder.Emit) {
	m := &decoder.Message{Type: decoder.Raw, Start: d.start, End: d.end, Payload: d.buf}
	// The message owns the slice; start a fresh one rather than reuse it.
	d.buf = nil
	emit(m)
}

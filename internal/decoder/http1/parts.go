package http1

import (
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/internal/split"
)

// A message is streamed (decoder.Limits.StreamParts) when its body does not
// complete at once (see decoder.Part): the head is emitted then, with what
// arrived of the body in parts, and every later part as soon as the
// splitter completes it; an End follows the last. A body that completes at
// once is emitted whole, exactly as without streaming.

// startStream emits the head of a message whose body is still arriving and
// hands what arrived of the body to a splitter.
func (s *stream) startStream(emit decoder.Emit) {
	m := &s.m
	if !s.lim.stream || s.st != stBody || !m.streamable || m.split != nil {
		return
	}
	head := &decoder.Message{
		Part:             decoder.Head,
		Start:            m.start,
		End:              m.end,
		Truncated:        m.truncated,
		TransferEncoding: m.te,
		ContentEncoding:  m.ce,
		ContentType:      m.ctype,
	}
	head.Payload = s.render(nil, false, false)
	s.describe(head)
	s.deliver(head, emit)
	m.split = split.New(split.For(m.ctype, m.ce), s.lim.part)
	m.partStart = m.end
	if m.wire > 0 {
		m.partStart = m.bodyStart
	}
	if len(m.body) > 0 {
		m.split.Write(m.body, s.partEmit(emit))
	}
	m.body = nil
}

// streamBody passes body bytes of a streamed message to its splitter.
func (s *stream) streamBody(p []byte, emit decoder.Emit) {
	m := &s.m
	if m.split.Buffered() == 0 {
		m.partStart = m.end
	}
	m.split.Write(p, s.partEmit(emit))
}

// partEmit returns the splitter's emit for the current message.
func (s *stream) partEmit(emit decoder.Emit) split.Emit {
	return func(info decoder.PartInfo, data []byte) {
		m := &s.m
		msg := &decoder.Message{
			Part:             decoder.Body,
			PartInfo:         info,
			Start:            m.partStart,
			End:              m.end,
			Payload:          data,
			TransferEncoding: m.te,
			ContentEncoding:  m.ce,
			ContentType:      m.ctype,
		}
		s.describe(msg)
		s.deliver(msg, emit)
		m.partStart = m.end
	}
}

// idleParts emits what a boundary-less streamed body buffered: the parts
// of such a body are what arrived between idle flushes.
func (s *stream) idleParts(emit decoder.Emit) {
	m := &s.m
	if s.st == stBody && m.split != nil && m.split.Framing() == split.Window {
		m.split.Flush(s.partEmit(emit))
	}
}

// endStream emits the last part of a streamed message and returns its End:
// the trailer fields, if any, and the message's final flags.
func (s *stream) endStream(emit decoder.Emit) *decoder.Message {
	m := &s.m
	m.split.Flush(s.partEmit(emit))
	m.split = nil
	end := &decoder.Message{
		Part:             decoder.End,
		Start:            m.end,
		End:              m.end,
		Truncated:        m.truncated,
		Incomplete:       m.incomplete,
		TransferEncoding: m.te,
		ContentEncoding:  m.ce,
		ContentType:      m.ctype,
		OriginalLength:   m.wire,
		Payload:          renderTrailer(nil, m.trailer),
	}
	s.describe(end)
	return end
}

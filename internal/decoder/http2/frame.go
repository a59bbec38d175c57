package http2

import "github.com/tlstap/tlstap/internal/decoder"

// Frame types (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
)

// Frame flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

const (
	frameHeaderLen = 9
	// defaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE before SETTINGS are
	// exchanged: the first SETTINGS frame of either side fits in it.
	defaultMaxFrameSize = 1 << 14
	maxFrameSize        = 1<<24 - 1
	// initialHeaderTableSize is the HPACK dynamic table size both ends
	// start with (RFC 9113 §6.5.2).
	initialHeaderTableSize = 4096
)

// clientPreface starts every HTTP/2 connection, sent by the client.
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// definedFlags are the flags each known frame type defines. Receivers must
// ignore others, but no real sender sets them, which makes them a cheap
// plausibility test when looking for frame boundaries.
var definedFlags = [...]uint8{
	frameData:         flagEndStream | flagPadded,
	frameHeaders:      flagEndStream | flagEndHeaders | flagPadded | flagPriority,
	framePriority:     0,
	frameRSTStream:    0,
	frameSettings:     flagAck,
	framePushPromise:  flagEndHeaders | flagPadded,
	framePing:         flagAck,
	frameGoAway:       0,
	frameWindowUpdate: 0,
	frameContinuation: flagEndHeaders,
}

type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	// reserved is the R bit in front of the stream id.
	reserved bool
	stream   uint32
}

func parseFrameHeader(b []byte) frameHeader {
	_ = b[8]
	return frameHeader{
		length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:      b[3],
		flags:    b[4],
		reserved: b[5]&0x80 != 0,
		stream:   uint32(b[5]&0x7f)<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8]),
	}
}

func (h frameHeader) has(f uint8) bool { return h.flags&f != 0 }

// streamRule says whether a frame type must be on stream 0 (connection
// frames), on a stream, or may be on either.
func streamOK(typ uint8, stream uint32) bool {
	switch typ {
	case frameSettings, framePing, frameGoAway:
		return stream == 0
	case frameWindowUpdate:
		return true
	default:
		return stream != 0
	}
}

// streamReasons and lengthReasons name the failures of streamOK and
// lengthOK by frame type.
var (
	streamReasons = [...]decoder.Reason{
		frameData:         decoder.HTTP2FrameDataStream0,
		frameHeaders:      decoder.HTTP2FrameHeadersStream0,
		framePriority:     decoder.HTTP2FramePriorityStream0,
		frameRSTStream:    decoder.HTTP2FrameRSTStreamStream0,
		frameSettings:     decoder.HTTP2FrameSettingsStreamNonzero,
		framePushPromise:  decoder.HTTP2FramePushPromiseStream0,
		framePing:         decoder.HTTP2FramePingStreamNonzero,
		frameGoAway:       decoder.HTTP2FrameGoAwayStreamNonzero,
		frameContinuation: decoder.HTTP2FrameContinuationStream0,
	}
	lengthReasons = [...]decoder.Reason{
		frameData:         decoder.HTTP2FrameDataLength,
		frameHeaders:      decoder.HTTP2FrameHeadersLength,
		framePriority:     decoder.HTTP2FramePriorityLength,
		frameRSTStream:    decoder.HTTP2FrameRSTStreamLength,
		frameSettings:     decoder.HTTP2FrameSettingsLength,
		framePushPromise:  decoder.HTTP2FramePushPromiseLength,
		framePing:         decoder.HTTP2FramePingLength,
		frameGoAway:       decoder.HTTP2FrameGoAwayLength,
		frameWindowUpdate: decoder.HTTP2FrameWindowUpdateLength,
	}
)

// lengthOK checks the payload length rules RFC 9113 sets per frame type,
// which are connection errors (FRAME_SIZE_ERROR or PROTOCOL_ERROR).
func lengthOK(h frameHeader) bool {
	switch h.typ {
	case frameData:
		return !h.has(flagPadded) || h.length >= 1
	case frameHeaders:
		n := uint32(0)
		if h.has(flagPadded) {
			n++
		}
		if h.has(flagPriority) {
			n += 5
		}
		return h.length >= n
	case framePriority:
		return h.length == 5
	case frameRSTStream, frameWindowUpdate:
		return h.length == 4
	case frameSettings:
		if h.has(flagAck) {
			return h.length == 0
		}
		return h.length%6 == 0
	case framePushPromise:
		if h.has(flagPadded) {
			return h.length >= 5
		}
		return h.length >= 4
	case framePing:
		return h.length == 8
	case frameGoAway:
		return h.length >= 8
	}
	return true
}

// Registered extension frames real peers send (RFC 7838, RFC 8336,
// RFC 9218); they take part in the search for frame boundaries.
const (
	frameAltSvc         = 0xa
	frameOrigin         = 0xc
	framePriorityUpdate = 0x10
)

// plausible is stricter than what a receiver must accept: a known type, only
// its defined flags, the R bit clear, the stream and length rules of the
// type, a length no larger than max, and no frame a real sender has no
// reason to send (empty header fragments, empty DATA that ends nothing).
// Real senders pass it; arbitrary bytes, and real frames read at the wrong
// offset, with their runs of zero bytes, rarely do.
func (h frameHeader) plausible(max uint32) bool {
	if h.reserved || h.length > max {
		return false
	}
	switch h.typ {
	case frameAltSvc:
		return h.flags == 0 && h.length >= 2
	case frameOrigin:
		return h.flags == 0 && h.stream == 0
	case framePriorityUpdate:
		return h.flags == 0 && h.stream == 0 && h.length >= 4
	case frameData:
		if h.length == 0 && !h.has(flagEndStream) {
			return false
		}
	case frameHeaders, frameContinuation:
		if h.length == 0 {
			return false
		}
	}
	if h.typ > frameContinuation {
		return false
	}
	return h.flags&^definedFlags[h.typ] == 0 && streamOK(h.typ, h.stream) && lengthOK(h)
}

// Setting identifiers with constrained values (RFC 9113 §6.5.2, RFC 8441).
const (
	settingEnablePush        = 0x2
	settingInitialWindowSize = 0x4
	settingMaxFrameSize      = 0x5
	settingEnableConnect     = 0x8
	settingNoRFC7540Priority = 0x9
)

// validSetting reports whether a setting value is allowed; unknown
// identifiers take any value.
func validSetting(id uint16, v uint32) bool {
	switch id {
	case settingEnablePush, settingEnableConnect, settingNoRFC7540Priority:
		return v <= 1
	case settingInitialWindowSize:
		return v <= 1<<31-1
	case settingMaxFrameSize:
		return v >= defaultMaxFrameSize && v <= maxFrameSize
	}
	return true
}

package decoder

import "sync/atomic"

// Reason names one way input failed to decode as the protocol a decoder
// expected, as x/net/http2 names its countError calls. A decoder reports
// every such failure, once, through Limits.Errors before it recovers (a
// message emitted Incomplete, bytes emitted raw, a body kept as sent). The
// names are stable: they are the reason label of
// tlstap_decoder_errors_total, and doc.go lists each with its meaning.
type Reason uint8

// The reasons, grouped by the decoder label they are counted under.
const (
	// NoReason is the zero Reason: nothing failed.
	NoReason Reason = iota

	HTTP1StartLineInvalid
	HTTP1StartLineTooLong
	HTTP1HeaderFieldInvalid
	HTTP1ContentLengthInvalid
	HTTP1HeaderTooLarge
	HTTP1ChunkSizeInvalid
	HTTP1ChunkLineTooLong
	HTTP1ChunkDataNoCRLF

	HTTP2FrameDataStream0
	HTTP2FrameHeadersStream0
	HTTP2FramePriorityStream0
	HTTP2FrameRSTStreamStream0
	HTTP2FramePushPromiseStream0
	HTTP2FrameContinuationStream0
	HTTP2FrameSettingsStreamNonzero
	HTTP2FramePingStreamNonzero
	HTTP2FrameGoAwayStreamNonzero
	HTTP2FrameDataLength
	HTTP2FrameHeadersLength
	HTTP2FramePriorityLength
	HTTP2FrameRSTStreamLength
	HTTP2FrameSettingsLength
	HTTP2FramePushPromiseLength
	HTTP2FramePingLength
	HTTP2FrameGoAwayLength
	HTTP2FrameWindowUpdateLength
	HTTP2FrameContinuationExpected
	HTTP2FrameContinuationUnexpected
	HTTP2FramePadTooLong
	HTTP2FrameHeadersStreamEven
	HTTP2FramePushPromiseFromClient
	HTTP2FramePushPromiseStreamInvalid
	HTTP2FrameSettingsValue
	HTTP2HPACKInvalid
	HTTP2HPACKTableTooLarge
	HTTP2HPACKLostEntry
	HTTP2StreamEvicted
	HTTP2ResyncBufferFull

	WebSocketFrameRSVBits
	WebSocketFrameOpcodeUnknown
	WebSocketFrameMask
	WebSocketFrameControlInvalid
	WebSocketFrameContinuationUnexpected
	WebSocketFrameDataUnexpected
	WebSocketFrameLengthInvalid
	WebSocketDeflateCorrupt
	WebSocketDeflateTooLarge

	SessionNoProtocol
	SessionBufferFull
	SessionUndecidedFlush
	SessionUndecidedGap
	SessionUpgradeUnknown

	ContentCodingUnknown
	ContentCorrupt
	ContentTooManyCodings

	numReasons
)

// reasonNames are the decoder and reason labels of each Reason.
var reasonNames = [numReasons][2]string{
	NoReason: {"", ""},

	HTTP1StartLineInvalid:     {"http1", "start_line_invalid"},
	HTTP1StartLineTooLong:     {"http1", "start_line_too_long"},
	HTTP1HeaderFieldInvalid:   {"http1", "header_field_invalid"},
	HTTP1ContentLengthInvalid: {"http1", "content_length_invalid"},
	HTTP1HeaderTooLarge:       {"http1", "header_too_large"},
	HTTP1ChunkSizeInvalid:     {"http1", "chunk_size_invalid"},
	HTTP1ChunkLineTooLong:     {"http1", "chunk_line_too_long"},
	HTTP1ChunkDataNoCRLF:      {"http1", "chunk_data_no_crlf"},

	HTTP2FrameDataStream0:              {"http2", "frame_data_stream_0"},
	HTTP2FrameHeadersStream0:           {"http2", "frame_headers_stream_0"},
	HTTP2FramePriorityStream0:          {"http2", "frame_priority_stream_0"},
	HTTP2FrameRSTStreamStream0:         {"http2", "frame_rst_stream_stream_0"},
	HTTP2FramePushPromiseStream0:       {"http2", "frame_push_promise_stream_0"},
	HTTP2FrameContinuationStream0:      {"http2", "frame_continuation_stream_0"},
	HTTP2FrameSettingsStreamNonzero:    {"http2", "frame_settings_stream_nonzero"},
	HTTP2FramePingStreamNonzero:        {"http2", "frame_ping_stream_nonzero"},
	HTTP2FrameGoAwayStreamNonzero:      {"http2", "frame_goaway_stream_nonzero"},
	HTTP2FrameDataLength:               {"http2", "frame_data_length"},
	HTTP2FrameHeadersLength:            {"http2", "frame_headers_length"},
	HTTP2FramePriorityLength:           {"http2", "frame_priority_length"},
	HTTP2FrameRSTStreamLength:          {"http2", "frame_rst_stream_length"},
	HTTP2FrameSettingsLength:           {"http2", "frame_settings_length"},
	HTTP2FramePushPromiseLength:        {"http2", "frame_push_promise_length"},
	HTTP2FramePingLength:               {"http2", "frame_ping_length"},
	HTTP2FrameGoAwayLength:             {"http2", "frame_goaway_length"},
	HTTP2FrameWindowUpdateLength:       {"http2", "frame_window_update_length"},
	HTTP2FrameContinuationExpected:     {"http2", "frame_continuation_expected"},
	HTTP2FrameContinuationUnexpected:   {"http2", "frame_continuation_unexpected"},
	HTTP2FramePadTooLong:               {"http2", "frame_pad_too_long"},
	HTTP2FrameHeadersStreamEven:        {"http2", "frame_headers_stream_even"},
	HTTP2FramePushPromiseFromClient:    {"http2", "frame_push_promise_from_client"},
	HTTP2FramePushPromiseStreamInvalid: {"http2", "frame_push_promise_stream_invalid"},
	HTTP2FrameSettingsValue:            {"http2", "frame_settings_value"},
	HTTP2HPACKInvalid:                  {"http2", "hpack_invalid"},
	HTTP2HPACKTableTooLarge:            {"http2", "hpack_table_too_large"},
	HTTP2HPACKLostEntry:                {"http2", "hpack_lost_entry"},
	HTTP2StreamEvicted:                 {"http2", "stream_evicted"},
	HTTP2ResyncBufferFull:              {"http2", "resync_buffer_full"},

	WebSocketFrameRSVBits:                {"websocket", "frame_rsv_bits"},
	WebSocketFrameOpcodeUnknown:          {"websocket", "frame_opcode_unknown"},
	WebSocketFrameMask:                   {"websocket", "frame_mask"},
	WebSocketFrameControlInvalid:         {"websocket", "frame_control_invalid"},
	WebSocketFrameContinuationUnexpected: {"websocket", "frame_continuation_unexpected"},
	WebSocketFrameDataUnexpected:         {"websocket", "frame_data_unexpected"},
	WebSocketFrameLengthInvalid:          {"websocket", "frame_length_invalid"},
	WebSocketDeflateCorrupt:              {"websocket", "deflate_corrupt"},
	WebSocketDeflateTooLarge:             {"websocket", "deflate_too_large"},

	SessionNoProtocol:     {"session", "no_protocol"},
	SessionBufferFull:     {"session", "buffer_full"},
	SessionUndecidedFlush: {"session", "undecided_flush"},
	SessionUndecidedGap:   {"session", "undecided_gap"},
	SessionUpgradeUnknown: {"session", "upgrade_unknown"},

	ContentCodingUnknown:  {"content", "coding_unknown"},
	ContentCorrupt:        {"content", "corrupt"},
	ContentTooManyCodings: {"content", "too_many_codings"},
}

// Decoder is the decoder label r is counted under: "http1", "http2",
// "websocket", "session" (protocol detection and switches) or "content"
// (content-coding decompression in either HTTP decoder).
func (r Reason) Decoder() string {
	if r >= numReasons {
		return ""
	}
	return reasonNames[r][0]
}

// String is the reason label, e.g. "frame_data_stream_0".
func (r Reason) String() string {
	if r >= numReasons {
		return "unknown"
	}
	return reasonNames[r][1]
}

// Reasons returns every Reason but NoReason, in declaration order.
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := NoReason + 1; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// ErrorCounter receives the failures of the decoders its Limits are given
// to. CountError is called on the decoder's goroutine, with the connection
// still being decoded: it must be cheap and must not call back into a
// decoder. Use a pointer type, so that Limits stay comparable.
type ErrorCounter interface {
	CountError(Reason)
}

// CountError reports r to l.Errors, if set. Decoders call it rather than
// l.Errors directly so that a nil counter costs nothing.
func (l Limits) CountError(r Reason) {
	if l.Errors != nil && r != NoReason {
		l.Errors.CountError(r)
	}
}

// Counts is an ErrorCounter that keeps the count of each Reason in memory,
// for tests and tools that read a decoder's failures directly. It is safe
// for concurrent use; the zero value is ready.
type Counts struct{ n [numReasons]atomic.Uint64 }

// CountError implements ErrorCounter.
func (c *Counts) CountError(r Reason) {
	if r < numReasons {
		c.n[r].Add(1)
	}
}

// Get returns how often r was counted.
func (c *Counts) Get(r Reason) uint64 {
	if r >= numReasons {
		return 0
	}
	return c.n[r].Load()
}

// Counted returns the reasons counted at least once, in declaration order.
func (c *Counts) Counted() []Reason {
	var rs []Reason
	for r := NoReason + 1; r < numReasons; r++ {
		if c.n[r].Load() > 0 {
			rs = append(rs, r)
		}
	}
	return rs
}

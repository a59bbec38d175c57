// Package http2 decodes one direction of an HTTP/2 connection (RFC 9113)
// into one decoder.Message per stream: a request on the client side, a
// response on the server side.
//
// The decoder is a streaming frame parser: frame payloads are consumed as
// they arrive, in whatever pieces, DATA straight into the stream's body and
// header block fragments straight into the direction's HPACK decoder
// (golang.org/x/net/http2/hpack), so no frame is ever buffered whole and
// memory stays bounded whatever the peer's SETTINGS_MAX_FRAME_SIZE. The
// HPACK decoder lives as long as the connection: its dynamic table is the
// state ecapture loses between its capture windows. A message is emitted
// the moment its stream ends; Start is when the first byte of its first
// HEADERS (or PUSH_PROMISE) frame arrived, End when the frame that ended it
// did.
//
// The dynamic table size a direction's encoder uses is bounded by SETTINGS
// the other direction sends, which a decoder does not see; size updates up
// to Limits.MaxHPACKTable are accepted.
//
// # Rendering
//
// Messages are rendered as HTTP/1.1-style text so one consumer reads both
// versions:
//
//	GET /path HTTP/2
//	Host: example.com            (from :authority)
//	<fields in wire order, pseudo-headers removed>
//	Content-Length: <decoded body length>
//
//	<body>
//
// and "HTTP/2 200" as the status line of a response. The body is decoded
// from its Content-Encoding (gzip, deflate, br, zstd); the content-encoding
// field is then removed, its value kept in Message.ContentEncoding. Any
// content-length field of the wire is replaced by the length of the body in
// the payload. Trailers are appended to the header section after the
// regular fields (HTTP/1.1 text with a Content-Length has no trailer
// section). Cookie crumbs are joined into one field (RFC 9113 §8.2.3); CR,
// LF and NUL, which HTTP/2 forbids in fields, become spaces so a field
// cannot forge lines. Informational (1xx) responses are folded into the stream's
// response: each is rendered as its own head before the final one, exactly
// as an HTTP/1.1 connection shows them, and Message.Status is the final
// status.
//
// # Server push
//
// A PUSH_PROMISE carries the request the server pushes a response for. It
// is emitted by the server-side decoder as an HTTP2Request message whose
// StreamID is the promised (even) stream; IsPushPromise recognises it. The
// pushed response follows as an ordinary HTTP2Response on that stream.
//
// # Damage
//
// A stream reset by RST_STREAM, cut by the connection's end, evicted
// because more than Limits.MaxStreams streams were open (counted in
// Stats.Evicted), or in flight across a Gap is emitted with Incomplete set.
// A direction sees only the RST_STREAM frames it sends; Pair the two
// decoders of a connection so that a reset also ends the stream on the
// other side, or a response whose request the client cancelled stays open
// until the connection ends.
//
// After a Gap, or when the decoder starts in the middle of a connection,
// it looks for frame boundaries (see IsFrameAligned) in what follows;
// skipped bytes are emitted raw. HPACK state is lost with the bytes: the
// table restarts filled with placeholder entries, so a field that refers to
// an entry never seen is recognised instead of decoded wrong. Its message
// keeps the fields that did decode, all of them right, and is Incomplete.
//
// Framing errors it cannot recover from (a frame that breaks RFC 9113's
// rules, an HPACK error with a complete table, a dynamic table larger than
// Limits.MaxHPACKTable) switch the direction to raw for good: streams in
// flight are emitted Incomplete and the undecoded bytes as decoder.Raw
// messages, never as HTTP.
//
// # Memory
//
// Frames are never buffered whole. Per direction the decoder holds at most
// Limits.MaxStreams streams of up to MaxHeaderBytes of fields and
// MaxBodyBytes of body each, MaxBufferBytes while looking for frame
// boundaries, and one HPACK table of up to MaxHPACKTable bytes.
package http2

package decoder

import "time"

// Type is the kind of a message. The values are the wire's Event.type.
type Type uint32

const (
	Raw           Type = 0
	HTTP1Request  Type = 1
	HTTP2Request  Type = 2
	HTTP1Response Type = 3
	HTTP2Response Type = 4
	WebSocket     Type = 5
)

var typeNames = [...]string{"raw", "http1-request", "http2-request", "http1-response", "http2-response", "websocket"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// IsRequest reports whether t is an HTTP request type.
func (t Type) IsRequest() bool { return t == HTTP1Request || t == HTTP2Request }

// IsResponse reports whether t is an HTTP response type.
func (t Type) IsResponse() bool { return t == HTTP1Response || t == HTTP2Response }

// Message is one complete decoded message of one direction.
type Message struct {
	Type Type
	// Start and End are Unix ns times of the first and last byte.
	Start, End int64
	// Payload belongs to the message; the decoder must not reuse it.
	Payload []byte
	// OriginalLength is the message's decoded length before any limit cut
	// it; 0 means len(Payload).
	OriginalLength uint64
	// Truncated: a limit cut Payload. Incomplete: the message never
	// completed (reset, connection closed, bytes lost).
	Truncated, Incomplete bool

	// StreamID is the HTTP/2 stream.
	StreamID uint32
	// TransferEncoding and ContentEncoding as they were on the wire; the
	// payload is de-chunked and decoded.
	TransferEncoding, ContentEncoding string
	// HTTP metadata. On responses Host/Method/Path are filled by the
	// pipeline from the paired request.
	Host, Method, Path, ContentType string
	Status                          uint32

	// WebSocket opcode and close code.
	WSOpcode    uint8
	WSCloseCode uint16

	// Upgrade is set on a response that switches the connection to another
	// protocol (HTTP/1.1 101 with Upgrade: websocket).
	Upgrade *Upgrade

	// Part is Whole unless the message is streamed (see Part); then
	// PartInfo describes a Body part and GRPCStatus may be set on the End.
	Part       Part
	PartInfo   PartInfo
	GRPCStatus *GRPCStatus
}

// Upgrade describes a protocol switch announced by a response.
type Upgrade struct {
	// Protocol is the lower-cased Upgrade header value, e.g. "websocket".
	Protocol string
	// Extensions is the response's Sec-WebSocket-Extensions header.
	Extensions string
}

// Emit receives each message a decoder completes. The decoder must not touch
// the message after the call.
type Emit func(*Message)

// FlushReason says why a decoder is asked to flush.
type FlushReason uint8

const (
	// Idle: no data arrived for the idle timeout. Only decoders of
	// boundary-less data (raw) emit on it.
	Idle FlushReason = iota
	// Close: the connection ended; emit what is buffered, marked
	// Incomplete where a message was cut off.
	Close
)

// Decoder decodes one direction of one connection.
//
// Implementations are not safe for concurrent use; the pipeline calls them
// from one goroutine. They must never panic, whatever the input, and must
// keep their memory within Limits.
type Decoder interface {
	// Feed consumes data received at ts (Unix ns). data is only valid
	// during the call.
	Feed(ts int64, data []byte, emit Emit)
	// Flush is called on idle timeout and on close.
	Flush(ts int64, reason FlushReason, emit Emit)
	// Gap tells the decoder that n bytes were lost before the next Feed;
	// it must resynchronise rather than misparse.
	Gap(n uint64)
}

// PartStarter is implemented by decoders that stream messages (see Part).
// StartParts emits, at once, the head of every message whose header section
// is complete, whose body is not, and whose body has protocol boundaries to
// cut parts at (Server-Sent Events, gRPC, NDJSON, JSON-seq): such a body is
// a stream by its content type, so its head waits for nothing. Other bodies
// keep the rule Part describes. The pipeline calls it after every chunk, so
// the decision depends on the captured bytes alone and a recording replays
// to the same parts; a body that completes in the chunk that completed its
// head is still one Whole event.
type PartStarter interface {
	StartParts(ts int64, emit Emit)
}

// Limits bound a decoder's memory whatever its input.
type Limits struct {
	// MaxHeaderBytes caps one message's header block (HTTP/1 header
	// section, HTTP/2 header block after HPACK decoding).
	MaxHeaderBytes int
	// MaxBodyBytes caps one message's decoded body; beyond it the message
	// is emitted truncated (and the rest discarded, not buffered).
	MaxBodyBytes int
	// MaxBufferBytes caps undecoded bytes buffered per direction.
	MaxBufferBytes int
	// MaxStreams caps concurrently open HTTP/2 streams tracked per direction.
	MaxStreams int
	// MaxHPACKTable caps the HPACK dynamic table size a peer may request.
	MaxHPACKTable uint32
	// RawFlushBytes makes the raw decoder emit once this many bytes are
	// buffered, without waiting for idle.
	RawFlushBytes int
	// StreamParts makes HTTP decoders emit a message whose body is still
	// arriving as Head, Body parts and End instead of waiting for its last
	// byte. MaxBodyBytes then does not apply: parts are emitted and
	// forgotten.
	StreamParts bool
	// MaxPartBytes bounds one Body part, and what is buffered waiting for
	// a protocol boundary.
	MaxPartBytes int
	// StreamAfter is how long a body may keep arriving before its message
	// is streamed; the pipeline sets it to its idle timeout.
	StreamAfter time.Duration
	// Errors, if set, counts every failure by Reason (see CountError).
	// It is no limit, but Limits is what reaches every decoder.
	Errors ErrorCounter
}

// DefaultLimits are generous enough for ordinary traffic and small enough
// that thousands of connections fit in memory.
func DefaultLimits() Limits {
	return Limits{
		MaxHeaderBytes: 64 << 10,
		MaxBodyBytes:   16 << 20,
		MaxBufferBytes: 1 << 20,
		MaxStreams:     256,
		MaxHPACKTable:  64 << 10,
		RawFlushBytes:  64 << 10,
		MaxPartBytes:   64 << 10,
		StreamAfter:    100 * time.Millisecond,
	}
}

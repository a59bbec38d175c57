package decoder

// Part says which piece of a message an emitted Message is. A message whose
// body completes at once is emitted Whole, as one Message. When
// Limits.StreamParts is set, a message whose body does not is streamed: its
// Head, its body as Body parts as they arrive, and an End when it
// completes (or is cut off).
//
// A body completes at once when it completes before any of: the decoder is
// flushed Idle (nothing arrived for the idle timeout), its bytes have kept
// arriving for Limits.StreamAfter since the message's first byte, or
// Limits.MaxPartBytes of it arrived. At the first of these the head is
// emitted with what arrived of the body, in parts; from then on every part
// is emitted as soon as it is complete.
type Part uint8

const (
	Whole Part = iota
	Head
	Body
	End
)

var partNames = [...]string{"whole", "head", "part", "end"}

func (p Part) String() string {
	if int(p) < len(partNames) {
		return partNames[p]
	}
	return "unknown"
}

// PartInfo describes a Body part: where it lies in the message body and
// what protocol unit it carries.
type PartInfo struct {
	// Index counts the message's Body parts from 0.
	Index uint32
	// Offset is where the part starts in the body as carried (after
	// de-chunking, before any content decoding).
	Offset uint64
	// Continued: the part is not a whole protocol unit (SSE event, gRPC
	// message, line) because the unit outgrew Limits.MaxPartBytes; the next
	// part carries more of it.
	Continued bool
	// SSE is set for a Server-Sent Events event.
	SSE *SSEEvent
	// GRPC is set for the first part of a gRPC length-prefixed message.
	GRPC *GRPCMessage
}

// SSEEvent is one text/event-stream event, its fields as the stream's
// parser would dispatch them (data lines joined with "\n").
type SSEEvent struct {
	Event, ID, Data string
}

// GRPCMessage is the prefix of one gRPC length-prefixed message.
type GRPCMessage struct {
	Compressed bool
	Length     uint32
}

// GRPCStatus is the grpc-status and grpc-message an End carries from a gRPC
// response's trailers.
type GRPCStatus struct {
	Code    uint32
	Message string
}

package output

import (
	"encoding/hex"
	"fmt"
	"strings"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// appendPartHeader marks the events of a streamed message on the header
// line, so a reader follows one message across events: "head", "part N of
// #seq", "end of #seq".
func appendPartHeader(b []byte, ev *eventpb.Event) []byte {
	switch ev.GetPart() {
	case eventpb.PartKind_PART_KIND_HEAD:
		b = append(b, " head"...)
	case eventpb.PartKind_PART_KIND_PART:
		b = fmt.Appendf(b, " part=%d of=#%d offset=%d", ev.GetPartIndex(), ev.GetMessageSeq(), ev.GetBodyOffset())
		if ev.GetPartContinued() {
			b = append(b, " continued"...)
		}
	case eventpb.PartKind_PART_KIND_END:
		b = fmt.Appendf(b, " end of=#%d", ev.GetMessageSeq())
		if ev.GrpcStatus != nil {
			b = fmt.Appendf(b, " grpc-status=%d", ev.GetGrpcStatus())
		}
		if m := ev.GetGrpcMessage(); m != "" {
			b = fmt.Appendf(b, " grpc-message=%q", m)
		}
	}
	return b
}

// appendPartBody renders a body part as what it carries: an SSE event's
// fields, a gRPC message's length and its fields as protoc --decode_raw
// shows them, else the bytes as any payload.
func appendPartBody(b []byte, ev *eventpb.Event) []byte {
	p := ev.GetPayload()
	switch {
	case ev.GetSseEvent() != "" || ev.GetSseId() != "" || ev.GetSseData() != "":
		if e := ev.GetSseEvent(); e != "" {
			b = fmt.Appendf(b, "event: %s\n", safeText(e))
		}
		if id := ev.GetSseId(); id != "" {
			b = fmt.Appendf(b, "id: %s\n", safeText(id))
		}
		for _, line := range strings.Split(ev.GetSseData(), "\n") {
			b = fmt.Appendf(b, "data: %s\n", safeText(line))
		}
		return b
	case ev.GetGrpcLength() != 0 || (len(p) >= 5 && ev.GetGrpcCompressed()):
		b = fmt.Appendf(b, "grpc message length=%d", ev.GetGrpcLength())
		if ev.GetGrpcCompressed() {
			b = append(b, " compressed"...)
		}
		b = append(b, '\n')
		msg := p[min(5, len(p)):]
		if !ev.GetGrpcCompressed() && !ev.GetPartContinued() {
			if out, ok := appendDecodeRaw(b, msg, 0); ok {
				return out
			}
		}
		return append(b, hex.Dump(msg)...)
	case !printable(p):
		return append(b, hex.Dump(p)...)
	}
	b = append(b, p...)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b = append(b, '\n')
	}
	return b
}

// safeText keeps control characters of captured text off the terminal.
func safeText(s string) string {
	if printable([]byte(s)) && !strings.ContainsAny(s, "\r\x1b") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

package har

import (
	"google.golang.org/protobuf/proto"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// A message shown while it flows (docs/protocol.md, "Streamed messages")
// arrives as a head, body parts and an end. HAR has one entry per request
// and response, so the parts are put back together: the head's event with
// the parts' bytes as its body, handed on when the end arrives.
const (
	// maxStreamedBody bounds the body kept per streamed message; the rest
	// is dropped and the entry marked truncated (_truncated), as --tsize
	// does for whole messages.
	maxStreamedBody = 16 << 20
	// maxStreamed bounds the messages being put together at once; the
	// oldest is handed on unfinished (incomplete) to make room.
	maxStreamed = 1024
)

type streamed struct {
	head      *eventpb.Event
	body      []byte
	truncated bool
}

// assemble takes a streamed message's head, parts and end. It returns the
// whole message once it is complete (or evicted), else nil.
func (w *Writer) assemble(ev *eventpb.Event) (done []*eventpb.Event) {
	switch ev.GetPart() {
	case eventpb.PartKind_PART_KIND_HEAD:
		for len(w.streamed) >= maxStreamed {
			oldest := w.streamOrder[0]
			w.streamOrder = w.streamOrder[1:]
			if s := w.streamed[oldest]; s != nil {
				delete(w.streamed, oldest)
				done = append(done, s.whole(nil))
			}
		}
		if len(w.streamOrder) > 2*len(w.streamed)+64 {
			// Ended messages leave their seq behind; drop those.
			live := w.streamOrder[:0]
			for _, seq := range w.streamOrder {
				if w.streamed[seq] != nil {
					live = append(live, seq)
				}
			}
			w.streamOrder = live
		}
		w.streamed[ev.GetSeq()] = &streamed{head: ev}
		w.streamOrder = append(w.streamOrder, ev.GetSeq())
		return done
	case eventpb.PartKind_PART_KIND_PART, eventpb.PartKind_PART_KIND_END:
		s := w.streamed[ev.GetMessageSeq()]
		if s == nil {
			// The head came before this stream was subscribed: there is
			// no request line or status to make an entry of.
			return nil
		}
		s.add(ev.GetPayload(), ev.GetTruncated())
		if ev.GetPart() == eventpb.PartKind_PART_KIND_PART {
			return nil
		}
		delete(w.streamed, ev.GetMessageSeq())
		return append(done, s.whole(ev))
	}
	return nil
}

func (s *streamed) add(p []byte, truncated bool) {
	s.truncated = s.truncated || truncated
	if room := maxStreamedBody - len(s.body); len(p) > room {
		p, s.truncated = p[:max(room, 0)], true
	}
	s.body = append(s.body, p...)
}

// whole returns the message as one event: the head's, with the parts'
// bytes after its header block. end is nil for a message cut off before
// its end.
func (s *streamed) whole(end *eventpb.Event) *eventpb.Event {
	ev := proto.Clone(s.head).(*eventpb.Event)
	ev.Part = eventpb.PartKind_PART_KIND_WHOLE
	ev.Payload = append(ev.Payload, s.body...)
	ev.Length = uint32(len(ev.Payload))
	ev.Truncated = s.truncated
	ev.Incomplete = end == nil || end.GetIncomplete()
	if end != nil {
		ev.Truncated = ev.Truncated || end.GetTruncated()
		ev.GrpcStatus, ev.GrpcMessage = end.GrpcStatus, end.GetGrpcMessage()
	}
	return ev
}

package server

import (
	"net/url"
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestMatchParts: the head, parts and end of a streamed response carry the
// type, process, host and ports a whole response does, so every filter
// treats them alike.
func TestMatchParts(t *testing.T) {
	var evs []*eventpb.Event
	for i, k := range []eventpb.PartKind{eventpb.PartKind_PART_KIND_HEAD, eventpb.PartKind_PART_KIND_PART, eventpb.PartKind_PART_KIND_PART, eventpb.PartKind_PART_KIND_END} {
		evs = append(evs, &eventpb.Event{Seq: uint64(10 + i), Pid: 42, Pname: "curl", Type: 4, Host: "ai.example.com", SrcPort: 443, DstPort: 51000,
			Part: k, MessageSeq: 10, RequestSeq: 9})
	}
	for _, tt := range []struct {
		query string
		want  bool
	}{
		{"type=http2-response&host=*.example.com&pid=42&pname=curl&port=443", true},
		{"type=response", true},
		{"type=request", false},
		{"host=other.test", false},
	} {
		v, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if got := q.Match(entry(ev)); got != tt.want {
				t.Errorf("%q: %v #%d: Match = %v, want %v", tt.query, ev.GetPart(), ev.GetSeq(), got, tt.want)
			}
		}
	}
}

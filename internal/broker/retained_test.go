package broker

import (
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestRetainedPages(t *testing.T) {
	b := New(Options{RetainEvents: 50}, nil)
	for seq := uint64(1); seq <= 80; seq++ {
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT,
			Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{Seq: seq}}})
	}
	tests := []struct {
		after, upTo uint64
		want        []uint64 // first and last seq, and count
	}{
		{0, 80, []uint64{31, 80, 50}}, // 1..30 were trimmed
		{40, 80, []uint64{41, 80, 40}},
		{40, 60, []uint64{41, 60, 20}},
		{80, 90, nil},
	}
	for _, tt := range tests {
		var got []uint64
		page := make([]*Entry, 0, 7)
		for after := tt.after; ; {
			page = b.Retained(after, tt.upTo, page[:0])
			if len(page) == 0 {
				break
			}
			if len(page) > 7 {
				t.Fatalf("page of %d beyond its capacity", len(page))
			}
			for _, e := range page {
				got = append(got, e.Seq)
				after = e.Seq
			}
		}
		if tt.want == nil {
			if len(got) != 0 {
				t.Errorf("after %d: got %v, want none", tt.after, got)
			}
			continue
		}
		if len(got) != int(tt.want[2]) || got[0] != tt.want[0] || got[len(got)-1] != tt.want[1] {
			t.Errorf("after %d up to %d: got %d entries %v, want %d from %d to %d", tt.after, tt.upTo, len(got), got, tt.want[2], tt.want[0], tt.want[1])
		}
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Errorf("not in order: %v", got)
				break
			}
		}
	}
}

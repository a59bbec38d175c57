package sink

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/golden"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// stream frames msgs with protodelim, the reference implementation, so the
// reader is checked against someone else's writer.
func stream(t testing.TB, msgs ...*eventpb.LogEntry) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		if _, err := protodelim.MarshalTo(&b, m); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestReader(t *testing.T) {
	three := stream(t, request(1), request(2), &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG,
		Payload: &eventpb.LogEntry_RunLog{RunLog: "hello"},
	})
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    int // entries read before the error
		wantErr error
	}{
		{name: "empty", in: nil, wantErr: io.EOF},
		{name: "three", in: three, want: 3, wantErr: io.EOF},
		{name: "empty message", in: []byte{0}, want: 1, wantErr: io.EOF},
		{name: "cut in body", in: three[:len(three)-2], want: 2, wantErr: io.ErrUnexpectedEOF},
		{name: "cut in prefix", in: append(stream(t, request(1)), 0x80), want: 1, wantErr: io.ErrUnexpectedEOF},
		{name: "too large", in: three, max: 10, wantErr: ErrFrameTooLarge},
		{name: "varint overflow", in: bytes.Repeat([]byte{0xff}, 11)},
		{name: "not a LogEntry", in: []byte{2, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in))
			if tt.max > 0 {
				r.SetMaxFrame(tt.max)
			}
			n := 0
			var err error
			for {
				var m *eventpb.LogEntry
				if m, err = r.Next(); err != nil {
					break
				}
				n++
				if ev := m.GetEventPayload(); ev != nil && ev.GetSeq() != uint64(n) {
					t.Errorf("entry %d has seq %d", n, ev.GetSeq())
				}
			}
			if n != tt.want {
				t.Errorf("read %d entries, want %d", n, tt.want)
			}
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
				t.Errorf("err = %v, want a format error", err)
			}
		})
	}
}

func TestAppendFrameMatchesProtodelim(t *testing.T) {
	for _, m := range []*eventpb.LogEntry{{}, request(1), request(300)} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := AppendFrame(nil, b), stream(t, m); !bytes.Equal(got, want) {
			t.Errorf("AppendFrame = %x, protodelim = %x", got, want)
		}
	}
}

// FuzzReader: no input may panic the reader or make it allocate beyond its
// limit, and whatever it accepts must survive a write/read round trip.
func FuzzReader(f *testing.F) {
	f.Add(stream(f, request(1), request(2)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		r.SetMaxFrame(1 << 20)
		var again []byte
		var kept []*eventpb.LogEntry
		for {
			m, err := r.Next()
			if err != nil {
				break
			}
			b, err := proto.Marshal(m)
			if err != nil {
				continue // a string field with invalid UTF-8 cannot be re-marshaled
			}
			kept = append(kept, m)
			again = AppendFrame(again, b)
		}
		r2 := NewReader(bytes.NewReader(again))
		for i := 0; ; i++ {
			m, err := r2.Next()
			if errors.Is(err, io.EOF) {
				if i != len(kept) {
					t.Fatalf("re-read %d entries, wrote %d", i, len(kept))
				}
				return
			}
			if err != nil {
				t.Fatalf("re-read of own output: %v", err)
			}
			if i >= len(kept) || !proto.Equal(m, kept[i]) {
				t.Fatalf("entry %d changed in the round trip", i)
			}
		}
	})
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzReader in step with the real
// encoder: the seeds are streams of real entries; -update rewrites them.
func TestFuzzSeeds(t *testing.T) {
	hb := &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_HEARTBEAT, Payload: &eventpb.LogEntry_HeartbeatPayload{HeartbeatPayload: &eventpb.Heartbeat{Timestamp: 1764115200000000000, Count: 1, Message: "tlstap", LastSeq: 7}}}
	log := &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "level=INFO msg=started"}}
	full := stream(t, hb, request(1), log, request(2))
	seeds := map[string][]byte{
		"stream":      full,
		"one":         stream(t, request(7)),
		"heartbeat":   stream(t, hb),
		"cut":         full[:len(full)/2],
		"long_prefix": {0xff, 0xff, 0xff, 0xff, 0x0f},
		"zero_frames": {0, 0, 0},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	for name, b := range seeds {
		golden.Check(t, filepath.Join(dir, name), golden.FuzzSeed(b))
	}
}

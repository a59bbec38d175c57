package output_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// partEvents are the events of a streamed SSE response and a streamed gRPC
// response, as the pipeline emits them.
func partEvents() []*eventpb.Event {
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 150)
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendString(msg, "hello")
	var inner []byte
	inner = protowire.AppendTag(inner, 3, protowire.Fixed32Type)
	inner = protowire.AppendFixed32(inner, 7)
	msg = protowire.AppendTag(msg, 4, protowire.BytesType)
	msg = protowire.AppendBytes(msg, inner)
	grpc := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	status := uint32(5)
	base := func(seq uint64, typ uint32) *eventpb.Event {
		return &eventpb.Event{Timestamp: ts + int64(seq)*1e6, Seq: seq, Pid: 10, Pname: "curl", Type: typ, SrcIp: "127.0.0.1", SrcPort: 443, DstIp: "127.0.0.1", DstPort: 40000, RequestSeq: 1, LatencyNs: 2e6}
	}
	evs := []*eventpb.Event{base(2, 3), base(3, 3), base(4, 3), base(5, 4), base(6, 4), base(7, 4), base(8, 4)}
	evs[0].Part, evs[0].MessageSeq, evs[0].Payload = eventpb.PartKind_PART_KIND_HEAD, 2, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	evs[1].Part, evs[1].MessageSeq, evs[1].Payload = eventpb.PartKind_PART_KIND_PART, 2, []byte("event: tick\nid: 1\ndata: a\ndata: b\n\n")
	evs[1].SseEvent, evs[1].SseId, evs[1].SseData = "tick", "1", "a\nb"
	evs[2].Part, evs[2].MessageSeq = eventpb.PartKind_PART_KIND_END, 2
	evs[3].Part, evs[3].MessageSeq, evs[3].StreamId, evs[3].Payload = eventpb.PartKind_PART_KIND_HEAD, 5, 1, []byte("HTTP/2 200\r\ncontent-type: application/grpc\r\n\r\n")
	evs[4].Part, evs[4].MessageSeq, evs[4].StreamId, evs[4].Payload = eventpb.PartKind_PART_KIND_PART, 5, 1, grpc
	evs[4].GrpcLength = uint32(len(msg))
	evs[5].Part, evs[5].MessageSeq, evs[5].StreamId, evs[5].Payload = eventpb.PartKind_PART_KIND_PART, 5, 1, []byte{0, 0, 0, 0, 2, 0xff, 0xff}
	evs[5].GrpcLength, evs[5].PartIndex, evs[5].BodyOffset = 2, 1, uint64(len(grpc))
	evs[6].Part, evs[6].MessageSeq, evs[6].StreamId, evs[6].Payload = eventpb.PartKind_PART_KIND_END, 5, 1, []byte("grpc-status: 5\r\ngrpc-message: not found\r\n")
	evs[6].GrpcStatus, evs[6].GrpcMessage = &status, "not found"
	for _, ev := range evs {
		ev.Length = uint32(len(ev.Payload))
	}
	return evs
}

func TestRenderPartsGolden(t *testing.T) {
	for _, tt := range []struct {
		file string
		r    output.Renderer
	}{
		{"parts-text.golden", output.New(output.Text, false)},
		{"parts-json.golden", output.New(output.JSON, false)},
	} {
		t.Run(tt.file, func(t *testing.T) {
			var b bytes.Buffer
			for _, ev := range partEvents() {
				if err := tt.r.Render(&b, ev); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, filepath.Join("testdata", tt.file), b.Bytes())
		})
	}
}

// FuzzDecodeRaw: any gRPC payload renders without panicking.
func FuzzDecodeRaw(f *testing.F) {
	f.Add(partEvents()[4].Payload)
	f.Add([]byte{0, 0, 0, 0, 3, 0x0b, 0x0c, 0x0a})
	f.Fuzz(func(t *testing.T, p []byte) {
		ev := &eventpb.Event{Part: eventpb.PartKind_PART_KIND_PART, Payload: p, GrpcLength: uint32(len(p))}
		var b bytes.Buffer
		if err := (output.TextRenderer{}).Render(&b, ev); err != nil {
			t.Fatal(err)
		}
	})
}

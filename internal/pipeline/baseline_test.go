package pipeline

import (
	"testing"

	"google.golang.org/protobuf/proto"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// BenchmarkBaselineMarshal builds and marshals the LogEntry that
// BenchmarkPipeline/event-per-chunk publishes for each 1 KiB chunk, and
// nothing else: the floor the pipeline's figure is compared with in
// docs/benchmarks.md.
func BenchmarkBaselineMarshal(b *testing.B) {
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte(i)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		ev := &eventpb.Event{
			Timestamp: 1_750_000_000_000_000_000, Uuid: "4242_4242_curl_5_1_1", SrcIp: "127.0.0.1", SrcPort: 44434,
			DstIp: "127.0.0.1", DstPort: 443, Pid: 4242, Pname: "curl", Length: uint32(len(payload)), Payload: payload,
			Tid: 4242, Fd: 5, Version: 0x0304, DataType: 1, Seq: seq, ConnId: 1, Uid: 1000, OriginalLength: uint64(len(payload)),
		}
		m := &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}}
		if _, err := proto.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
}

package engine

import (
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// warm runs the lazily initialised parts of the event path once, on
// made-up entries that go nowhere, so that the first captured event does
// not pay for them: protobuf-go builds a message type's marshalling tables
// on its first Marshal (1.9 ms for the first LogEntry with an Event in a
// fresh process here), and encoding/json its encoder for the output's
// event type (0.46 ms). Both were most of the first event's extra latency
// after start (docs/benchmarks.md, issue 19, session 7).
func warm() {
	req := &eventpb.Event{Timestamp: 1, Uuid: "warm", SrcIp: "127.0.0.1", SrcPort: 1, DstIp: "127.0.0.1", DstPort: 2,
		Pid: 1, Pname: "warm", Type: 1, Payload: []byte("GET / HTTP/1.1\r\nHost: warm\r\n\r\n")}
	resp := &eventpb.Event{Timestamp: 2, Uuid: "warm", SrcIp: "127.0.0.1", SrcPort: 2, DstIp: "127.0.0.1", DstPort: 1,
		Pid: 1, Pname: "warm", Type: 3, Payload: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")}
	for _, le := range []*eventpb.LogEntry{
		{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: req}},
		{LogType: eventpb.LogType_LOG_TYPE_HEARTBEAT, Payload: &eventpb.LogEntry_HeartbeatPayload{HeartbeatPayload: &eventpb.Heartbeat{Timestamp: 1}}},
		{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "warm"}},
	} {
		proto.Marshal(le)
	}
	for _, f := range []output.Format{output.Text, output.JSON} {
		r := output.New(f, false)
		r.Render(io.Discard, req)
		r.Render(io.Discard, resp)
	}
}

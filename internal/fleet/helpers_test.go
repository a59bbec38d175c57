package fleet

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/fleet/fleettest"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func natsServer(t testing.TB, port int, dir string) *server.Server {
	return fleettest.Server(t, port, dir)
}

func natsURL(s *server.Server, query string) string { return fleettest.URL(s, query) }

// event builds the i-th event of connection conn on node, as the pipeline
// would publish it.
func event(node string, seq, conn uint64) *eventpb.LogEntry {
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Seq:     seq,
			ConnId:  conn,
			Uuid:    fmt.Sprintf("1_1_curl_3_0_%d", conn),
			Node:    node,
			Type:    1,
			Payload: fmt.Appendf(nil, "GET /%d HTTP/1.1\r\n\r\n", seq),
		}},
	}
}

// publishN publishes n events on b, spread over conns connections.
func publishN(b *broker.Broker, node string, from, n, conns uint64) {
	for i := from; i < from+n; i++ {
		b.Publish(event(node, i+1, i%conns+1))
	}
}

// testWriter sends a logger's lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

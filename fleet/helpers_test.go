package fleet

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tlstap/tlstap/broker"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// natsServer runs a JetStream server on 127.0.0.1:port (0: any free port)
// storing into dir, until the test ends or it is shut down.
func natsServer(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func natsURL(s *server.Server, query string) string {
	u := fmt.Sprintf("nats://%s", s.Addr().(*net.TCPAddr).String())
	if query != "" {
		u += "?" + query
	}
	return u
}

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

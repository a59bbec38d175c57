package server_test

import (
	"testing"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestBatchedStream: events published in batches (Broker.PublishBatched,
// then Flush, as the live capture publishes one drain of its ring) reach a
// stream client whole and in order as soon as their batch ends, with no
// later traffic to push them out, whether the client's writer corks the
// connection (more queued) or not, and with batches longer than the broker
// lets wait unwoken; over TLS and plain WebSocket.
func TestBatchedStream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		noTLS bool
	}{{"tls", false}, {"plain", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := start(t, server.Options{NoTLS: tc.noTLS}, broker.Options{})
			c := ts.mustDial(t, "")
			if m := readEntry(t, c); m.GetLogType() != eventpb.LogType_LOG_TYPE_HEARTBEAT {
				t.Fatalf("first message %v, want a heartbeat", m.GetLogType())
			}
			seq := uint64(0)
			for _, n := range []int{1, 5, 300, 2, 0, 1} {
				first := seq + 1
				if n == 0 { // one unbatched event
					seq++
					ts.b.Publish(event(seq))
				} else {
					for range n {
						seq++
						ts.b.PublishBatched(event(seq))
					}
					ts.b.Flush()
				}
				for want := first; want <= seq; want++ {
					m := nextNonHeartbeat(t, c)
					if got := m.GetEventPayload().GetSeq(); got != want {
						t.Fatalf("batch of %d: got seq %d, want %d", n, got, want)
					}
				}
			}
		})
	}
}

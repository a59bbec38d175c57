package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request builds a realistic HTTP/1.1 request event as the pipeline emits it.
func request(seq uint64) *eventpb.LogEntry {
	body := fmt.Sprintf(`{"n":%d}`, seq)
	payload := fmt.Sprintf("POST /api/items?n=%d HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", seq, len(body), body)
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Timestamp: 1764115200000000000 + int64(seq)*1000,
			Uuid:      "4242_4243_curl_5_1_1",
			SrcIp:     "127.0.0.1", SrcPort: 40000,
			DstIp: "127.0.0.1", DstPort: 443,
			Pid: 4242, Pname: "curl", Type: 1,
			Length: uint32(len(payload)), Payload: []byte(payload),
			Tid: 4243, Fd: 5, Version: 0x0304, DataType: 1,
			Seq: seq, ConnId: 1, Host: "api.example.test", Method: "POST",
			Path: fmt.Sprintf("/api/items?n=%d", seq), ContentType: "application/json",
		}},
	}
}

// waitFor polls cond; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run starts s and returns a function that stops it and waits.
func run(t *testing.T, s *Sink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func newBroker() (*broker.Broker, *stats.Set) {
	st := stats.NewSet()
	return broker.New(broker.Options{}, st), st
}

func fastOpts(f Format) Options {
	return Options{Format: f, BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
}

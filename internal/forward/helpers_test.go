package forward

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// entry wraps ev as the pipeline publishes it.
func entry(ev *eventpb.Event) *eventpb.LogEntry {
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev},
	}
}

// httpRequest builds a request event the way the pipeline does: payload
// rendered as HTTP/1.1 text, metadata fields filled in, sender = client.
func httpRequest(seq uint64, method, host, path, ctype string, header map[string]string, body string) *eventpb.Event {
	var h string
	h += "Host: " + host + "\r\n"
	for _, k := range slices.Sorted(maps.Keys(header)) {
		h += k + ": " + header[k] + "\r\n"
	}
	if ctype != "" {
		h += "Content-Type: " + ctype + "\r\n"
	}
	if body != "" {
		h += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	payload := method + " " + path + " HTTP/1.1\r\n" + h + "\r\n" + body
	return &eventpb.Event{
		Timestamp: 1764115200000000000 + int64(seq)*1000,
		Uuid:      fmt.Sprintf("4242_4243_curl_5_1_%d", seq),
		SrcIp:     "127.0.0.1", SrcPort: 40000,
		DstIp: "127.0.0.1", DstPort: 443,
		Pid: 4242, Pname: "curl", Type: 1,
		Length: uint32(len(payload)), Payload: []byte(payload),
		Tid: 4243, Fd: 5, Version: 0x0304, DataType: 1,
		Seq: seq, ConnId: seq, Host: host, Method: method, Path: path, ContentType: ctype,
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// start runs f and returns a function that stops it and waits.
func start(t *testing.T, f *Forwarder) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
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

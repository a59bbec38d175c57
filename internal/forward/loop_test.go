package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// readSide turns a client-side request event into another capture of it:
// the server's read (data_type 0, same sender and receiver) or a response.
func readSide(ev *eventpb.Event, seq uint64) *eventpb.Event {
	c := proto.Clone(ev).(*eventpb.Event)
	c.Seq, c.DataType, c.Pid, c.Pname = seq, 0, 99, "nginx"
	return c
}

func response(seq, reqSeq uint64, dataType uint32, src, dst uint32) *eventpb.Event {
	return &eventpb.Event{Type: 3, Seq: seq, RequestSeq: reqSeq, DataType: dataType,
		SrcIp: "127.0.0.1", SrcPort: src, DstIp: "127.0.0.1", DstPort: dst,
		Payload: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")}
}

func TestLoopGuard(t *testing.T) {
	plain := httpRequest(1, "GET", "a.example", "/", "", nil, "")
	marked := httpRequest(2, "GET", "a.example", "/", "", map[string]string{"x-tlstap-forwarded": "abc-1"}, "")
	marked.SrcPort = 40001
	noTuple := httpRequest(3, "GET", "a.example", "/", "", nil, "")
	noTuple.SrcPort, noTuple.DstPort, noTuple.DataType = 0, 0, 0
	onlyServer := readSide(httpRequest(4, "GET", "a.example", "/", "", nil, ""), 4)
	onlyServer.SrcPort = 40004

	tests := []struct {
		name string
		ev   *eventpb.Event
		skip bool
	}{
		{"client's request", plain, false},
		{"server's copy of it", readSide(plain, 10), true},
		{"server's response (written)", response(11, 10, 1, 443, 40000), false},
		{"client's read of the response", response(12, 1, 0, 443, 40000), true},
		{"tlstap's replay, client side", marked, true},
		{"tlstap's replay, server side", readSide(marked, 13), true},
		{"response to the replay", response(14, 13, 1, 443, 40001), true},
		{"response to the replay, read by the proxy", response(15, 2, 0, 443, 40001), true},
		{"read with no tuple", noTuple, false},
		{"request only the server captured", onlyServer, false},
	}
	var g loopGuard
	for _, tt := range tests { // in order: the guard remembers
		if got := g.skip(tt.ev); got != tt.skip {
			t.Errorf("%s: skip = %v, want %v", tt.name, got, tt.skip)
		}
	}
}

// TestLoopGuardLateSender: a receiver's copy published before its
// sender's is held, and dropped once the sender's copy shows up; one
// whose sender never shows up is released.
func TestLoopGuardLateSender(t *testing.T) {
	var g loopGuard
	client := httpRequest(1, "GET", "a.example", "/", "", nil, "")
	early := readSide(client, 2) // the server's read, published first
	alone := readSide(httpRequest(3, "GET", "a.example", "/", "", nil, ""), 3)
	alone.SrcPort = 41000
	if g.skip(early) || g.skip(alone) {
		t.Fatal("receiver's copies skipped before their sender was seen")
	}
	if g.skip(client) {
		t.Fatal("sender's copy skipped")
	}
	ctx := context.Background()
	if g.release(ctx, early.GetSeq()) {
		t.Error("held copy released although its sender's copy arrived")
	}
	if !g.release(ctx, alone.GetSeq()) {
		t.Error("held copy with no captured sender not released")
	}
	if !g.release(ctx, client.GetSeq()) {
		t.Error("sender's copy held")
	}
}

func TestMarked(t *testing.T) {
	tests := []struct {
		payload string
		want    bool
	}{
		{"GET / HTTP/1.1\r\nX-Tlstap-Forwarded: x\r\n\r\n", true},
		{"GET / HTTP/2\r\nx-tlstap-forwarded: x\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nX-Other: X-Tlstap-Forwarded: x\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nContent-Length: 24\r\n\r\nX-Tlstap-Forwarded: body", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := marked([]byte(tt.payload)); got != tt.want {
			t.Errorf("marked(%q) = %v, want %v", tt.payload, got, tt.want)
		}
	}
}

// TestSentRequestsAreMarked: what a forwarder sends carries the run's
// mark, and the capture of it is then not forwarded again.
func TestSentRequestsAreMarked(t *testing.T) {
	for _, mode := range []Mode{Webhook, Proxy} {
		t.Run(string(mode), func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Header.Get(MarkHeader))
				mu.Unlock()
			}))
			defer srv.Close()
			b, _ := newBroker()
			// In proxy mode the test server is the proxy: plain-http
			// replays reach it as absolute-form requests.
			f, err := New(Options{URLs: []string{srv.URL}, Mode: mode, Scheme: "http"}, b, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, f)
			defer stop()
			b.Publish(entry(httpRequest(0, "GET", "a.example", "/x", "", nil, "")))
			waitFor(t, "the forwarded request", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
			mu.Lock()
			mark := got[0]
			mu.Unlock()
			if !strings.HasPrefix(mark, RunNonce+"-") {
				t.Fatalf("%s = %q, want the run's nonce %q", MarkHeader, mark, RunNonce)
			}
			// The replay, captured at the proxy or the server, comes back.
			again := httpRequest(0, "GET", "a.example", "/x", "", map[string]string{MarkHeader: mark}, "")
			again.SrcPort = 40100
			b.Publish(entry(again))
			// Then a fresh request: once it arrived, the marked one had its chance.
			fresh := httpRequest(0, "GET", "a.example", "/fresh", "", nil, "")
			fresh.SrcPort = 40200
			b.Publish(entry(fresh))
			waitFor(t, "the fresh request", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 2 })
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 2 {
				t.Errorf("forwarded %d requests, want 2 (the marked capture skipped)", len(got))
			}
		})
	}
}

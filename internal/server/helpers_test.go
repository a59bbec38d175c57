package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	"github.com/tlstap/tlstap/internal/server/tlsauth"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// testServer is a running server on loopback ports chosen by the kernel.
type testServer struct {
	*server.Server
	b     *broker.Broker
	st    *stats.Set
	stop  func() error
	token string
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a server with opts; Listen defaults to 127.0.0.1:0 and
// StateDir to a fresh temporary directory. It stops at test cleanup.
func start(t testing.TB, opts server.Options, bopts broker.Options) *testServer {
	t.Helper()
	return startWith(t, opts, bopts, testLogger())
}

// startLogged is start with the server's log going to log.
func startLogged(t testing.TB, opts server.Options, log *slog.Logger) *testServer {
	t.Helper()
	return startWith(t, opts, broker.Options{}, log)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startWith(t testing.TB, opts server.Options, bopts broker.Options, log *slog.Logger) *testServer {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Listen == "-" {
		opts.Listen = ""
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	st := stats.NewSet()
	b := broker.New(bopts, st)
	s, err := server.New(opts, b, st, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ts := &testServer{Server: s, b: b, st: st, token: s.Token()}
	stopped := false
	var runErr error
	ts.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
			b.Close()
		}
		return runErr
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ts
}

func (ts *testServer) wsURL(query string) string {
	scheme := "wss"
	if ts.Fingerprint() == (tlsauth.Fingerprint{}) {
		scheme = "ws"
	}
	u := scheme + "://" + ts.Addr().String() + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// httpClient trusts exactly the server's certificate.
func (ts *testServer) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsauth.PinnedConfig(ts.Fingerprint())}}
}

// dial opens a raw coder/websocket connection with the token as a bearer
// header; extra headers may override it.
func (ts *testServer) dial(t testing.TB, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + ts.token}}
	for k, v := range hdr {
		h[k] = v
	}
	hc := ts.httpClient()
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ts.wsURL(query), &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if c != nil {
		c.SetReadLimit(-1)
	}
	return c, resp, err
}

// mustDial is dial that fails the test on error.
func (ts *testServer) mustDial(t testing.TB, query string) *websocket.Conn {
	t.Helper()
	c, _, err := ts.dial(t, query, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// readEntry reads and decodes one message.
func readEntry(t testing.TB, c *websocket.Conn) *eventpb.LogEntry {
	t.Helper()
	m, err := tryRead(c, 10*time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func tryRead(c *websocket.Conn, timeout time.Duration) (*eventpb.LogEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, fmt.Errorf("message type %v, want binary", typ)
	}
	m := new(eventpb.LogEntry)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// nextNonHeartbeat skips heartbeats.
func nextNonHeartbeat(t testing.TB, c *websocket.Conn) *eventpb.LogEntry {
	t.Helper()
	for {
		m := readEntry(t, c)
		if m.GetLogType() != eventpb.LogType_LOG_TYPE_HEARTBEAT {
			return m
		}
	}
}

// event builds an entry whose every field depends on seq, so a field
// crossed with another event's shows up.
func event(seq uint64) *eventpb.LogEntry {
	i := int64(seq)
	return &eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_EVENT,
		Payload: &eventpb.LogEntry_EventPayload{EventPayload: &eventpb.Event{
			Timestamp:        1_700_000_000_000_000_000 + i,
			Uuid:             fmt.Sprintf("%d_%d_curl_%d_1_%d", 1000+i%7, 2000+i, 3+i%5, i),
			SrcIp:            "127.0.0.1",
			SrcPort:          uint32(40000 + seq%1000),
			DstIp:            "::1",
			DstPort:          uint32(443 + seq%3),
			Pid:              1000 + i%7,
			Pname:            []string{"curl", "python3", "node"}[seq%3],
			Type:             uint32(seq % 6),
			Length:           uint32(16 + seq%16),
			Payload:          []byte(fmt.Sprintf("payload %08d %s", seq, "xxxxxxxxxxxxxxxx"[:seq%16])),
			Tid:              2000 + i,
			Fd:               uint32(3 + seq%5),
			Version:          0x0304,
			DataType:         uint32(seq % 2),
			Seq:              seq,
			ConnId:           1 + seq/10,
			StreamId:         uint32(seq % 4 * 2),
			RequestSeq:       seq / 2,
			LatencyNs:        i * 1000,
			Truncated:        seq%5 == 0,
			TransferEncoding: "chunked",
			ContentEncoding:  "gzip",
			Uid:              uint32(seq % 1001),
			Incomplete:       seq%7 == 0,
			WsOpcode:         uint32(seq % 3),
			WsCloseCode:      uint32(1000 + seq%3),
			Host:             []string{"example.com", "api.example.com:8443", "other.org"}[seq%3],
			OriginalLength:   seq * 3,
			Method:           "GET",
			Path:             fmt.Sprintf("/item/%d", seq),
			Status:           200,
			ContentType:      "text/plain",
		}},
	}
}

func processLog(msg string) *eventpb.LogEntry {
	return &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: msg}}
}

// waitFor polls cond; used for state that changes on another goroutine
// without a signal (client counts, counters).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// prebuild returns events base+1..base+n, built before timing starts.
func prebuild(base uint64, n int) []*eventpb.LogEntry {
	msgs := make([]*eventpb.LogEntry, n)
	for i := range msgs {
		msgs[i] = event(base + uint64(i) + 1)
	}
	return msgs
}

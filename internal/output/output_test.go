package output_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ts = int64(1_750_000_000_123_456_789)

// events covers every optional part of the renderings.
func events() []*eventpb.Event {
	return []*eventpb.Event{
		{
			Timestamp: ts, Seq: 1, Uuid: "10_11_curl_3_1_1", SrcIp: "127.0.0.1", SrcPort: 40000, DstIp: "127.0.0.2", DstPort: 443,
			Pid: 10, Tid: 11, Uid: 1000, Pname: "curl", Fd: 3, Type: 1, DataType: 1, Version: 0x0304, ConnId: 1,
			Host: "x.test", Method: "GET", Path: "/", TlsLibrary: "gotls", Payload: []byte("GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"),
		},
		{
			Timestamp: ts + 5e6, Seq: 2, SrcIp: "::1", SrcPort: 8443, DstIp: "::1", DstPort: 50000, Pid: 10, Pname: "curl",
			Fd: 0xffffffff, Type: 4, StreamId: 3, RequestSeq: 1, LatencyNs: 5e6, Status: 200, ContentType: "text/plain",
			ContentEncoding: "gzip", Truncated: true, OriginalLength: 1000, Payload: []byte("HTTP/2 200\r\n\r\nno newline at end"),
		},
		{
			Timestamp: ts + 6e6, Seq: 3, Pid: 10, Pname: "bin", Type: 0, Incomplete: true,
			Payload: []byte{0, 1, 2, 0xff, 'a', 'b', '\n'},
		},
		{Timestamp: ts + 7e6, Seq: 4, Pid: 10, Pname: "ws", Type: 5, WsOpcode: 8, WsCloseCode: 1000, Payload: []byte("bye")},
		{Timestamp: ts + 8e6, Seq: 5, Pid: 10, Pname: "ws", Type: 5, WsOpcode: 1, Payload: []byte("tab\tand\u00e9\r\n")},
		{Timestamp: ts + 9e6, Seq: 6, Pid: 10, Pname: "esc", Type: 0, Payload: []byte("bell\a")},
		{Timestamp: ts + 9e6, Seq: 7, Pid: 10, Pname: "empty", Type: 99},
	}
}

func render(t *testing.T, r output.Renderer) string {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range events() {
		ev.Length = uint32(len(ev.Payload))
		if err := r.Render(&b, ev); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	for _, tt := range []struct {
		file string
		r    output.Renderer
	}{
		{"text.golden", output.New(output.Text, false)},
		{"hex.golden", output.New(output.Text, true)},
		{"json.golden", output.New(output.JSON, false)},
	} {
		t.Run(tt.file, func(t *testing.T) { golden.Check(t, filepath.Join("testdata", tt.file), []byte(render(t, tt.r))) })
	}
}

func TestJSONFields(t *testing.T) {
	var b bytes.Buffer
	evs := events()
	for _, ev := range evs {
		if err := (output.JSONRenderer{}).Render(&b, ev); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("%d lines for %d events", len(lines), len(evs))
	}
	for i, l := range lines {
		var j output.JSONEvent
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		ev := evs[i]
		var payload []byte
		switch j.PayloadEncoding {
		case "utf8":
			payload = []byte(j.Payload)
		case "base64":
			var err error
			if payload, err = base64.StdEncoding.DecodeString(j.Payload); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("payload_encoding %q", j.PayloadEncoding)
		}
		if !bytes.Equal(payload, ev.GetPayload()) {
			t.Errorf("event %d payload %q, want %q", i+1, payload, ev.GetPayload())
		}
		if j.Seq != ev.GetSeq() || j.Timestamp != ev.GetTimestamp() || j.Status != ev.GetStatus() || j.StreamID != ev.GetStreamId() {
			t.Errorf("event %d: %+v", i+1, j)
		}
	}
	// fd is stored as uint32; -1 (unknown) must come back as -1.
	if !strings.Contains(lines[1], `"fd":-1`) {
		t.Errorf("unknown fd not shown as -1: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"payload_encoding":"base64"`) {
		t.Errorf("invalid UTF-8 payload not base64: %s", lines[2])
	}
}

func TestParseFormat(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{{"text", true}, {"json", true}, {"none", true}, {"", false}, {"JSON", false}, {"xml", false}} {
		f, err := output.ParseFormat(tt.in)
		if (err == nil) != tt.ok || (tt.ok && string(f) != tt.in) {
			t.Errorf("ParseFormat(%q) = %q, %v", tt.in, f, err)
		}
	}
	if output.New(output.None, false) != nil {
		t.Error("New(None) is not nil")
	}
}

func TestRun(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	sub := b.Subscribe(broker.SubOptions{Policy: broker.Block})
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- output.Run(context.Background(), sub, &out, output.TextRenderer{}) }()
	for _, ev := range events()[:2] {
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}})
	}
	// Process logs are not events: not rendered.
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "log line"}})
	b.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, " #") != 2 || strings.Contains(got, "log line") {
		t.Errorf("output:\n%s", got)
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestRunWriteError(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	defer b.Close()
	sub := b.Subscribe(broker.SubOptions{})
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: events()[0]}})
	if err := output.Run(context.Background(), sub, failWriter{}, output.TextRenderer{}); !errors.Is(err, errWrite) {
		t.Errorf("Run: %v, want the write error", err)
	}
}

func TestRunCancel(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	defer b.Close()
	sub := b.Subscribe(broker.SubOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := output.Run(ctx, sub, &bytes.Buffer{}, output.JSONRenderer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
}

// Output is flushed whenever the queue runs dry, not on a timer or at the
// end: one event, then a burst, each reaches the reader whole while the
// stream stays open and nothing follows.
func TestRunFlushesWhenDry(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	defer b.Close()
	sub := b.Subscribe(broker.SubOptions{Policy: broker.Block, Queue: 1024})
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- output.Run(ctx, sub, pw, output.JSONRenderer{}) }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		pw.Close()
		for range lines {
		}
	}()

	publish := func(n int) {
		for range n {
			b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT,
				Payload: &eventpb.LogEntry_EventPayload{EventPayload: events()[0]}})
		}
	}
	expect := func(n int) {
		t.Helper()
		fail := time.After(10 * time.Second) // a deadline for failure, not a timing assertion
		for i := range n {
			select {
			case <-lines:
			case <-fail:
				t.Fatalf("%d of %d lines arrived; the rest is stuck in the buffer", i, n)
			}
		}
	}
	publish(1)
	expect(1)
	publish(500)
	expect(500)
}

// countingWriter counts the writes it is given.
type countingWriter struct{ writes int }

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return len(p), nil }

// TestNewWriterWritesNothing: the renderings NewWriter does to warm the
// encoders go nowhere; the writer's output starts with the first event.
func TestNewWriterWritesNothing(t *testing.T) {
	for _, f := range []output.Format{output.Text, output.JSON, output.None} {
		var c countingWriter
		w := output.NewWriter(&c, output.New(f, false))
		w.Flush()
		if c.writes != 0 {
			t.Fatalf("%v: NewWriter wrote %d times", f, c.writes)
		}
	}
}

package har

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/demo"
	"github.com/tlstap/tlstap/internal/exporttest"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/pipeline"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

type collect []*eventpb.Event

func (c *collect) Publish(m *eventpb.LogEntry) {
	if ev := m.GetEventPayload(); ev != nil {
		*c = append(*c, ev)
	}
}

// demoEvents plays the embedded demo recording, with its own timestamps,
// through a pipeline driven by the recording's clock: the same events on
// every run.
func demoEvents(t testing.TB) []*eventpb.Event {
	t.Helper()
	src, err := replay.New(replay.Options{Open: func() (io.ReadCloser, error) { return demo.Open() }, Name: "demo", Speed: 0})
	if err != nil {
		t.Fatal(err)
	}
	var evs collect
	p := pipeline.New(pipeline.Options{VirtualClock: true}, &evs)
	ch := make(chan capture.Chunk, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		errc <- src.Run(t.Context(), ch)
	}()
	if err := p.Run(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return evs
}

func render(t testing.TB, evs []*eventpb.Event, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, opts)
	for _, ev := range evs {
		if err := w.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b.Bytes()) {
		t.Fatalf("not JSON:\n%s", b.Bytes())
	}
	return b.Bytes()
}

// The demo's HAR: golden, schema-valid, and matching its events.
func TestDemoGolden(t *testing.T) {
	evs := demoEvents(t)
	out := render(t, evs, Options{Version: "test"})
	path := filepath.Join("testdata", "demo.har")
	golden.Check(t, path, out)

	tmp := filepath.Join(t.TempDir(), "demo.har")
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		t.Fatal(err)
	}
	exporttest.ValidateHAR(t, tmp)
	exporttest.CheckHAR(t, exporttest.ReadHAR(t, tmp), evs)
}

// The validator is not a rubber stamp: it rejects a HAR missing a
// required field.
func TestValidatorRejects(t *testing.T) {
	out := render(t, demoEvents(t), Options{})
	bad := bytes.Replace(out, []byte(`"startedDateTime"`), []byte(`"startedAt"`), 1)
	path := filepath.Join(t.TempDir(), "bad.har")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	ft := &fakeT{TB: t}
	exporttest.ValidateHAR(ft, path)
	if !ft.failed {
		t.Error("the validator accepted an entry without startedDateTime")
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}

func ev(seq uint64, typ uint32, payload string, mod ...func(*eventpb.Event)) *eventpb.Event {
	e := &eventpb.Event{Seq: seq, Type: typ, Payload: []byte(payload), Timestamp: int64(seq) * 1e6, ConnId: 1,
		SrcIp: "127.0.0.1", SrcPort: 40000, DstIp: "127.0.0.2", DstPort: 443, Pid: 7, Pname: "curl"}
	if typ == 3 || typ == 4 {
		e.SrcPort, e.DstPort = 443, 40000
		e.SrcIp, e.DstIp = e.DstIp, e.SrcIp
	}
	for _, m := range mod {
		m(e)
	}
	return e
}

func answers(seq uint64, status uint32) func(*eventpb.Event) {
	return func(e *eventpb.Event) { e.RequestSeq, e.Status, e.LatencyNs = seq, status, 2e6 }
}

type harDoc struct {
	Log struct {
		Entries []map[string]any `json:"entries"`
	} `json:"log"`
}

func TestWriterCases(t *testing.T) {
	get := "GET /a?x=1&y=%20z HTTP/1.1\r\nHost: example.com\r\nCookie: a=1; b=2\r\n\r\n"
	ok := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello"
	tests := []struct {
		name  string
		opts  Options
		evs   []*eventpb.Event
		check func(t *testing.T, entries []map[string]any)
	}{
		{"pair", Options{}, []*eventpb.Event{ev(1, 1, get), ev(2, 3, ok, answers(1, 200))}, func(t *testing.T, es []map[string]any) {
			want(t, es, 1)
			req := es[0]["request"].(map[string]any)
			eq(t, req["url"], "https://example.com/a?x=1&y=%20z")
			eq(t, len(req["queryString"].([]any)), 2)
			eq(t, len(req["cookies"].([]any)), 2)
			eq(t, es[0]["timings"].(map[string]any)["wait"], 2.0)
			eq(t, es[0]["response"].(map[string]any)["statusText"], "OK")
		}},
		{"interim response does not complete the entry", Options{}, []*eventpb.Event{
			ev(1, 1, get), ev(2, 3, "HTTP/1.1 100 Continue\r\n\r\n", answers(1, 100)), ev(3, 3, ok, answers(1, 200))},
			func(t *testing.T, es []map[string]any) {
				want(t, es, 1)
				eq(t, es[0]["response"].(map[string]any)["status"], 200.0)
			}},
		{"response without its request", Options{}, []*eventpb.Event{ev(2, 4, "HTTP/2 404\r\n\r\n", answers(1, 404), func(e *eventpb.Event) {
			e.Host, e.Path, e.Method = "api.example.com", "/gone", "DELETE"
		})}, func(t *testing.T, es []map[string]any) {
			want(t, es, 1)
			eq(t, es[0]["request"].(map[string]any)["url"], "https://api.example.com/gone")
			eq(t, es[0]["request"].(map[string]any)["httpVersion"], "http/2.0")
			eq(t, es[0]["_tlstap"].(map[string]any)["requestMissing"], true)
		}},
		{"unanswered requests beyond MaxPending are written without a response", Options{MaxPending: 1}, []*eventpb.Event{
			ev(1, 1, get), ev(2, 1, get), ev(3, 3, ok, answers(2, 200))},
			func(t *testing.T, es []map[string]any) {
				want(t, es, 2)
				eq(t, es[0]["response"].(map[string]any)["status"], 0.0)
				eq(t, es[1]["response"].(map[string]any)["status"], 200.0)
			}},
		{"binary body is base64", Options{}, []*eventpb.Event{ev(1, 1, get), ev(2, 3, "HTTP/1.1 200 OK\r\n\r\n\xff\x00", answers(1, 200))},
			func(t *testing.T, es []map[string]any) {
				c := es[0]["response"].(map[string]any)["content"].(map[string]any)
				eq(t, c["encoding"], "base64")
				eq(t, c["text"], "/wA=")
			}},
		{"compressed body keeps its Content-Encoding", Options{}, []*eventpb.Event{ev(1, 1, get), ev(2, 3, ok, answers(1, 200), func(e *eventpb.Event) { e.ContentEncoding = "br" })},
			func(t *testing.T, es []map[string]any) {
				r := es[0]["response"].(map[string]any)
				eq(t, r["bodySize"], -1.0)
				hs := r["headers"].([]any)
				eq(t, hs[len(hs)-1].(map[string]any)["value"], "br")
			}},
		{"header block cut by --tsize", Options{}, []*eventpb.Event{ev(1, 1, "GET / HTTP/1.1\r\nHost: a\r\nX-Cu", func(e *eventpb.Event) { e.Truncated = true })},
			func(t *testing.T, es []map[string]any) {
				want(t, es, 1)
				req := es[0]["request"].(map[string]any)
				eq(t, req["headersSize"], -1.0)
				eq(t, len(req["headers"].([]any)), 1)
			}},
		{"websocket messages go to the session's entry", Options{}, []*eventpb.Event{
			ev(1, 1, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
			ev(2, 3, "HTTP/1.1 101 Switching Protocols\r\n\r\n", answers(1, 101)),
			ev(3, 5, "hi", func(e *eventpb.Event) { e.WsOpcode = 1 }),
			ev(4, 5, "\x00\x01", func(e *eventpb.Event) { e.WsOpcode = 2; e.SrcIp, e.SrcPort = "127.0.0.2", 443 }),
			ev(5, 5, "orphan", func(e *eventpb.Event) { e.WsOpcode = 1; e.ConnId = 9 })},
			func(t *testing.T, es []map[string]any) {
				want(t, es, 1)
				eq(t, es[0]["_resourceType"], "websocket")
				msgs := es[0]["_webSocketMessages"].([]any)
				eq(t, len(msgs), 2)
				eq(t, msgs[0].(map[string]any)["type"], "send")
				eq(t, msgs[1].(map[string]any)["type"], "receive")
				eq(t, msgs[1].(map[string]any)["data"], "AAE=")
			}},
		{"messages beyond MaxMessages are counted", Options{MaxMessages: 1}, []*eventpb.Event{
			ev(1, 1, get), ev(2, 3, "HTTP/1.1 101 Switching Protocols\r\n\r\n", answers(1, 101)),
			ev(3, 5, "a", func(e *eventpb.Event) { e.WsOpcode = 1 }), ev(4, 5, "b", func(e *eventpb.Event) { e.WsOpcode = 1 })},
			func(t *testing.T, es []map[string]any) {
				eq(t, len(es[0]["_webSocketMessages"].([]any)), 1)
				eq(t, es[0]["_tlstap"].(map[string]any)["webSocketDropped"], 1.0)
			}},
		{"not HTTP", Options{}, []*eventpb.Event{ev(1, 0, "\x00raw"), ev(2, 1, "garbage"), ev(3, 3, "", answers(2, 200))},
			func(t *testing.T, es []map[string]any) { want(t, es, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc harDoc
			if err := json.Unmarshal(render(t, tt.evs, tt.opts), &doc); err != nil {
				t.Fatal(err)
			}
			tt.check(t, doc.Log.Entries)
		})
	}
}

func want(t *testing.T, es []map[string]any, n int) {
	t.Helper()
	if len(es) != n {
		t.Fatalf("%d entries, want %d: %v", len(es), n, es)
	}
}

func eq[T comparable](t *testing.T, got any, want T) {
	t.Helper()
	if g, ok := got.(T); !ok || g != want {
		t.Errorf("got %v (%T), want %v", got, got, want)
	}
}

func TestAddAfterClose(t *testing.T) {
	w := NewWriter(io.Discard, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ev(1, 1, "GET / HTTP/1.1\r\n\r\n")); err != ErrClosed {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(); err != ErrClosed {
		t.Errorf("second Close: %v", err)
	}
}

// An empty run is still a valid, empty HAR.
func TestEmpty(t *testing.T) {
	out := render(t, nil, Options{})
	if !strings.Contains(string(out), `"entries":[`) {
		t.Errorf("%s", out)
	}
}

// A message shown while it flowed (head, parts, end) is one HAR entry with
// the whole body; one cut off by the export's end is written as far as it
// got, marked incomplete.
func TestStreamedParts(t *testing.T) {
	head := func(seq, reqSeq uint64, typ uint32, payload string) *eventpb.Event {
		return &eventpb.Event{Seq: seq, MessageSeq: seq, RequestSeq: reqSeq, Type: typ, Part: eventpb.PartKind_PART_KIND_HEAD,
			Timestamp: int64(seq) * 1e6, SrcIp: "127.0.0.1", SrcPort: 443, DstIp: "127.0.0.1", DstPort: 40000, Host: "sse.test", Payload: []byte(payload)}
	}
	part := func(seq, msg uint64, kind eventpb.PartKind, payload string) *eventpb.Event {
		return &eventpb.Event{Seq: seq, MessageSeq: msg, Type: 3, Part: kind, Payload: []byte(payload)}
	}
	req := func(seq uint64, path string) *eventpb.Event {
		return &eventpb.Event{Seq: seq, Type: 1, Timestamp: int64(seq) * 1e6, SrcIp: "127.0.0.1", SrcPort: 40000, DstIp: "127.0.0.1", DstPort: 443,
			Host: "sse.test", Method: "GET", Path: path, Payload: []byte("GET " + path + " HTTP/1.1\r\nHost: sse.test\r\n\r\n")}
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{})
	for _, ev := range []*eventpb.Event{
		req(1, "/events"),
		head(2, 1, 3, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"),
		part(3, 2, eventpb.PartKind_PART_KIND_PART, "data: 1\n\n"),
		part(4, 2, eventpb.PartKind_PART_KIND_PART, "data: 2\n\n"),
		part(5, 2, eventpb.PartKind_PART_KIND_END, ""),
		req(6, "/forever"),
		head(7, 6, 3, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"),
		part(8, 7, eventpb.PartKind_PART_KIND_PART, "data: x\n\n"),
		part(9, 99, eventpb.PartKind_PART_KIND_PART, "head never seen"),
	} {
		if err := w.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Log struct {
			Entries []struct {
				Request  struct{ URL string }
				Response struct {
					Status  int
					Content struct{ Text string }
				}
				Incomplete bool `json:"_incomplete"`
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	got := doc.Log.Entries
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2:\n%s", len(got), buf.Bytes())
	}
	if got[0].Response.Content.Text != "data: 1\n\ndata: 2\n\n" || got[0].Response.Status != 200 {
		t.Errorf("entry 0: %+v", got[0])
	}
	if got[1].Response.Content.Text != "data: x\n\n" {
		t.Errorf("entry 1 (cut off): %+v", got[1])
	}
}

// Any sequence of events, whatever their payloads, gives valid JSON.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\nbody"), uint8(1), uint32(200), []byte("ws"))
	f.Add([]byte("POST / HTTP/2\r\nHost: x\r\n\r\n\xff"), []byte("HTTP/2 101\r\n\r\n"), uint8(2), uint32(101), []byte{0xff})
	f.Add([]byte("\r\n\r\n"), []byte(" : \r\n"), uint8(9), uint32(0), []byte(nil))
	f.Fuzz(func(t *testing.T, req, resp []byte, typ uint8, status uint32, ws []byte) {
		var b bytes.Buffer
		w := NewWriter(&b, Options{MaxPending: 2, MaxWebSockets: 1, MaxMessages: 2})
		reqType := uint32(typ%2) + 1
		evs := []*eventpb.Event{
			{Seq: 1, Type: reqType, Payload: req, ConnId: 1},
			{Seq: 2, Type: reqType + 2, Payload: resp, Status: status, RequestSeq: 1, ConnId: 1},
			{Seq: 3, Type: 5, Payload: ws, WsOpcode: uint32(typ), ConnId: 1},
			{Seq: 4, Type: uint32(typ), Payload: req, RequestSeq: uint64(typ), ConnId: 2},
			{Seq: 5, Type: 3, Payload: resp, RequestSeq: 4, Status: 101, ConnId: 2},
			{Seq: 6, Type: 5, Payload: ws, ConnId: 2},
		}
		for _, ev := range evs {
			if err := w.Add(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b.Bytes()) {
			t.Fatalf("not JSON: %q", b.Bytes())
		}
	})
}

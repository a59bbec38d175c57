package exporttest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"google.golang.org/protobuf/proto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// HAR is the part of a HAR document the checks read.
type HAR struct {
	Log struct {
		Version string  `json:"version"`
		Entries []Entry `json:"entries"`
	} `json:"log"`
}

// Entry is one HAR entry, as far as the checks read it.
type Entry struct {
	Request struct {
		Method      string `json:"method"`
		URL         string `json:"url"`
		HTTPVersion string `json:"httpVersion"`
		PostData    *struct {
			Text string `json:"text"`
		} `json:"postData"`
	} `json:"request"`
	Response struct {
		Status      int    `json:"status"`
		HTTPVersion string `json:"httpVersion"`
		Content     struct {
			Size     int    `json:"size"`
			Text     string `json:"text"`
			Encoding string `json:"encoding"`
		} `json:"content"`
	} `json:"response"`
	ResourceType string `json:"_resourceType"`
	WebSocket    []struct {
		Type   string  `json:"type"`
		Time   float64 `json:"time"`
		Opcode int     `json:"opcode"`
		Data   string  `json:"data"`
	} `json:"_webSocketMessages"`
	TLSTap struct {
		PID         int64  `json:"pid"`
		Comm        string `json:"comm"`
		ConnID      uint64 `json:"connId"`
		RequestSeq  uint64 `json:"requestSeq"`
		ResponseSeq uint64 `json:"responseSeq"`
	} `json:"_tlstap"`
}

// ReadHAR parses the HAR file at path.
func ReadHAR(t testing.TB, path string) HAR {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h HAR
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	return h
}

// ValidateHAR runs the HAR 1.2 schema validator on path and fails t with
// its errors if the file is invalid.
func ValidateHAR(t testing.TB, path string) {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "validator")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "har-validator")); err != nil {
		t.Fatalf("the HAR validator is not installed (run scripts/install-deps.sh): %v", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "validate.js", abs)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("HAR validator: %v\n%s", err, out)
	}
}

// Body returns an HTTP event's body: the payload after the header block.
func Body(ev *eventpb.Event) []byte {
	_, body, _ := bytes.Cut(ev.GetPayload(), []byte("\r\n\r\n"))
	return body
}

// CheckHAR compares a HAR document with the events of the same run: one
// entry per request, each response's status and body in the entry of its
// request, HTTP/2 entries marked http/2.0, and every WebSocket message of
// a session in its entry, in order.
func CheckHAR(t testing.TB, h HAR, evs []*eventpb.Event) {
	t.Helper()
	evs = Whole(evs)
	if h.Log.Version != "1.2" {
		t.Errorf("log.version %q", h.Log.Version)
	}
	byReq := map[uint64]*Entry{}
	for i := range h.Log.Entries {
		e := &h.Log.Entries[i]
		if byReq[e.TLSTap.RequestSeq] != nil {
			t.Errorf("two entries for request seq %d", e.TLSTap.RequestSeq)
		}
		byReq[e.TLSTap.RequestSeq] = e
	}
	requests := 0
	wsByConn := map[uint64][]*eventpb.Event{}
	for _, ev := range evs {
		typ := decoder.Type(ev.GetType())
		switch typ {
		case decoder.HTTP1Request, decoder.HTTP2Request:
			requests++
			e := byReq[ev.GetSeq()]
			if e == nil {
				t.Errorf("no entry for request #%d %s %s", ev.GetSeq(), ev.GetMethod(), ev.GetPath())
				continue
			}
			if e.Request.Method != ev.GetMethod() {
				t.Errorf("request #%d: method %q, want %q", ev.GetSeq(), e.Request.Method, ev.GetMethod())
			}
			if body := Body(ev); len(body) > 0 && (e.Request.PostData == nil || e.Request.PostData.Text != string(body)) {
				t.Errorf("request #%d: postData %+v, want %q", ev.GetSeq(), e.Request.PostData, body)
			}
			wantVer := "HTTP/1.1"
			if typ == decoder.HTTP2Request {
				wantVer = "http/2.0"
			}
			if e.Request.HTTPVersion != wantVer || e.Response.HTTPVersion != wantVer {
				t.Errorf("request #%d: httpVersion %q / %q, want %q", ev.GetSeq(), e.Request.HTTPVersion, e.Response.HTTPVersion, wantVer)
			}
		case decoder.HTTP1Response, decoder.HTTP2Response:
			if s := ev.GetStatus(); s >= 100 && s < 200 && s != 101 {
				continue
			}
			e := byReq[ev.GetRequestSeq()]
			if e == nil {
				t.Errorf("no entry for the request of response #%d", ev.GetSeq())
				continue
			}
			if e.TLSTap.ResponseSeq != ev.GetSeq() || e.Response.Status != int(ev.GetStatus()) {
				t.Errorf("entry of request #%d: response #%d status %d, want #%d status %d", ev.GetRequestSeq(),
					e.TLSTap.ResponseSeq, e.Response.Status, ev.GetSeq(), ev.GetStatus())
			}
			got := []byte(e.Response.Content.Text)
			if e.Response.Content.Encoding == "base64" {
				var err error
				if got, err = base64.StdEncoding.DecodeString(e.Response.Content.Text); err != nil {
					t.Errorf("response #%d: content not base64: %v", ev.GetSeq(), err)
				}
			}
			if !bytes.Equal(got, Body(ev)) || e.Response.Content.Size != len(Body(ev)) {
				t.Errorf("response #%d: content %q (size %d), want %q", ev.GetSeq(), got, e.Response.Content.Size, Body(ev))
			}
			if e.TLSTap.PID != ev.GetPid() || e.TLSTap.Comm != ev.GetPname() {
				t.Errorf("response #%d: _tlstap pid %d comm %q, want %d %q", ev.GetSeq(), e.TLSTap.PID, e.TLSTap.Comm, ev.GetPid(), ev.GetPname())
			}
		case decoder.WebSocket:
			wsByConn[ev.GetConnId()] = append(wsByConn[ev.GetConnId()], ev)
		}
	}
	if len(h.Log.Entries) != requests {
		t.Errorf("%d entries for %d requests", len(h.Log.Entries), requests)
	}
	sessions := 0
	for _, e := range h.Log.Entries {
		if e.ResourceType != "websocket" {
			continue
		}
		sessions++
		msgs := wsByConn[e.TLSTap.ConnID]
		if len(e.WebSocket) != len(msgs) {
			t.Errorf("WebSocket entry of connection %d: %d messages, the run had %d", e.TLSTap.ConnID, len(e.WebSocket), len(msgs))
			continue
		}
		for i, m := range e.WebSocket {
			data := []byte(m.Data)
			if m.Opcode == 2 {
				data, _ = base64.StdEncoding.DecodeString(m.Data)
			}
			if m.Opcode != int(msgs[i].GetWsOpcode()) || !bytes.Equal(data, msgs[i].GetPayload()) {
				t.Errorf("WebSocket message %d: opcode %d data %q, want %d %q", i, m.Opcode, data, msgs[i].GetWsOpcode(), msgs[i].GetPayload())
			}
		}
	}
	if sessions != len(wsByConn) {
		t.Errorf("%d WebSocket entries for %d sessions", sessions, len(wsByConn))
	}
}

// Whole folds messages shown while they flowed (head, body parts, end)
// back into one event each, at the head's place: the head's event with
// the parts' bytes after its header block. Exports show whole messages,
// so their checks compare against these.
func Whole(evs []*eventpb.Event) []*eventpb.Event {
	out := make([]*eventpb.Event, 0, len(evs))
	heads := map[uint64]*eventpb.Event{}
	for _, ev := range evs {
		switch ev.GetPart() {
		case eventpb.PartKind_PART_KIND_HEAD:
			h := proto.Clone(ev).(*eventpb.Event)
			h.Part = eventpb.PartKind_PART_KIND_WHOLE
			heads[ev.GetSeq()] = h
			out = append(out, h)
		case eventpb.PartKind_PART_KIND_PART, eventpb.PartKind_PART_KIND_END:
			if h := heads[ev.GetMessageSeq()]; h != nil {
				h.Payload = append(h.Payload, ev.GetPayload()...)
				h.Length = uint32(len(h.Payload))
			}
		default:
			out = append(out, ev)
		}
	}
	return out
}

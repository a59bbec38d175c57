package forward

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

type hit struct {
	method, ctype, seq string
	body               []byte
}

// hook is a webhook receiver answering with statuses in turn (then 200).
type hook struct {
	mu       sync.Mutex
	hits     []hit
	statuses []int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.hits = append(h.hits, hit{r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Tlstap-Seq"), b})
	status := http.StatusNoContent
	if len(h.statuses) > 0 {
		status, h.statuses = h.statuses[0], h.statuses[1:]
	}
	h.mu.Unlock()
	w.WriteHeader(status)
}

func (h *hook) got() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hit(nil), h.hits...)
}

// fullEvent sets every field, binary payload included, so a field the
// webhook forgets shows up as a difference.
func fullEvent() *eventpb.Event {
	ev := httpRequest(7, "POST", "api.example.test", "/api/v1/items?x=1", "application/json", map[string]string{"Accept": "*/*"}, `{"a":1}`)
	ev.Payload = append(ev.Payload, 0xff, 0x00) // not UTF-8
	ev.Length = uint32(len(ev.Payload))
	ev.StreamId, ev.RequestSeq, ev.LatencyNs = 3, 6, 1500
	ev.Truncated, ev.Incomplete, ev.OriginalLength = true, true, 9999
	ev.TransferEncoding, ev.ContentEncoding = "chunked", "gzip"
	ev.Uid, ev.Status, ev.WsOpcode, ev.WsCloseCode = 1000, 201, 1, 1000
	return ev
}

func TestWebhookJSONGolden(t *testing.T) {
	got, err := WebhookJSON(fullEvent())
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	json.Indent(&indented, got, "", "  ")
	indented.WriteByte('\n')
	golden.Check(t, filepath.Join("testdata", "webhook.golden.json"), indented.Bytes())
}

func TestWebhookDeliversEveryField(t *testing.T) {
	for _, format := range []Format{JSON, Protobuf} {
		t.Run(string(format), func(t *testing.T) {
			h := &hook{}
			srv := httptest.NewServer(h)
			defer srv.Close()
			b, st := newBroker()
			f, err := New(Options{URLs: []string{srv.URL + "/hook"}, Format: format, Method: "PUT", Workers: 1}, b, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, f)
			defer stop()

			want := fullEvent()
			b.Publish(entry(want))
			waitFor(t, "the webhook", func() bool { return len(h.got()) == 1 })
			got := h.got()[0]
			if got.method != "PUT" || got.seq != "7" {
				t.Errorf("method %s seq %s, want PUT 7", got.method, got.seq)
			}
			switch format {
			case JSON:
				if got.ctype != "application/json" {
					t.Errorf("Content-Type = %q", got.ctype)
				}
				var j output.JSONEvent
				if err := json.Unmarshal(got.body, &j); err != nil {
					t.Fatal(err)
				}
				payload, err := base64.StdEncoding.DecodeString(j.Payload)
				if err != nil || j.PayloadEncoding != "base64" || !bytes.Equal(payload, want.Payload) {
					t.Errorf("payload %q (%s), err %v", payload, j.PayloadEncoding, err)
				}
				exp := output.ToJSON(want)
				j.Payload, j.PayloadEncoding = exp.Payload, exp.PayloadEncoding
				if j != exp {
					t.Errorf("fields:\n got %+v\nwant %+v", j, exp)
				}
			case Protobuf:
				if got.ctype != "application/x-protobuf" {
					t.Errorf("Content-Type = %q", got.ctype)
				}
				var e eventpb.LogEntry
				if err := proto.Unmarshal(got.body, &e); err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(&e, entry(want)) {
					t.Errorf("got %v", &e)
				}
			}
			waitFor(t, "the 2xx count", func() bool {
				return st.Value("tlstap_forward_responses_total", "mode", "webhook", "class", "2xx") == 1
			})
		})
	}
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		retries  int
		attempts int
		failed   float64
	}{
		{"5xx then success", []int{503, 500}, 3, 3, 0},
		{"5xx until giving up", []int{500, 502, 503, 504}, 3, 4, 1},
		{"4xx is final", []int{404}, 3, 1, 0},
		{"no retries", []int{500}, -1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &hook{statuses: tt.statuses}
			srv := httptest.NewServer(h)
			defer srv.Close()
			b, st := newBroker()
			f, err := New(Options{URLs: []string{srv.URL}, Workers: 1, Retries: tt.retries, BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond}, b, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, f)
			defer stop()
			b.Publish(entry(httpRequest(1, "GET", "a.example.test", "/", "", nil, "")))
			// A second event is only taken once the first is settled
			// (one worker), so its arrival means the first is done.
			b.Publish(entry(httpRequest(2, "GET", "a.example.test", "/", "", nil, "")))
			waitFor(t, "the second event", func() bool {
				hs := h.got()
				return len(hs) > 0 && hs[len(hs)-1].seq == "2"
			})
			attempts := 0
			for _, x := range h.got() {
				if x.seq == "1" {
					attempts++
				}
			}
			if attempts != tt.attempts {
				t.Errorf("%d attempts, want %d", attempts, tt.attempts)
			}
			if got := st.Value("tlstap_forward_retries_total", "mode", "webhook"); got != float64(tt.attempts-1) {
				t.Errorf("retries counter = %v, want %d", got, tt.attempts-1)
			}
			if got := st.Value("tlstap_forward_failed_total", "mode", "webhook"); got != tt.failed {
				t.Errorf("failed counter = %v, want %v", got, tt.failed)
			}
		})
	}
}

func TestWebhookConnectionErrorsRetry(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on
	b, st := newBroker()
	f, err := New(Options{URLs: []string{url}, Workers: 1, Retries: 2, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, f)
	defer stop()
	b.Publish(entry(httpRequest(1, "GET", "a.example.test", "/", "", nil, "")))
	waitFor(t, "giving up", func() bool { return st.Value("tlstap_forward_failed_total", "mode", "webhook") == 1 })
	if got := st.Value("tlstap_forward_responses_total", "mode", "webhook", "class", "error"); got != 3 {
		t.Errorf("error responses = %v, want 3 (1 + 2 retries)", got)
	}
}

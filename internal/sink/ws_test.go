package sink

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/output"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// wsReader records every message; each connection is closed by the
// server after closeAfter messages, standing in for a reader that dies.
type wsReader struct {
	closeAfter int
	mu         sync.Mutex
	msgs       []message
	conns      int
}

type message struct {
	typ  websocket.MessageType
	data []byte
}

func (r *wsReader) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	for n := 1; ; n++ {
		typ, data, err := c.Read(req.Context())
		if err != nil {
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, message{typ, data})
		r.mu.Unlock()
		if n == r.closeAfter {
			c.Close(websocket.StatusGoingAway, "reader restarting")
			return
		}
	}
}

func (r *wsReader) got() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.msgs...)
}

func (r *wsReader) connCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

func TestWSSinkProtobufReconnects(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "ws", true: "wss"}[secure]
		t.Run(name, func(t *testing.T) {
			rd := &wsReader{closeAfter: 20}
			var srv *httptest.Server
			opts := fastOpts(Protobuf)
			if secure {
				srv = httptest.NewTLSServer(rd)
				opts.TLS = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			} else {
				srv = httptest.NewServer(rd)
			}
			defer srv.Close()
			addr := name + "://" + strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://") + "/events"

			b, st := newBroker()
			s, err := New(addr, opts, b, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, s)
			defer stop()

			seq := uint64(0)
			// The reader drops the connection after 20 messages; keep
			// publishing until a second connection has carried some.
			waitFor(t, "messages over a second connection", func() bool {
				seq++
				b.Publish(request(seq))
				return rd.connCount() >= 2 && len(rd.got()) >= 30
			})
			prev := uint64(0)
			for i, m := range rd.got() {
				if m.typ != websocket.MessageBinary {
					t.Fatalf("message %d is %v, want binary", i, m.typ)
				}
				var e eventpb.LogEntry
				if err := proto.Unmarshal(m.data, &e); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !proto.Equal(&e, request(e.GetEventPayload().GetSeq())) {
					t.Fatalf("message %d differs from what was published", i)
				}
				if s := e.GetEventPayload().GetSeq(); s <= prev {
					t.Fatalf("message %d: seq %d after %d", i, s, prev)
				}
				prev = e.GetEventPayload().GetSeq()
			}
			if n := st.Value("tlstap_sink_connects_total", "sink", name); n < 2 {
				t.Errorf("connects = %v, want >= 2", n)
			}
		})
	}
}

func TestWSSinkJSON(t *testing.T) {
	rd := &wsReader{}
	srv := httptest.NewServer(rd)
	defer srv.Close()
	b, st := newBroker()
	s, err := New("ws"+strings.TrimPrefix(srv.URL, "http"), fastOpts(JSON), b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	defer stop()
	// A process log must not reach a JSON sink: it carries events only.
	b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "x"}})
	b.Publish(request(1))
	b.Publish(request(2))
	waitFor(t, "2 messages", func() bool { return len(rd.got()) >= 2 })
	for i, m := range rd.got() {
		if m.typ != websocket.MessageText {
			t.Errorf("message %d is %v, want text", i, m.typ)
		}
		var got output.JSONEvent
		if err := json.Unmarshal(m.data, &got); err != nil {
			t.Fatalf("message %d: %v: %q", i, err, m.data)
		}
		if want := output.ToJSON(request(uint64(i + 1)).GetEventPayload()); got != want {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

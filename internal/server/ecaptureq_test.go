package server_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	xws "golang.org/x/net/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// ecqReader is what an ecapture-style client does: read binary frames and
// unmarshal each as one LogEntry.
type ecqReader func() ([]byte, error)

// xnetClient connects like ecapture's example client: golang.org/x/net
// websocket with Origin http://localhost/.
func xnetClient(t *testing.T, url string) ecqReader {
	cfg, err := xws.NewConfig(url, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := xws.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return func() ([]byte, error) {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b []byte
		err := xws.Message.Receive(ws, &b)
		return b, err
	}
}

// gorillaClient uses another library, and other paths and Origins that
// the eCaptureQ listener accepts.
func gorillaClient(t *testing.T, url string, origin string) ecqReader {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := gorilla.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return func() ([]byte, error) {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, b, err := ws.ReadMessage()
		if err == nil && typ != gorilla.BinaryMessage {
			t.Errorf("message type %d, want binary", typ)
		}
		return b, err
	}
}

func TestECaptureQClients(t *testing.T) {
	ts := start(t, server.Options{Listen: "-", ECaptureQ: "ws://127.0.0.1:0/"}, broker.Options{})
	if ts.Addr() != nil {
		t.Fatal("main listener enabled")
	}
	addr := ts.ECaptureQAddr().String()
	ts.b.Publish(processLog("eCapture-compatible backlog"))

	clients := map[string]ecqReader{
		"x/net origin localhost": xnetClient(t, "ws://"+addr+"/"),
		"gorilla no origin":      gorillaClient(t, "ws://"+addr+"/", ""),
		"gorilla other path":     gorillaClient(t, "ws://"+addr+"/some/where?logs=1", "http://localhost/"),
		"gorilla tauri origin":   gorillaClient(t, "ws://"+addr+"/ws", "tauri://localhost"),
	}
	next := func(t *testing.T, read ecqReader) *eventpb.LogEntry {
		t.Helper()
		b, err := read()
		if err != nil {
			t.Fatal(err)
		}
		m := new(eventpb.LogEntry)
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The heartbeat comes right after connect, then the log backlog; once
	// they are there the client is subscribed.
	for name, read := range clients {
		hb := next(t, read).GetHeartbeatPayload()
		if hb.GetCount() != 1 || hb.GetMessage() != server.HeartbeatMessage || hb.GetLastSeq() != 0 {
			t.Fatalf("%s: first message %v, want heartbeat 1 with last_seq 0", name, hb)
		}
		if m := next(t, read); m.GetRunLog() != "eCapture-compatible backlog" || m.GetLogType() != eventpb.LogType_LOG_TYPE_PROCESS_LOG {
			t.Fatalf("%s: second message %v, want the backlog log", name, m)
		}
	}
	const n = 200
	for seq := uint64(1); seq <= n; seq++ {
		ts.b.Publish(event(seq))
	}
	for name, read := range clients {
		t.Run(name, func(t *testing.T) {
			for seq := uint64(1); seq <= n; seq++ {
				m := next(t, read)
				if m.GetLogType() == eventpb.LogType_LOG_TYPE_HEARTBEAT {
					seq--
					continue
				}
				if !proto.Equal(m, event(seq)) {
					t.Fatalf("event %d:\n got %v\nwant %v", seq, m, event(seq))
				}
			}
		})
	}
}

func TestECaptureQToken(t *testing.T) {
	ts := start(t, server.Options{Listen: "-", ECaptureQ: "ws://127.0.0.1:0/?token=a-long-enough-secret"}, broker.Options{})
	addr := ts.ECaptureQAddr().String()
	if _, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/", nil); err == nil {
		t.Fatal("connected without the token")
	} else if err != gorilla.ErrBadHandshake {
		t.Fatal(err)
	}
	read := gorillaClient(t, "ws://"+addr+"/?token=a-long-enough-secret", "http://localhost/")
	if _, err := read(); err != nil {
		t.Fatal(err)
	}
	if urls := ts.URLs(); len(urls) != 1 || urls[0] != "ws://"+addr+"/?token=a-long-enough-secret" {
		t.Errorf("URLs() = %q", urls)
	}
}

// TestECaptureQOrigin: the eCaptureQ listener needs no token, so it
// serves only clients no web page can imitate; every refusal is a 403,
// counted and logged with its reason.
func TestECaptureQOrigin(t *testing.T) {
	var logs syncBuffer
	ts := startLogged(t, server.Options{
		Listen: "-", ECaptureQ: "ws://127.0.0.1:0/", AllowOrigins: []string{"https://gui.example"},
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	addr := ts.ECaptureQAddr().String()
	port := addr[strings.LastIndexByte(addr, ':'):]
	tests := []struct {
		name, origin, host string
		want               int
		reason             string
	}{
		{"no origin", "", "", 101, ""},
		{"the GUI", "http://localhost/", "", 101, ""},
		{"tauri webview", "tauri://localhost", "", 101, ""},
		{"tauri webview on windows", "http://tauri.localhost", "", 101, ""},
		{"--allow-origin", "https://gui.example", "", 101, ""},
		{"host localhost", "http://localhost/", "localhost" + port, 101, ""},
		{"host ::1", "", "[::1]" + port, 101, ""},
		{"foreign page", "https://evil.example", "", 403, "forbidden_origin"},
		{"local page on another port", "http://localhost:8080", "", 403, "forbidden_origin"},
		{"page claiming the listener", "http://127.0.0.1:28257", "", 403, "forbidden_origin"},
		{"GUI origin without slash", "http://localhost", "", 403, "forbidden_origin"},
		{"null", "null", "", 403, "forbidden_origin"},
		{"dns rebinding origin", "http://attacker.test" + port, "", 403, "forbidden_origin"},
		{"dns rebinding host", "http://localhost/", "attacker.test" + port, 403, "forbidden_host"},
		{"other address as host", "", "192.0.2.1" + port, 403, "forbidden_host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.st.Value("tlstap_server_rejected_total", "reason", tt.reason)
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			if tt.host != "" {
				h.Set("Host", tt.host)
			}
			d := gorilla.Dialer{HandshakeTimeout: 10 * time.Second}
			ws, resp, err := d.Dial("ws://"+addr+"/", h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != 403 {
				return
			}
			if got := ts.st.Value("tlstap_server_rejected_total", "reason", tt.reason); got != before+1 {
				t.Errorf("rejected_total{reason=%q} went from %v to %v, want +1", tt.reason, before, got)
			}
			if !strings.Contains(logs.String(), fmt.Sprintf("origin=%s", logValue(tt.origin))) {
				t.Errorf("refusal not logged with its Origin %q:\n%s", tt.origin, logs.String())
			}
		})
	}
	if !strings.Contains(logs.String(), `reason="Origin is not the eCaptureQ GUI's`) || !strings.Contains(logs.String(), `reason="Host is neither`) {
		t.Errorf("refusals logged without reasons:\n%s", logs.String())
	}
}

// TestECaptureQTokenKeepsOriginRule: ?token does not relax the Origin rule.
func TestECaptureQTokenKeepsOriginRule(t *testing.T) {
	ts := start(t, server.Options{Listen: "-", ECaptureQ: "ws://127.0.0.1:0/?token=a-long-enough-secret"}, broker.Options{})
	addr := ts.ECaptureQAddr().String()
	_, resp, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/?token=a-long-enough-secret", http.Header{"Origin": {"https://evil.example"}})
	if resp == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign Origin with the token: %v %v, want 403", resp, err)
	}
	resp.Body.Close()
}

// logValue is how slog's text handler prints a string attribute.
func logValue(s string) string {
	if s == "" || strings.ContainsAny(s, " =\"") {
		return strconv.Quote(s)
	}
	return s
}

package server_test

import (
	"net/http"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	xws "golang.org/x/net/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/broker"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
	"github.com/tlstap/tlstap/server"
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

// gorillaClient uses another library, another path and a foreign Origin,
// all of which the eCaptureQ listener accepts.
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
		"gorilla foreign origin": gorillaClient(t, "ws://"+addr+"/", "https://elsewhere.example"),
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

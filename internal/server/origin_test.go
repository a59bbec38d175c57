package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/server"
)

func TestOrigin(t *testing.T) {
	ts := start(t, server.Options{AllowOrigins: []string{"https://gui.example", "*.trusted.test"}}, broker.Options{})
	port := ts.Addr().String()[strings.LastIndexByte(ts.Addr().String(), ':'):]
	tests := []struct {
		name, origin, host string
		want               int
	}{
		{"no origin", "", "", 101},
		{"same origin", "https://" + ts.Addr().String(), "", 101},
		{"same origin localhost", "https://localhost" + port, "localhost" + port, 101},
		{"foreign", "https://evil.example", "", 403},
		// Debian 12's websocket-client sends http:// for a wss:// URL.
		{"same origin, http label", "http://" + ts.Addr().String(), "", 101},
		{"same origin, ws label", "ws://" + ts.Addr().String(), "", 403},
		{"same host, other port", "https://127.0.0.1:1", "", 403},
		{"dns rebinding", "https://evil.example" + port, "evil.example" + port, 403},
		{"null", "null", "", 403},
		{"allowed scheme pattern", "https://gui.example", "", 101},
		{"allowed scheme pattern wrong scheme", "http://gui.example", "", 403},
		{"allowed host pattern", "http://a.trusted.test", "", 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			hc := ts.httpClient()
			defer hc.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, ts.wsURL(""), &websocket.DialOptions{
				HTTPClient: hc, Host: tt.host,
				HTTPHeader: http.Header{"Authorization": {"Bearer " + ts.token}, "Origin": h["Origin"]},
			})
			if c != nil {
				c.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
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

package webui_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/forward"
	"github.com/tlstap/tlstap/internal/stats"
	"github.com/tlstap/tlstap/internal/webui"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// connectProxy is an HTTP proxy that tunnels CONNECT requests, as Burp
// does before it looks inside, and records their targets.
type connectProxy struct {
	*httptest.Server
	mu      sync.Mutex
	targets []string
}

func startConnectProxy(t testing.TB) *connectProxy {
	p := &connectProxy{}
	var wg sync.WaitGroup
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.targets = append(p.targets, r.Host)
		p.mu.Unlock()
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(up, rw); up.(*net.TCPConn).CloseWrite() }()
		go func() { defer wg.Done(); io.Copy(conn, up); conn.Close() }()
	}))
	t.Cleanup(func() { p.Close(); wg.Wait() })
	return p
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// muxAdapter mounts handlers on a ServeMux, ignoring auth.
type muxAdapter struct{ *http.ServeMux }

func (m muxAdapter) Handle(pattern string, h http.Handler, _ bool) { m.ServeMux.Handle(pattern, h) }

func TestResend(t *testing.T) {
	// Cleanups run last, after the proxy's (registered later) and the
	// deferred closes.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	defer http.DefaultClient.CloseIdleConnections()
	var mu sync.Mutex
	var got []http.Header
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
	}))
	defer target.Close()
	host := strings.TrimPrefix(target.URL, "https://")
	proxy := startConnectProxy(t)

	b := broker.New(broker.Options{}, stats.NewSet())
	defer b.Close()
	pub := func(ev *eventpb.Event) {
		b.Publish(&eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: ev}})
	}
	pub(&eventpb.Event{Seq: 1, Type: 1, Host: host, Method: "POST", Path: "/x",
		Payload: []byte("POST /x HTTP/1.1\r\nHost: " + host + "\r\nX-Orig: yes\r\nContent-Length: 2\r\n\r\nhi")})
	pub(&eventpb.Event{Seq: 2, Type: 3, Status: 200, RequestSeq: 1, Payload: []byte("HTTP/1.1 200 OK\r\n\r\n")})

	cfg := config.Config{}
	var cfgMu sync.Mutex
	mux := http.NewServeMux()
	webui.MountResend(muxAdapter{mux}, webui.ResendOptions{Broker: b, Config: func() config.Config {
		cfgMu.Lock()
		defer cfgMu.Unlock()
		return cfg
	}})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	own := "http://" + strings.TrimPrefix(srv.URL, "http://")

	post := func(body, ctype, origin string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/ui/resend", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		s, _ := io.ReadAll(bufio.NewReader(resp.Body))
		return resp.StatusCode, string(s)
	}
	if code, body := post(`{"seq":1,"confirm":true}`, "application/json", ""); code != http.StatusConflict || !strings.Contains(body, "no proxy forwarder") {
		t.Errorf("without a proxy forwarder: %d %s", code, body)
	}
	cfgMu.Lock()
	cfg.Forward = []config.Forward{{URL: "http://127.0.0.1:1", Mode: "webhook"}, {URL: proxy.URL, Mode: string(forward.Proxy)}}
	cfgMu.Unlock()
	for _, tt := range []struct {
		name, body, ctype, origin string
		code                      int
		want                      string
	}{
		{"no confirmation", `{"seq":1}`, "application/json", "", 400, "confirm"},
		{"form body", `seq=1&confirm=true`, "application/x-www-form-urlencoded", "", 415, "application/json"},
		{"text body", `{"seq":1,"confirm":true}`, "text/plain", "", 415, "application/json"},
		{"foreign origin", `{"seq":1,"confirm":true}`, "application/json", "https://evil.example", 403, "foreign"},
		{"unknown field", `{"seq":1,"confirm":true,"url":"http://x"}`, "application/json", "", 400, "unknown field"},
		{"not retained", `{"seq":99,"confirm":true}`, "application/json", "", 404, "not retained"},
		{"a response", `{"seq":2,"confirm":true}`, "application/json", "", 400, "not a whole HTTP request"},
		{"unknown proxy", `{"seq":1,"confirm":true,"proxy":"http://127.0.0.1:1"}`, "application/json", "", 409, "no proxy forwarder"},
		{"sent", `{"seq":1,"confirm":true}`, "application/json", own, 200, `"status":418`},
	} {
		code, body := post(tt.body, tt.ctype, tt.origin)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want %d and %q", tt.name, code, body, tt.code, tt.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the server got %d requests, want 1", len(got))
	}
	if got[0].Get("X-Orig") != "yes" || !strings.HasPrefix(got[0].Get(forward.MarkHeader), forward.RunNonce+"-ui-1") {
		t.Errorf("re-sent headers: %v", got[0])
	}
	if s := proxy.seen(); len(s) != 1 || s[0] != host {
		t.Errorf("proxy saw CONNECT to %v, want %s", s, host)
	}
}

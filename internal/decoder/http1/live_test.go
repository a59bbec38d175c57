package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/tlstap/tlstap/internal/decoder"
)

// scenario is a recorded conversation and what decoding it must yield.
type scenario struct {
	name  string
	drive func(t testing.TB, addr string)
	// want lists the messages of each direction (0 requests, 1 responses).
	want [2][]want
	// detach: both directions switch protocol; the bytes each keeps for
	// the next decoder must start with these.
	detach *[2]string
}

// want is what a live recording must decode to. Fields left zero are not
// checked; body is the decoded body.
type want struct {
	method, path string
	status       uint32
	body         string
	te, ce       string
	upgrade      string
	rawBody      bool // body is still encoded: it must not equal bodyText
}

func req(method, path, body string) want { return want{method: method, path: path, body: body} }
func resp(status uint32, body string) want {
	return want{status: status, body: body}
}

var scenarios = []scenario{
	{
		name: "keepalive",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "GET", "/hello", "")
			do(t, c, "POST", "/echo", "ping-pong body")
			do(t, c, "HEAD", "/hello", "")
			do(t, c, "GET", "/nocontent", "")
			do(t, c, "GET", "/notmodified", "", "If-None-Match", `"v1"`)
		},
		want: [2][]want{
			{req("GET", "/hello", ""), req("POST", "/echo", "ping-pong body"), req("HEAD", "/hello", ""), req("GET", "/nocontent", ""), req("GET", "/notmodified", "")},
			{resp(200, "hello, world\n"), resp(200, "ping-pong body"), resp(200, ""), resp(204, ""), resp(304, "")},
		},
	},
	{
		name: "encodings",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			for _, e := range []string{"gzip", "x-gzip", "deflate", "rawdeflate", "br", "zstd", "gzip-br", "unknown"} {
				do(t, c, "GET", "/enc/"+e, "", "Accept-Encoding", "gzip, deflate, br, zstd")
			}
		},
		want: [2][]want{
			{req("GET", "/enc/gzip", ""), req("GET", "/enc/x-gzip", ""), req("GET", "/enc/deflate", ""), req("GET", "/enc/rawdeflate", ""), req("GET", "/enc/br", ""), req("GET", "/enc/zstd", ""), req("GET", "/enc/gzip-br", ""), req("GET", "/enc/unknown", "")},
			{
				{status: 200, body: bodyText, ce: "gzip"},
				{status: 200, body: bodyText, ce: "x-gzip"},
				{status: 200, body: bodyText, ce: "deflate"},
				{status: 200, body: bodyText, ce: "deflate"},
				{status: 200, body: bodyText, ce: "br"},
				{status: 200, body: bodyText, ce: "zstd"},
				{status: 200, body: bodyText, ce: "gzip, br"},
				{status: 200, rawBody: true, ce: "x-unknown"},
			},
		},
	},
	{
		name: "chunked",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "GET", "/stream", "")
			do(t, c, "GET", "/stream?gzip=1", "", "Accept-Encoding", "gzip")
			do(t, c, "PUT", "/echo", "chunked-request-body", "Transfer-Encoding", "chunked")
		},
		want: [2][]want{
			{req("GET", "/stream", ""), req("GET", "/stream?gzip=1", ""), {method: "PUT", path: "/echo", body: "chunked-request-body", te: "chunked"}},
			{{status: 200, body: bodyText, te: "chunked"}, {status: 200, body: bodyText, te: "chunked", ce: "gzip"}, resp(200, "chunked-request-body")},
		},
	},
	{
		name: "continue",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "POST", "/echo", "continue-body", "Expect", "100-continue")
		},
		want: [2][]want{
			{req("POST", "/echo", "continue-body")},
			{resp(100, ""), resp(200, "continue-body")},
		},
	},
	{
		name: "pipelined",
		drive: func(t testing.TB, addr string) {
			raw(t, addr, "GET /hello HTTP/1.1\r\nHost: example.test\r\n\r\n"+
				"POST /echo HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello"+
				"GET /stream HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
		},
		want: [2][]want{
			{req("GET", "/hello", ""), req("POST", "/echo", "hello"), req("GET", "/stream", "")},
			{resp(200, "hello, world\n"), resp(200, "hello"), {status: 200, body: bodyText, te: "chunked"}},
		},
	},
	{
		name: "upgrade-refused",
		drive: func(t testing.TB, addr string) {
			raw(t, addr, "GET /hello HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"+
				"GET /hello HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
		},
		want: [2][]want{
			{req("GET", "/hello", ""), req("GET", "/hello", "")},
			{resp(200, "hello, world\n"), resp(200, "hello, world\n")},
		},
	},
	{
		name: "http10",
		drive: func(t testing.TB, addr string) {
			raw(t, addr, "GET /stream HTTP/1.0\r\nHost: example.test\r\n\r\n")
		},
		want: [2][]want{
			{req("GET", "/stream", "")},
			{resp(200, bodyText)},
		},
	},
	{
		name: "websocket",
		drive: func(t testing.TB, addr string) {
			d := websocket.Dialer{EnableCompression: true, NetDial: func(_, _ string) (net.Conn, error) {
				return net.Dial("tcp", addr)
			}}
			c, _, err := d.Dial("ws://example.test/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.WriteMessage(websocket.TextMessage, []byte("hello websocket")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		},
		want: [2][]want{
			{req("GET", "/ws", "")},
			{{status: 101, upgrade: "websocket"}},
		},
		// A client frame is masked, FIN+text with RSV1 (compressed); the
		// server's is unmasked.
		detach: &[2]string{"\xc1", "\xc1"},
	},
	{
		name: "connect",
		drive: func(t testing.TB, addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
			br := bufio.NewReader(c)
			r, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
			if err != nil || r.StatusCode != 200 {
				t.Fatalf("CONNECT: %v %v", r, err)
			}
			const hello = "\x16\x03\x01\x00\x05hello"
			io.WriteString(c, hello)
			if _, err := io.ReadFull(br, make([]byte, len(hello))); err != nil {
				t.Fatal(err)
			}
		},
		want: [2][]want{
			{req("CONNECT", "example.test:443", "")},
			{{status: 200, upgrade: "tunnel"}},
		},
		detach: &[2]string{"\x16\x03\x01\x00\x05hello", "\x16\x03\x01\x00\x05hello"},
	},
	{
		name: "curl-compressed",
		drive: func(t testing.TB, addr string) {
			u := "http://" + addr
			curl(t, "--compressed", u+"/enc/gzip", u+"/enc/br", u+"/enc/zstd")
		},
		want: [2][]want{
			{req("GET", "/enc/gzip", ""), req("GET", "/enc/br", ""), req("GET", "/enc/zstd", "")},
			{{status: 200, body: bodyText, ce: "gzip"}, {status: 200, body: bodyText, ce: "br"}, {status: 200, body: bodyText, ce: "zstd"}},
		},
	},
	{
		name: "curl-continue",
		drive: func(t testing.TB, addr string) {
			curl(t, "-H", "Expect: 100-continue", "-H", "Content-Type: text/plain", "--data-binary", strings.Repeat("0123456789", 30), "http://"+addr+"/echo")
		},
		want: [2][]want{
			{req("POST", "/echo", strings.Repeat("0123456789", 30))},
			{resp(100, ""), resp(200, strings.Repeat("0123456789", 30))},
		},
	},
	{
		name: "big",
		drive: func(t testing.TB, addr string) {
			c, tr := newClient(addr)
			defer tr.CloseIdleConnections()
			do(t, c, "GET", "/noise?n=32768", "", "Accept-Encoding", "gzip")
			do(t, c, "GET", "/hello", "")
		},
		want: [2][]want{
			{req("GET", "/noise?n=32768", ""), req("GET", "/hello", "")},
			{{status: 200, body: string(noise(32768)), te: "chunked", ce: "gzip"}, resp(200, "hello, world\n")},
		},
	},
}

// TestLive records every scenario afresh and checks what the decoder makes
// of it against what the client sent and the handler answered.
func TestLive(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := record(t, sc.drive)
			res := decodeRecording(rec, wholeFeed(rec), decoder.Limits{})
			checkWant(t, sc, res)
		})
	}
}

func checkWant(t *testing.T, sc scenario, res result) {
	t.Helper()
	for dir := range 2 {
		got := res.msgs[dir]
		if len(got) != len(sc.want[dir]) {
			t.Errorf("dir %d: %d messages, want %d:\n%s", dir, len(got), len(sc.want[dir]), renderMessages(got))
			continue
		}
		for i, w := range sc.want[dir] {
			m := got[i]
			wantType := decoder.HTTP1Request
			if dir == 1 {
				wantType = decoder.HTTP1Response
			}
			_, body, _ := strings.Cut(string(m.Payload), "\r\n\r\n")
			switch {
			case m.Type != wantType || m.Truncated || m.Incomplete:
				t.Errorf("dir %d msg %d: type %v truncated %v incomplete %v", dir, i, m.Type, m.Truncated, m.Incomplete)
			case m.Method != w.method || m.Path != w.path || m.Status != w.status:
				t.Errorf("dir %d msg %d: %q %q %d, want %q %q %d", dir, i, m.Method, m.Path, m.Status, w.method, w.path, w.status)
			case w.rawBody && body == bodyText:
				t.Errorf("dir %d msg %d: body of unknown coding was decoded", dir, i)
			case !w.rawBody && body != w.body:
				t.Errorf("dir %d msg %d: body %q, want %q", dir, i, trunc(body), trunc(w.body))
			case w.te != m.TransferEncoding || w.ce != m.ContentEncoding:
				t.Errorf("dir %d msg %d: encodings %q %q, want %q %q", dir, i, m.TransferEncoding, m.ContentEncoding, w.te, w.ce)
			case (m.Upgrade == nil) != (w.upgrade == "") || (m.Upgrade != nil && m.Upgrade.Protocol != w.upgrade):
				t.Errorf("dir %d msg %d: upgrade %+v, want %q", dir, i, m.Upgrade, w.upgrade)
			}
			if dir == 0 && m.Host == "" {
				t.Errorf("dir %d msg %d: no host", dir, i)
			}
		}
	}
	if sc.detach != nil {
		for dir := range 2 {
			if !strings.HasPrefix(string(res.detached[dir]), sc.detach[dir]) {
				t.Errorf("dir %d: detached %q, want prefix %q", dir, trunc(string(res.detached[dir])), sc.detach[dir])
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

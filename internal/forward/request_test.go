package forward

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/golden"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func reqEvent(payload string) *eventpb.Event {
	return &eventpb.Event{Type: 1, Payload: []byte(payload), DstIp: "127.0.0.1", DstPort: 443}
}

func TestParseReplay(t *testing.T) {
	tests := []struct {
		name    string
		ev      *eventpb.Event
		scheme  string
		method  string
		url     string
		host    string
		header  http.Header
		body    string
		wantErr string
	}{
		{
			name:   "http1 get",
			ev:     reqEvent("GET /api/items?id=7&q=a%20b HTTP/1.1\r\nHost: api.example.test\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: gone\r\n\r\n"),
			method: "GET", url: "https://api.example.test/api/items?id=7&q=a%20b", host: "api.example.test",
			header: http.Header{"Accept": {"*/*"}, "X-Multi": {"1", "2"}},
		},
		{
			name:   "http1 post body, decoded",
			ev:     &eventpb.Event{Type: 1, ContentEncoding: "gzip", TransferEncoding: "chunked", Payload: []byte("POST /login HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n{\"u\":\"x\"}")},
			method: "POST", url: "https://127.0.0.1:8443/login", host: "127.0.0.1:8443",
			header: http.Header{"Content-Type": {"application/json"}}, body: `{"u":"x"}`,
		},
		{
			name:   "http2 rendering",
			ev:     &eventpb.Event{Type: 2, Payload: []byte("PUT /v2/x HTTP/2\r\nhost: h2.example.test\r\ncontent-type: text/plain\r\n\r\nhi")},
			method: "PUT", url: "https://h2.example.test/v2/x", host: "h2.example.test",
			header: http.Header{"Content-Type": {"text/plain"}}, body: "hi",
		},
		{
			name:   "http2 pseudo-headers left in",
			ev:     &eventpb.Event{Type: 2, Payload: []byte("GET / HTTP/2\r\n:authority: a.example.test\r\n:scheme: https\r\nuser-agent: grpc\r\n\r\n")},
			method: "GET", url: "https://a.example.test/", host: "a.example.test",
			header: http.Header{"User-Agent": {"grpc"}},
		},
		{
			name:   "no host: destination address",
			ev:     &eventpb.Event{Type: 1, DstIp: "::1", DstPort: 8443, Payload: []byte("GET /x HTTP/1.0\n\n")},
			method: "GET", url: "https://[::1]:8443/x", host: "[::1]:8443", header: http.Header{},
		},
		{
			name:   "host field when header missing",
			ev:     &eventpb.Event{Type: 1, Host: "field.example.test", DstIp: "127.0.0.1", DstPort: 443, Payload: []byte("GET /x HTTP/1.1\r\n\r\n")},
			method: "GET", url: "https://field.example.test/x", host: "field.example.test", header: http.Header{},
		},
		{
			name:   "absolute form",
			ev:     reqEvent("GET http://abs.example.test:81/p?q=1 HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n"),
			scheme: "http", method: "GET", url: "http://abs.example.test:81/p?q=1", host: "abs.example.test:81", header: http.Header{},
		},
		{
			name:   "folded header",
			ev:     reqEvent("GET / HTTP/1.1\r\nHost: f.example.test\r\nX-Long: a\r\n b\r\n\r\n"),
			method: "GET", url: "https://f.example.test/", host: "f.example.test", header: http.Header{"X-Long": {"a b"}},
		},
		{
			name:   "truncated body is marked",
			ev:     &eventpb.Event{Type: 1, Truncated: true, OriginalLength: 5000, Payload: []byte("POST /up HTTP/1.1\r\nHost: t.example.test\r\n\r\nabc")},
			method: "POST", url: "https://t.example.test/up", host: "t.example.test",
			header: http.Header{"X-Tlstap-Truncated": {"original-length=5000"}}, body: "abc",
		},
		{name: "connect", ev: reqEvent("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), wantErr: "CONNECT"},
		{name: "asterisk", ev: reqEvent("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), wantErr: "unsupported request target"},
		{name: "no header end", ev: reqEvent("GET / HTTP/1.1\r\nHost: a\r\n"), wantErr: "no end of header"},
		{name: "bad request line", ev: reqEvent("GARBAGE\r\n\r\n"), wantErr: "malformed request line"},
		{name: "bad method", ev: reqEvent("G(T / HTTP/1.1\r\n\r\n"), wantErr: "malformed request line"},
		{name: "bad header line", ev: reqEvent("GET / HTTP/1.1\r\nnocolon\r\n\r\n"), wantErr: "malformed header"},
		{name: "bad host", ev: reqEvent("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), wantErr: "bad host"},
		{name: "no address at all", ev: &eventpb.Event{Payload: []byte("GET / HTTP/1.1\r\n\r\n")}, wantErr: "no Host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := tt.scheme
			if scheme == "" {
				scheme = "https"
			}
			r, err := ParseReplay(tt.ev, scheme)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Method != tt.method || r.URL.String() != tt.url || r.Host != tt.host || string(r.Body) != tt.body {
				t.Errorf("got %s %s host=%q body=%q\nwant %s %s host=%q body=%q", r.Method, r.URL, r.Host, r.Body, tt.method, tt.url, tt.host, tt.body)
			}
			if fmt.Sprint(r.Header) != fmt.Sprint(tt.header) {
				t.Errorf("header = %v, want %v", r.Header, tt.header)
			}
			req, err := r.Request()
			if err != nil {
				t.Fatal(err)
			}
			if req.ContentLength != int64(len(tt.body)) {
				t.Errorf("ContentLength = %d, want %d", req.ContentLength, len(tt.body))
			}
			b, _ := io.ReadAll(req.Body)
			if string(b) != tt.body {
				t.Errorf("request body = %q", b)
			}
		})
	}
}

// FuzzParseReplay: no payload may panic the parser, and whatever it
// accepts must become a request Go's client would send.
func FuzzParseReplay(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "", "127.0.0.1", uint32(443))
	f.Fuzz(func(t *testing.T, payload []byte, host, dstIP string, dstPort uint32) {
		ev := &eventpb.Event{Type: 1, Payload: payload, Host: host, DstIp: dstIP, DstPort: dstPort}
		r, err := ParseReplay(ev, "https")
		if err != nil {
			return
		}
		if r.URL.Scheme != "https" || r.URL.Host == "" || r.Method == "" {
			t.Fatalf("accepted a request without scheme, host or method: %+v", r)
		}
		req, err := r.Request()
		if err != nil {
			return // e.g. a host net/url rejects on re-parse
		}
		var buf bytes.Buffer
		if err := req.Write(&buf); err != nil {
			return // Go's writer refuses some odd hosts; fine, no panic
		}
	})
}

// realRequests are requests as net/http writes them on the wire, plus the
// HTTP/2 rendering the decoder produces: the fuzz seeds.
func realRequests(t *testing.T) map[string][]byte {
	dump := func(req *http.Request) []byte {
		b, err := httputil.DumpRequestOut(req, true)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	get, _ := http.NewRequest("GET", "https://api.example.test/v1/items?id=7", nil)
	get.Header.Set("Accept", "application/json")
	get.Header.Set("Cookie", "session=abc")
	post, _ := http.NewRequest("POST", "https://api.example.test/login", strings.NewReader(`{"user":"a","pass":"b"}`))
	post.Header.Set("Content-Type", "application/json")
	chunked, _ := http.NewRequest("PUT", "https://api.example.test/upload", io.MultiReader(strings.NewReader("part1"), strings.NewReader("part2")))
	return map[string][]byte{
		"get":     dump(get),
		"post":    dump(post),
		"chunked": dump(chunked),
		"http2":   []byte("POST /grpc.Service/Call HTTP/2\r\nhost: api.example.test\r\ncontent-type: application/grpc\r\nte: trailers\r\n\r\n\x00\x00\x00\x00\x02\x08\x01"),
		"abs":     []byte("GET http://proxy.example.test:8080/x HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n"),
	}
}

// filterSeeds are filters from the docs against metadata of real requests.
var filterSeeds = map[string][5]string{
	"doc":      {"content-type=text/*,host=*.example.com,path=/api/*,method=POST|PUT", "api.example.com:8443", "/api/v1/items?id=7", "application/json; charset=utf-8", "POST"},
	"bare":     {"application/json,text/*", "api.example.com", "/", "text/html", "GET"},
	"safe":     {"method=GET|HEAD|OPTIONS", "shop.example.com", "/missing", "", "GET"},
	"exclude":  {"host!=tracking.example.com,type=http1-request|2", "[::1]:8443", "/v1/users/1", "", "GET"},
	"pname_ct": {"pname=curl,ct=application/*", "127.0.0.1:443", "/login", "application/x-www-form-urlencoded", "POST"},
}

// TestFuzzSeeds keeps the checked-in seed corpora in step with the real
// inputs above; -update rewrites them.
func TestFuzzSeeds(t *testing.T) {
	seeds := map[string][]byte{}
	for name, payload := range realRequests(t) {
		seeds[filepath.Join("FuzzParseReplay", name)] = golden.FuzzSeed(payload, "", "127.0.0.1", uint32(443))
		// Every real request must parse.
		if _, err := ParseReplay(reqEvent(string(payload)), "https"); err != nil {
			t.Errorf("seed %s: %v", name, err)
		}
	}
	for name, in := range filterSeeds {
		seeds[filepath.Join("FuzzFilter", name)] = golden.FuzzSeed(in[0], in[1], in[2], in[3], in[4])
		if _, err := ParseFilter(in[0]); err != nil {
			t.Errorf("seed %s: %v", name, err)
		}
	}
	for name, data := range seeds {
		golden.Check(t, filepath.Join("testdata", "fuzz", name), data)
	}
}

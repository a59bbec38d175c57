package forward

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// flow is one line of testdata/flowlog.py's output.
type flow struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Scheme  string      `json:"scheme"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
	Status  int         `json:"status"`
}

func (f flow) header(name string) []string {
	var vs []string
	for _, h := range f.Headers {
		if strings.EqualFold(h[0], name) {
			vs = append(vs, h[1])
		}
	}
	return vs
}

// mitmdump runs mitmproxy's mitmdump on loopback, standing in for Burp
// Suite, and returns its address and a reader of its flow log.
func mitmdump(t *testing.T) (addr string, flows func() []flow) {
	t.Helper()
	bin, err := exec.LookPath("mitmdump")
	if err != nil {
		t.Fatalf("mitmdump not installed (apt-get install mitmproxy): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	log := filepath.Join(dir, "flows.jsonl")
	script, err := filepath.Abs(filepath.Join("testdata", "flowlog.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen-host", host, "--listen-port", port,
		"--ssl-insecure", // the origin is an httptest server with its own CA
		"--set", "confdir="+filepath.Join(dir, "conf"), "-s", script)
	cmd.Env = append(os.Environ(), "FLOWLOG="+log)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mitmdump output:\n%s", out.String())
		}
	})
	waitFor(t, "mitmdump to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, func() []flow {
		f, err := os.Open(log)
		if err != nil {
			return nil
		}
		defer f.Close()
		var fs []flow
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var fl flow
			if json.Unmarshal(sc.Bytes(), &fl) == nil {
				fs = append(fs, fl)
			}
		}
		return fs
	}
}

type originHit struct {
	method, uri, host string
	header            http.Header
	body              string
}

func TestProxyModeThroughMitmproxy(t *testing.T) {
	proxyAddr, flows := mitmdump(t)

	var mu sync.Mutex
	var hits []originHit
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, originHit{r.Method, r.RequestURI, r.Host, r.Header.Clone(), string(b)})
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer origin.Close()
	originHost := strings.TrimPrefix(origin.URL, "https://")
	_, originPort, _ := net.SplitHostPort(originHost)
	// Another loopback address, so even a filter bug sends nothing off
	// this machine.
	excludedHost := net.JoinHostPort("127.0.0.2", originPort)

	b, st := newBroker()
	f, err := New(Options{
		Mode:       Proxy,
		URLs:       []string{"http://" + proxyAddr},
		Filter:     "host=127.0.0.1,path=/api/*,method=GET|POST",
		Workers:    1, // in order, so the last event's arrival settles the rest
		BackoffMin: 10 * time.Millisecond,
	}, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, f)
	defer stop()

	hdr := map[string]string{"Accept": "application/json", "Cookie": "session=s3cr3t", "X-Custom": "tlstap test", "User-Agent": "curl/8.5.0"}
	items := httpRequest(1, "GET", originHost, "/api/items?id=7&q=a%20b", "", hdr, "")
	login := httpRequest(2, "POST", originHost, "/api/login", "application/json", hdr, `{"user":"alice","pass":"x"}`)
	static := httpRequest(3, "GET", originHost, "/static/app.js", "", nil, "")
	other := httpRequest(4, "GET", excludedHost, "/api/items", "", nil, "")
	resp := httpRequest(5, "GET", originHost, "/api/items", "", nil, "")
	resp.Type, resp.Payload = 3, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	del := httpRequest(6, "DELETE", originHost, "/api/items/7", "", nil, "")
	h2 := httpRequest(7, "GET", originHost, "/api/h2", "", nil, "")
	h2.Type, h2.StreamId = 2, 1
	h2.Payload = []byte("GET /api/h2 HTTP/2\r\nhost: " + originHost + "\r\naccept: text/plain\r\n\r\n")
	last := httpRequest(8, "GET", originHost, "/api/last", "", nil, "")
	for _, ev := range []*eventpb.Event{items, login, static, other, resp, del, h2, last} {
		b.Publish(entry(ev))
	}

	waitFor(t, "the last request in mitmproxy's history", func() bool {
		fs := flows()
		return len(fs) > 0 && strings.HasSuffix(fs[len(fs)-1].URL, "/api/last")
	})
	fs := flows()
	want := []struct{ method, path, body string }{
		{"GET", "/api/items?id=7&q=a%20b", ""},
		{"POST", "/api/login", `{"user":"alice","pass":"x"}`},
		{"GET", "/api/h2", ""},
		{"GET", "/api/last", ""},
	}
	if len(fs) != len(want) {
		var got []string
		for _, f := range fs {
			got = append(got, f.Method+" "+f.URL)
		}
		t.Fatalf("proxy history has %d flows, want %d: %v", len(fs), len(want), got)
	}
	for i, w := range want {
		fl := fs[i]
		body, _ := base64.StdEncoding.DecodeString(fl.Body)
		if fl.Method != w.method || fl.URL != "https://"+originHost+w.path || string(body) != w.body || fl.Status != 200 {
			t.Errorf("flow %d: %s %s body=%q status=%d, want %s https://%s%s body=%q status=200",
				i, fl.Method, fl.URL, body, fl.Status, w.method, originHost, w.path, w.body)
		}
	}
	for _, fl := range fs[:2] {
		for k, v := range hdr {
			if got := fl.header(k); !slices.Equal(got, []string{v}) {
				t.Errorf("%s %s: header %s = %q, want %q", fl.Method, fl.Path, k, got, v)
			}
		}
	}
	if got := fs[1].header("Content-Type"); !slices.Equal(got, []string{"application/json"}) {
		t.Errorf("login Content-Type = %q", got)
	}
	if got := fs[2].header("Accept"); !slices.Equal(got, []string{"text/plain"}) {
		t.Errorf("HTTP/2 request's accept = %q", got)
	}

	// The proxy passed them on: the origin saw the same requests.
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != len(want) {
		t.Fatalf("origin got %d requests, want %d", len(hits), len(want))
	}
	for i, w := range want {
		h := hits[i]
		if h.method != w.method || h.uri != w.path || h.body != w.body || h.host != originHost {
			t.Errorf("origin request %d: %s %s host=%s body=%q", i, h.method, h.uri, h.host, h.body)
		}
	}
	if got := hits[0].header.Get("Cookie"); got != "session=s3cr3t" {
		t.Errorf("origin Cookie = %q", got)
	}
	// mitmproxy logs a flow before its response reaches the forwarder.
	waitFor(t, "4 responses counted as 2xx", func() bool {
		return st.Value("tlstap_forward_responses_total", "mode", "proxy", "class", "2xx") == 4
	})
}

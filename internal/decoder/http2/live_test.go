package http2

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/tlstap/tlstap/internal/decoder"
)

// scenario is one connection between real HTTP/2 implementations: what the
// server does, what the client asks, and what the decoders must make of the
// bytes.
type scenario struct {
	name    string
	handler http.HandlerFunc
	run     func(t testing.TB, c *http.Client, base string)
	// check gets the messages of the client and server sides.
	check func(t *testing.T, cl, sv []*Message)
}

// do sends one request and reads the whole response. Errors fail the test
// with t.Error, which, unlike t.Fatal, is safe from any goroutine.
func do(t testing.TB, c *http.Client, method, url string, body io.Reader, edit func(*http.Request)) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Error(err)
		return nil
	}
	if edit != nil {
		edit(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return b
}

func get(t testing.TB, c *http.Client, url string) []byte {
	t.Helper()
	return do(t, c, "GET", url, nil, nil)
}

// randBytes is reproducible incompressible data.
func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var lorem = strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 200)

// encode compresses p; writes to a bytes.Buffer cannot fail.
func encode(coding string, p []byte) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "br":
		w = brotli.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "zstd":
		w, _ = zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	default:
		panic("coding " + coding)
	}
	w.Write(p)
	w.Close()
	return b.Bytes()
}

func wantCount(t *testing.T, what string, ms []*Message, n int) {
	t.Helper()
	if len(ms) != n {
		t.Fatalf("%s: %d messages, want %d:\n%s", what, len(ms), n, describe(what, ms))
	}
}

func wantComplete(t *testing.T, ms []*Message) {
	t.Helper()
	for _, m := range ms {
		if m.Incomplete || m.Truncated || m.Type == decoder.Raw {
			t.Errorf("stream %d: %s incomplete=%t truncated=%t", m.StreamID, m.Type, m.Incomplete, m.Truncated)
		}
	}
}

var scenarios = []scenario{
	{
		name: "simple",
		handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello, world\n")
		},
		run: func(t testing.TB, c *http.Client, base string) {
			get(t, c, base+"/hello?x=1")
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 1)
			wantCount(t, "server", sv, 1)
			wantComplete(t, cl)
			wantComplete(t, sv)
			req, resp := cl[0], sv[0]
			if req.Type != decoder.HTTP2Request || req.Method != "GET" || req.Path != "/hello?x=1" || req.StreamID != 1 ||
				!strings.HasPrefix(req.Host, "127.0.0.1:") {
				t.Errorf("request %+v", req)
			}
			wantHead := "GET /hello?x=1 HTTP/2\r\nHost: " + req.Host + "\r\n"
			if !bytes.HasPrefix(req.Payload, []byte(wantHead)) || !bytes.HasSuffix(req.Payload, []byte("Content-Length: 0\r\n\r\n")) {
				t.Errorf("request payload %q", req.Payload)
			}
			if resp.Type != decoder.HTTP2Response || resp.Status != 200 || resp.StreamID != 1 ||
				resp.ContentType != "text/plain; charset=utf-8" || string(body(resp)) != "hello, world\n" {
				t.Errorf("response %+v %q", resp, resp.Payload)
			}
			if !bytes.HasPrefix(resp.Payload, []byte("HTTP/2 200\r\n")) || field(resp, "Content-Length") != "13" {
				t.Errorf("response payload %q", resp.Payload)
			}
		},
	},
	{
		name: "concurrent",
		handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s got %d bytes: %s", r.Method, r.URL.Path, len(b), strings.Repeat(r.URL.Path, 50))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			// Open the connection first, or the concurrent requests
			// may each dial one.
			get(t, c, base+"/item/0")
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					url := fmt.Sprintf("%s/item/%d", base, i)
					if i%2 == 0 {
						get(t, c, url)
						return
					}
					do(t, c, "POST", url, strings.NewReader(strings.Repeat(strconv.Itoa(i), 100*i)), nil)
				})
			}
			wg.Wait()
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 17)
			wantCount(t, "server", sv, 17)
			wantComplete(t, cl)
			wantComplete(t, sv)
			paths := map[uint32]*Message{}
			for _, m := range cl {
				var i int
				if _, err := fmt.Sscanf(m.Path, "/item/%d", &i); err != nil {
					t.Fatalf("path %q", m.Path)
				}
				want, method := "", "GET"
				if i%2 == 1 {
					want, method = strings.Repeat(strconv.Itoa(i), 100*i), "POST"
				}
				if m.Method != method || string(body(m)) != want {
					t.Errorf("%s %s: body %q", m.Method, m.Path, body(m))
				}
				paths[m.StreamID] = m
			}
			for _, m := range sv {
				req := paths[m.StreamID]
				if req == nil {
					t.Fatalf("response on stream %d without request", m.StreamID)
				}
				want := fmt.Sprintf("%s %s got %d bytes: %s", req.Method, req.Path, len(body(req)), strings.Repeat(req.Path, 50))
				if string(body(m)) != want || m.Status != 200 {
					t.Errorf("stream %d: response %q", m.StreamID, body(m))
				}
			}
		},
	},
	{
		name: "large",
		handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if !bytes.Equal(b, randBytes(256<<10, 1)) {
				http.Error(w, "bad upload", 400)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(randBytes(512<<10, 2))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			do(t, c, "POST", base+"/upload", bytes.NewReader(randBytes(256<<10, 1)), nil)
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 1)
			wantCount(t, "server", sv, 1)
			wantComplete(t, cl)
			wantComplete(t, sv)
			if !bytes.Equal(body(cl[0]), randBytes(256<<10, 1)) || field(cl[0], "Content-Length") != strconv.Itoa(256<<10) {
				t.Errorf("request body differs (%d bytes)", len(body(cl[0])))
			}
			if !bytes.Equal(body(sv[0]), randBytes(512<<10, 2)) || sv[0].ContentType != "application/octet-stream" {
				t.Errorf("response body differs (%d bytes)", len(body(sv[0])))
			}
		},
	},
	{
		name: "encodings",
		handler: func(w http.ResponseWriter, r *http.Request) {
			coding := strings.TrimPrefix(r.URL.Path, "/")
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", coding)
			w.Write(encode(coding, []byte(lorem)))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			for _, coding := range []string{"gzip", "br", "zstd", "deflate"} {
				get(t, c, base+"/"+coding)
			}
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "server", sv, 4)
			wantComplete(t, sv)
			for i, coding := range []string{"gzip", "br", "zstd", "deflate"} {
				m := sv[i]
				if m.ContentEncoding != coding || string(body(m)) != lorem || field(m, "Content-Encoding") != "" ||
					field(m, "Content-Length") != strconv.Itoa(len(lorem)) {
					t.Errorf("%s: encoding %q body %d bytes head %q", coding, m.ContentEncoding, len(body(m)), m.Payload[:min(200, len(m.Payload))])
				}
			}
		},
	},
	{
		name: "trailers",
		handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Checksum")
			w.Write(b)
			w.Header().Set("X-Checksum", strconv.Itoa(len(b))+"-"+r.Trailer.Get("X-Req-Trailer"))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			// A body of unknown length, so the trailers follow it.
			do(t, c, "POST", base+"/trailers", io.MultiReader(strings.NewReader("chunk one;"), strings.NewReader("chunk two")),
				func(r *http.Request) { r.Trailer = http.Header{"X-Req-Trailer": {"req-value"}} })
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 1)
			wantCount(t, "server", sv, 1)
			wantComplete(t, cl)
			wantComplete(t, sv)
			if field(cl[0], "X-Req-Trailer") != "req-value" || string(body(cl[0])) != "chunk one;chunk two" {
				t.Errorf("request %q", cl[0].Payload)
			}
			if field(sv[0], "X-Checksum") != "19-req-value" || string(body(sv[0])) != "chunk one;chunk two" {
				t.Errorf("response %q", sv[0].Payload)
			}
		},
	},
	{
		name: "reset",
		handler: func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/abort":
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // the server resets the stream
			case "/slow":
				b := make([]byte, 4)
				io.ReadFull(r.Body, b)
				w.WriteHeader(202)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			default:
				io.WriteString(w, "ok")
			}
		},
		run: func(t testing.TB, c *http.Client, base string) {
			if resp, err := c.Get(base + "/abort"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			// The client resets a request whose body is still coming.
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			go pw.Write([]byte("part"))
			req, err := http.NewRequestWithContext(ctx, "PUT", base+"/slow", pr)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			resp.Body.Close()
			pw.Close()
			// One more exchange so the reset is on the wire before the
			// connection closes.
			get(t, c, base+"/ok")
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 3)
			wantCount(t, "server", sv, 3)
			for _, m := range cl {
				switch m.StreamID {
				case 1:
					if m.Incomplete || m.Method != "GET" || m.Path != "/abort" {
						t.Errorf("request %+v", m)
					}
				case 3:
					if !m.Incomplete || m.Method != "PUT" || string(body(m)) != "part" {
						t.Errorf("reset request %+v %q", m, m.Payload)
					}
				case 5:
					if m.Incomplete || m.Path != "/ok" {
						t.Errorf("request %+v", m)
					}
				}
			}
			for _, m := range sv {
				switch m.StreamID {
				case 1:
					if !m.Incomplete || m.Status != 200 || string(body(m)) != "partial" {
						t.Errorf("aborted response %+v %q", m, m.Payload)
					}
				case 3:
					// Reset by the client, which this side never sees.
					if !m.Incomplete || m.Status != 202 {
						t.Errorf("slow response %+v", m)
					}
				case 5:
					if m.Incomplete || string(body(m)) != "ok" {
						t.Errorf("response %+v", m)
					}
				}
			}
		},
	},
	{
		name: "early-hints",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(200)
			io.WriteString(w, "<html></html>")
		},
		run: func(t testing.TB, c *http.Client, base string) {
			get(t, c, base+"/page")
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "server", sv, 1)
			wantComplete(t, sv)
			m := sv[0]
			want := "HTTP/2 103\r\nlink: </style.css>; rel=preload; as=style\r\n\r\nHTTP/2 200\r\n"
			if !bytes.HasPrefix(m.Payload, []byte(want)) || m.Status != 200 || m.ContentType != "text/html" ||
				string(body(m)) != "<html></html>" {
				t.Errorf("response %+v %q", m, m.Payload)
			}
		},
	},
	{
		name: "hpack-reuse",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request", r.URL.Path)
			w.Header().Set("Cache-Control", "private, max-age=0")
			io.WriteString(w, r.Header.Get("X-Session"))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			for i := range 40 {
				do(t, c, "GET", fmt.Sprintf("%s/r/%d", base, i), nil, func(r *http.Request) {
					r.Header.Set("X-Session", "session-token-0123456789abcdef0123456789abcdef")
					r.Header.Set("Cookie", "a=1; b=2; c="+strings.Repeat("z", 100))
					r.Header.Set("X-Seq", strconv.Itoa(i))
				})
			}
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 40)
			wantCount(t, "server", sv, 40)
			wantComplete(t, cl)
			wantComplete(t, sv)
			for i, m := range cl {
				if m.Path != fmt.Sprintf("/r/%d", i) || field(m, "x-session") != "session-token-0123456789abcdef0123456789abcdef" ||
					field(m, "cookie") != "a=1; b=2; c="+strings.Repeat("z", 100) || field(m, "x-seq") != strconv.Itoa(i) {
					t.Errorf("request %d: %q", i, m.Payload)
				}
			}
			for i, m := range sv {
				if field(m, "x-request") != fmt.Sprintf("/r/%d", i) || field(m, "cache-control") != "private, max-age=0" {
					t.Errorf("response %d: %q", i, m.Payload)
				}
			}
		},
	},
}

// TestLive runs every scenario between x/net/http2's client and server and
// decodes the bytes as they were written, one chunk per Write.
func TestLive(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			cp := record(t, sc.handler, func(c *http.Client, base string) { sc.run(t, c, base) })
			cl, _ := decodeAll(Client, Limits{}, cp.Client, chunkIndex)
			sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
			sc.check(t, cl, sv)
		})
	}
}

// Other HTTP/2 implementations encode differently from Go's: nghttp2 (in
// nghttp and curl) sends PRIORITY frames, Huffman-codes otherwise, and
// splits cookies.

// seen is what the server's handler got.
type seen struct {
	method, uri, body string
	header            http.Header
}

// recordTool serves h2c on 127.0.0.1 and runs a client tool against it,
// recording what the server read (the client side) and wrote.
func recordTool(t *testing.T, args func(base string) []string) (*capture, map[string]seen) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cp := new(capture)
	got := map[string]seen{}
	closed := make(chan struct{}, 1)
	srv := &http.Server{
		Protocols: h2c(),
		Handler: noDate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got[r.URL.RequestURI()] = seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Clone()}
			mu.Unlock()
			if p, ok := w.(http.Pusher); ok && r.URL.Path == "/page" {
				if err := p.Push("/style.css", nil); err != nil {
					t.Error(err)
				}
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "resp:"+r.URL.RequestURI())
		})),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				select {
				case closed <- struct{}{}:
				default:
				}
			}
		},
	}
	rl := &readRecListener{recListener{Listener: ln, mu: &mu, chunks: &cp.Server}, &cp.Client}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(rl) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := args("http://" + ln.Addr().String())
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", a[0], err, out)
	}
	<-closed
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return cp, got
}

// readRecListener records reads as well: the client's bytes, as the
// server received them.
type readRecListener struct {
	recListener
	reads *[][]byte
}

func (l *readRecListener) Accept() (net.Conn, error) {
	c, err := l.recListener.Accept()
	if err != nil {
		return nil, err
	}
	return &readRecConn{c.(*recConn), l.reads}, nil
}

type readRecConn struct {
	*recConn
	reads *[][]byte
}

func (c *readRecConn) Read(p []byte) (int, error) {
	n, err := c.recConn.Read(p)
	if n > 0 {
		c.mu.Lock()
		*c.reads = append(*c.reads, append([]byte(nil), p[:n]...))
		c.mu.Unlock()
	}
	return n, err
}

type tool struct {
	name string
	args func(base string) []string
}

func tools(t *testing.T) []tool {
	post := filepath.Join(t.TempDir(), "post")
	if err := os.WriteFile(post, []byte(strings.Repeat("posted data ", 3000)), 0o644); err != nil {
		t.Fatal(err)
	}
	return []tool{
		{"nghttp", func(base string) []string {
			return []string{"nghttp", "-n", "-H", "cookie: a=1; b=2", "-H", "x-tool: nghttp", "-d", post,
				base + "/one", base + "/two?q=1", base + "/three"}
		}},
		{"curl", func(base string) []string {
			// curl 7.88 fails reusing a prior-knowledge connection: one
			// request.
			return []string{"curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "--compressed",
				"-H", "x-tool: curl", "-H", "cookie: a=1; b=2", "--data-binary", "@" + post, base + "/upload?x=y"}
		}},
	}
}

func TestTools(t *testing.T) {
	for _, tool := range tools(t) {
		t.Run(tool.name, func(t *testing.T) {
			cp, got := recordTool(t, tool.args)
			for name, chunks := range map[string][][]byte{"as read": cp.Client, "bytewise": split(flat(cp.Client), 1)} {
				cl, _ := decodeAll(Client, Limits{}, chunks, chunkIndex)
				sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
				if len(cl) != len(got) || len(sv) != len(got) {
					t.Fatalf("%s: %d requests, %d responses, server saw %d:\n%s%s", name, len(cl), len(sv), len(got),
						describe("client", cl), describe("server", sv))
				}
				paths := map[uint32]string{}
				for _, m := range cl {
					s, ok := got[m.Path]
					if m.Type != decoder.HTTP2Request || m.Incomplete || !ok || s.method != m.Method || s.body != string(body(m)) ||
						field(m, "cookie") != "a=1; b=2" || field(m, "x-tool") != tool.name || field(m, "user-agent") != s.header.Get("User-Agent") {
						t.Errorf("%s: request %s:\n%s", name, m.Path, describe("client", []*Message{m}))
					}
					paths[m.StreamID] = m.Path
				}
				for _, m := range sv {
					if m.Status != 200 || m.Incomplete || string(body(m)) != "resp:"+paths[m.StreamID] {
						t.Errorf("%s: response:\n%s", name, describe("server", []*Message{m}))
					}
				}
			}
		})
	}
}

// TestPushReal: net/http's server pushes to nghttp, which accepts pushes.
func TestPushReal(t *testing.T) {
	cp, got := recordTool(t, func(base string) []string { return []string{"nghttp", "-n", base + "/page"} })
	if len(got) != 2 {
		t.Fatalf("server handled %d requests", len(got))
	}
	sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
	var push, page, pushed *Message
	for _, m := range sv {
		switch {
		case IsPushPromise(m):
			push = m
		case m.StreamID%2 == 1: // nghttp starts at 13
			page = m
		case m.StreamID%2 == 0:
			pushed = m
		}
	}
	if push == nil || page == nil || pushed == nil || len(sv) != 3 {
		t.Fatalf("got:\n%s", describe("server", sv))
	}
	if push.Method != "GET" || push.Path != "/style.css" || push.Incomplete || pushed.StreamID != push.StreamID ||
		string(body(pushed)) != "resp:/style.css" || string(body(page)) != "resp:/page" || pushed.Incomplete || page.Incomplete {
		t.Errorf("got:\n%s", describe("server", sv))
	}
}

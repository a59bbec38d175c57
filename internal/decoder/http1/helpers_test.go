package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/zstd"
)

// This file records real HTTP/1.x traffic: a net/http server on loopback
// behind a listener whose connections copy both directions into buffers,
// driven by net/http, gorilla/websocket, raw sockets and curl.

// tapConn records what the server reads (requests) and writes (responses).
type tapConn struct {
	net.Conn
	mu        sync.Mutex
	req, resp bytes.Buffer
	once      sync.Once
	closed    chan struct{}
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.req.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.resp.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

type tapListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*tapConn
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: c, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns = append(l.conns, tc)
	l.mu.Unlock()
	return tc, nil
}

// recording is one connection's two directions.
type recording struct {
	req, resp []byte
}

// record serves the test handler on 127.0.0.1, runs drive against its
// address and returns the single connection drive made.
func record(t testing.TB, drive func(t testing.TB, addr string)) recording {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &tapListener{Listener: ln}
	srv := &http.Server{Handler: testHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(tl)
	}()
	drive(t, ln.Addr().String())
	// Let the server see the client's close, then stop it.
	tl.mu.Lock()
	conns := tl.conns
	tl.mu.Unlock()
	for _, c := range conns {
		select {
		case <-c.closed:
		case <-time.After(10 * time.Second):
			t.Errorf("server connection not closed")
		}
	}
	srv.Close()
	<-done
	if len(conns) != 1 {
		t.Fatalf("drive made %d connections, want 1", len(conns))
	}
	c := conns[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	return recording{req: bytes.Clone(c.req.Bytes()), resp: bytes.Clone(c.resp.Bytes())}
}

// bodyText is the handler's text body: long enough that compression and
// chunking matter, and the same on every run.
var bodyText = func() string {
	var b strings.Builder
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	for i := range 120 {
		fmt.Fprintf(&b, "line %03d: %s %s %s\n", i, words[i%8], words[(i*3)%8], words[(i*5+1)%8])
	}
	return b.String()
}()

// noise returns n bytes of seeded pseudo-random hex text in 64-byte lines.
func noise(n int) []byte {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	out := make([]byte, n)
	for i := range out {
		out[i] = "0123456789abcdef"[rng.IntN(16)]
		if i%64 == 63 {
			out[i] = '\n'
		}
	}
	return out
}

// encode applies a content coding the way a server would. Encoding into a
// buffer cannot fail, so it panics if it does.
func encode(coding string, p []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip", "x-gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "rawdeflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err)
		}
		w = zw
	default:
		panic("unknown coding " + coding)
	}
	if _, err := w.Write(p); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	// /enc/{coding}: bodyText under a content coding. "gzip-br" is gzip
	// then br, "unknown" a coding no decoder knows.
	mux.HandleFunc("/enc/{coding}", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Content-Type", "text/plain")
		c := r.PathValue("coding")
		body := []byte(bodyText)
		switch c {
		case "gzip-br":
			body = encode("br", encode("gzip", body))
			w.Header().Set("Content-Encoding", "gzip, br")
		case "unknown":
			body = encode("gzip", body)
			w.Header().Set("Content-Encoding", "x-unknown")
		case "rawdeflate":
			body = encode(c, body)
			w.Header().Set("Content-Encoding", "deflate")
		default:
			body = encode(c, body)
			w.Header().Set("Content-Encoding", c)
		}
		w.Write(body)
	})
	// /stream: chunked (Flush) with a trailer; ?gzip=1 compresses it and
	// ?n= repeats bodyText.
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "text/plain")
		n := 1
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		var out io.Writer = w
		var zw *gzip.Writer
		if r.URL.Query().Get("gzip") != "" {
			w.Header().Set("Content-Encoding", "gzip")
			zw = gzip.NewWriter(w)
			out = zw
		}
		for range n {
			for _, part := range strings.SplitAfter(bodyText, "line 060") {
				io.WriteString(out, part)
				if zw != nil {
					zw.Flush()
				}
				w.(http.Flusher).Flush()
			}
		}
		if zw != nil {
			zw.Close()
		}
		w.Header().Set("X-Checksum", "sum-1234")
	})
	// /noise?n=: n bytes of seeded pseudo-random hex, gzip, chunked in
	// 4 KiB flushes: a body that compresses only about two to one.
	mux.HandleFunc("/noise", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		w.Header().Set("Content-Encoding", "gzip")
		n := 0
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		zw := gzip.NewWriter(w)
		for p := noise(n); len(p) > 0; {
			k := min(len(p), 4096)
			zw.Write(p[:k])
			zw.Flush()
			w.(http.Flusher).Flush()
			p = p[k:]
		}
		zw.Close()
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{EnableCompression: true}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(mt, p) != nil {
				return
			}
		}
	})
	// CONNECT opens a tunnel that echoes.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			mux.ServeHTTP(w, r)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n")
		io.Copy(c, rw.Reader)
	})
}

// newClient returns a client that keeps one connection to the server.
func newClient(addr string) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		MaxConnsPerHost:       1,
		MaxIdleConnsPerHost:   1,
		ExpectContinueTimeout: 10 * time.Second,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	return &http.Client{Transport: tr}, tr
}

// do sends a request with the client and reads the whole response.
func do(t testing.TB, c *http.Client, method, url string, body string, hdr ...string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	if len(hdr) >= 2 && hdr[0] == "Transfer-Encoding" {
		// A body of unknown length is sent chunked.
		rd, hdr = io.MultiReader(rd), hdr[2:]
	}
	req, err := http.NewRequest(method, "http://example.test"+url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// raw writes requests on a plain socket, then reads until the server
// closes (the last request says Connection: close).
func raw(t testing.TB, addr, requests string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, requests); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, c)
}

func curl(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append([]string{"-s", "-S", "--http1.1", "--noproxy", "*", "-o", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
}

package http2

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/decoder"
)

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

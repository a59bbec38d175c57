package session_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"

	"github.com/tlstap/tlstap/internal/capture"
)

// chunk is one Read or Write call of the traced (client) process.
type chunk struct {
	dir  capture.Direction
	data []byte
}

// recording is a connection as the client process's socket calls saw it.
type recording []chunk

// teeConn records every Read and Write of a client connection, as an
// eBPF probe on the client's TLS library would.
type teeConn struct {
	net.Conn
	r *recorder
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.add(capture.Read, p[:n])
	return n, err
}

func (c *teeConn) Write(p []byte) (int, error) {
	c.r.add(capture.Write, p)
	return c.Conn.Write(p)
}

// recorder hands out recorded loopback connections.
type recorder struct {
	mu    sync.Mutex
	rec   recording
	dials int
}

func (r *recorder) add(dir capture.Direction, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	r.rec = append(r.rec, chunk{dir, bytes.Clone(p)})
	r.mu.Unlock()
}

func (r *recorder) dial(network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("refusing non-loopback address %q", addr)
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.dials++
	r.mu.Unlock()
	return &teeConn{Conn: c, r: r}, nil
}

func (r *recorder) recording() (recording, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(recording(nil), r.rec...), r.dials
}

// File format: per chunk one direction byte, a big-endian uint32 length,
// the bytes.

func (rec recording) save(path string) error {
	var b bytes.Buffer
	for _, c := range rec {
		b.WriteByte(byte(c.dir))
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c.data))))
		b.Write(c.data)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func loadRecording(path string) (recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec recording
	for len(b) > 0 {
		if len(b) < 5 || b[0] > 1 {
			return nil, errors.New("corrupt recording")
		}
		n := binary.BigEndian.Uint32(b[1:])
		if uint64(len(b)-5) < uint64(n) {
			return nil, errors.New("truncated recording")
		}
		rec = append(rec, chunk{capture.Direction(b[0]), b[5 : 5+n]})
		b = b[5+n:]
	}
	return rec, nil
}

// exchange is one request a conversation makes and what must come back.
type exchange struct {
	method, path string
	body         string
	status       int
}

var httpExchanges = []exchange{
	{"GET", "/hello", "", 200},
	{"POST", "/echo", `{"name":"tlstap","n":1}`, 200},
	{"GET", "/chunked", "", 200},
	{"GET", "/gzip", "", 200},
	{"PUT", "/missing", "x=1", 404},
	{"GET", "/big", "", 200},
}

// handler serves httpExchanges.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, strings.Repeat("compressed text ", 50))
		zw.Close()
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 5000))
	})
	// Read every request body before answering: a server that answers
	// (404) before the body arrives makes HTTP/2 reset the stream, and
	// whether the client then still sends the body is a race that would
	// make the recording differ run to run.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mux.ServeHTTP(w, r)
	})
}

// doExchanges runs httpExchanges through client against base.
func doExchanges(t *testing.T, client *http.Client, base string) {
	t.Helper()
	for _, e := range httpExchanges {
		var body io.Reader
		if e.body != "" {
			body = strings.NewReader(e.body)
		}
		req, err := http.NewRequest(e.method, base+e.path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != e.status {
			t.Fatalf("%s %s: status %d", e.method, e.path, resp.StatusCode)
		}
	}
}

// recordHTTP1 records a net/http keep-alive conversation over 127.0.0.1.
func recordHTTP1(t *testing.T) recording {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	var r recorder
	tr := &http.Transport{DialContext: func(_ context.Context, n, a string) (net.Conn, error) { return r.dial(n, a) }}
	defer tr.CloseIdleConnections()
	doExchanges(t, &http.Client{Transport: tr}, srv.URL)
	return oneConn(t, &r)
}

// recordH2C records an HTTP/2 conversation with prior knowledge (h2c),
// net/http's bundled golang.org/x/net/http2 on both ends.
func recordH2C(t *testing.T) recording {
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	srv := httptest.NewUnstartedServer(handler())
	srv.Config.Protocols = &h2c
	srv.Start()
	defer srv.Close()
	var r recorder
	tr := &http.Transport{
		Protocols:   &h2c,
		DialContext: func(_ context.Context, n, a string) (net.Conn, error) { return r.dial(n, a) },
	}
	defer tr.CloseIdleConnections()
	doExchanges(t, &http.Client{Transport: tr}, srv.URL)
	return oneConn(t, &r)
}

// wsMessages are what the WebSocket conversation's client sends; the server
// echoes each.
var wsMessages = []string{"hello", strings.Repeat("compress me please ", 20), "", strings.Repeat("compress me please ", 20)}

// recordWebSocket records a coder/websocket session with permessage-deflate
// and context takeover, a ping and a close.
func recordWebSocket(t *testing.T) recording {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	opts := cws.CompressionContextTakeover
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := cws.Accept(w, r, &cws.AcceptOptions{CompressionMode: opts, CompressionThreshold: 16})
		if err != nil {
			done <- err
			return
		}
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				if cws.CloseStatus(err) == cws.StatusNormalClosure {
					err = nil
				}
				done <- err
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				done <- err
				return
			}
		}
	}))
	defer srv.Close()
	var r recorder
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(_ context.Context, n, a string) (net.Conn, error) { return r.dial(n, a) },
	}}
	c, _, err := cws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/chat", &cws.DialOptions{
		HTTPClient: client, CompressionMode: opts, CompressionThreshold: 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range wsMessages {
		if err := c.Write(ctx, cws.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Read(ctx); err != nil || string(p) != m {
			t.Fatalf("echo: %q, %v", p, err)
		}
	}
	readCtx := c.CloseRead(ctx)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(cws.StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	<-readCtx.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return oneConn(t, &r)
}

func oneConn(t *testing.T, r *recorder) recording {
	t.Helper()
	rec, dials := r.recording()
	if dials != 1 {
		t.Fatalf("%d connections, want one", dials)
	}
	return rec
}

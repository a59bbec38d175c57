package websocket_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	gws "github.com/gorilla/websocket"
)

// sent is one data message the client sends and the server echoes.
type sent struct {
	binary bool
	data   []byte
	// writes > 1 sends the message through a Writer in that many Write
	// calls, which the libraries turn into fragments.
	writes int
}

const (
	closeCode   = 4000
	closeReason = "bye: done testing"
)

// textOf returns n bytes of repetitive text, which deflate shrinks a lot.
func textOf(n, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "{\"seq\":%d,\"seed\":%d,\"msg\":\"héllo wörld\"} ", i, seed)
	}
	return b.Bytes()[:n]
}

// binaryOf returns n pseudo-random bytes, which deflate cannot shrink.
func binaryOf(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bigScript covers every length encoding, fragmentation by the library
// and messages larger than 64 KiB.
func bigScript() []sent {
	var s []sent
	for i, n := range []int{0, 1, 7, 125, 126, 127, 1000, 65535, 65536, 70000, 200000} {
		s = append(s, sent{data: textOf(n, i), writes: 1})
		s = append(s, sent{binary: true, data: binaryOf(n, uint64(i)), writes: 1})
	}
	s = append(s,
		sent{data: textOf(100000, 99), writes: 5},
		sent{binary: true, data: binaryOf(90000, 98), writes: 7},
		sent{data: textOf(300, 97), writes: 3},
	)
	return s
}

// smallScript makes fixtures small enough to split at every byte.
func smallScript() []sent {
	return []sent{
		{data: []byte("hello"), writes: 1},
		{binary: true, data: []byte{0, 1, 2, 0xff}, writes: 1},
		{data: nil, writes: 1},
		{data: textOf(200, 1), writes: 1},
		{data: textOf(200, 1), writes: 1}, // repeated: context takeover pays
		{data: textOf(300, 2), writes: 3},
		{binary: true, data: binaryOf(130, 3), writes: 1},
	}
}

// runCoder runs script over a coder/websocket client and server on
// 127.0.0.1 and returns the client socket's recording. The server echoes
// every message; the client then pings and closes with closeCode.
func runCoder(t *testing.T, mode cws.CompressionMode, threshold int, script []sent) recording {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := cws.Accept(w, r, &cws.AcceptOptions{CompressionMode: mode, CompressionThreshold: threshold})
		if err != nil {
			done <- err
			return
		}
		c.SetReadLimit(1 << 30)
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				if cws.CloseStatus(err) == closeCode {
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
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return r.dial(network, addr) },
	}}
	c, _, err := cws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &cws.DialOptions{
		HTTPClient: client, CompressionMode: mode, CompressionThreshold: threshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 30)
	for i, m := range script {
		typ := cws.MessageText
		if m.binary {
			typ = cws.MessageBinary
		}
		if m.writes > 1 {
			w, err := c.Writer(ctx, typ)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeIn(w, m.data, m.writes); err != nil {
				t.Fatal(err)
			}
		} else if err := c.Write(ctx, typ, m.data); err != nil {
			t.Fatal(err)
		}
		gotTyp, p, err := c.Read(ctx)
		if err != nil || gotTyp != typ || !bytes.Equal(p, m.data) {
			t.Fatalf("echo %d: type %v err %v, equal %v", i, gotTyp, err, bytes.Equal(p, m.data))
		}
	}
	readCtx := c.CloseRead(ctx) // Ping needs a reader for the pong.
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(closeCode, closeReason); err != nil {
		t.Fatal(err)
	}
	<-readCtx.Done()
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	return r.recording()
}

// runGorilla is runCoder with gorilla/websocket on both ends. Gorilla
// compresses every message, without context takeover.
func runGorilla(t *testing.T, compress bool, script []sent) recording {
	t.Helper()
	done := make(chan error, 1)
	// The server writes whole messages as one frame, the client in
	// 4 KiB fragments.
	up := gws.Upgrader{EnableCompression: compress, WriteBufferSize: 1 << 20}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				if gws.IsCloseError(err, closeCode) {
					err = nil
				}
				done <- err
				return
			}
			if err := c.WriteMessage(typ, p); err != nil {
				done <- err
				return
			}
		}
	}))
	defer srv.Close()

	var r recorder
	d := gws.Dialer{
		NetDial:           r.dial,
		EnableCompression: compress,
		WriteBufferSize:   4096,
	}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, m := range script {
		typ := gws.TextMessage
		if m.binary {
			typ = gws.BinaryMessage
		}
		w, err := c.NextWriter(typ)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeIn(w, m.data, m.writes); err != nil {
			t.Fatal(err)
		}
		gotTyp, p, err := c.ReadMessage()
		if err != nil || gotTyp != typ || !bytes.Equal(p, m.data) {
			t.Fatalf("echo %d: type %v err %v, equal %v", i, gotTyp, err, bytes.Equal(p, m.data))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	if err := c.WriteControl(gws.PingMessage, []byte("1"), deadline); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(closeCode, closeReason), deadline); err != nil {
		t.Fatal(err)
	}
	// Read until the server's close reply (its default ping handler
	// answers the ping first).
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	return r.recording()
}

// writeIn writes p in n roughly equal Write calls and closes w.
func writeIn(w io.WriteCloser, p []byte, n int) error {
	n = max(n, 1)
	step := (len(p) + n - 1) / n
	for len(p) > 0 {
		k := min(step, len(p))
		if _, err := w.Write(p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	return w.Close()
}

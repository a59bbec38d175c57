package websocket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
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

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
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

// decodeChunks feeds chunks with ts = 1, 2, ... and flushes on close.
func decodeChunks(opts websocket.Options, l decoder.Limits, chunks [][]byte) []*decoder.Message {
	var got []*decoder.Message
	emit := func(m *decoder.Message) { got = append(got, m) }
	d := websocket.New(opts, l)
	for i, c := range chunks {
		d.Feed(int64(i+1), c, emit)
	}
	d.Flush(int64(len(chunks)+1), decoder.Close, emit)
	return got
}

// wantMsg is what a decoded message must be.
type wantMsg struct {
	op      uint8
	code    uint16
	payload []byte
}

// expect lists the messages of one direction for a script: the data
// messages, then the ping (or its pong), then the close.
func expect(script []sent, ctl uint8, closeText string) []wantMsg {
	var w []wantMsg
	for _, m := range script {
		op := uint8(1)
		if m.binary {
			op = 2
		}
		w = append(w, wantMsg{op: op, payload: m.data})
	}
	return append(w,
		wantMsg{op: ctl, payload: []byte("1")},
		wantMsg{op: 8, code: closeCode, payload: []byte(closeText)},
	)
}

func checkMessages(t *testing.T, name string, got []*decoder.Message, want []wantMsg) {
	t.Helper()
	if len(got) != len(want) {
		for _, m := range got {
			t.Logf("%s: got %s", name, render(m))
		}
		t.Fatalf("%s: %d messages, want %d", name, len(got), len(want))
	}
	for i, m := range got {
		w := want[i]
		if m.Type != decoder.WebSocket || m.WSOpcode != w.op || m.WSCloseCode != w.code ||
			!bytes.Equal(m.Payload, w.payload) || m.Truncated || m.Incomplete || m.OriginalLength != 0 {
			t.Errorf("%s message %d: got %s; want op %d code %d len %d", name, i, render(m), w.op, w.code, len(w.payload))
		}
	}
}

// render prints every field of a message on one line; payloads longer
// than 48 bytes are shown by prefix and length.
func render(m *decoder.Message) string {
	p := m.Payload
	suffix := ""
	if len(p) > 48 {
		p, suffix = p[:48], "..."
	}
	return fmt.Sprintf("type=%s op=%d code=%d start=%d end=%d len=%d orig=%d trunc=%t incomplete=%t sha256=%.16x payload=%q%s",
		m.Type, m.WSOpcode, m.WSCloseCode, m.Start, m.End, len(m.Payload), m.OriginalLength,
		m.Truncated, m.Incomplete, sha256.Sum256(m.Payload), p, suffix)
}

func TestLiveCoder(t *testing.T) {
	cases := []struct {
		name      string
		mode      cws.CompressionMode
		threshold int
		ext       string // expected in Sec-WebSocket-Extensions
	}{
		{"disabled", cws.CompressionDisabled, 0, ""},
		{"context-takeover", cws.CompressionContextTakeover, 64, "permessage-deflate"},
		{"no-context-takeover", cws.CompressionNoContextTakeover, 64, "client_no_context_takeover"},
		{"context-takeover-default-threshold", cws.CompressionContextTakeover, 0, "permessage-deflate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			script := bigScript()
			c2s, s2c, ext := splitHandshake(t, runCoder(t, tc.mode, tc.threshold, script))
			if !strings.Contains(ext, tc.ext) || (tc.ext == "") != (ext == "") {
				t.Fatalf("extensions %q, want %q", ext, tc.ext)
			}
			checkCompressed(t, c2s, script, tc.ext != "")
			checkFrames(t, c2s, s2c, tc.ext != "")
			l := decoder.DefaultLimits()
			checkMessages(t, "c2s", decodeChunks(websocket.Options{FromClient: true, Extensions: ext}, l, c2s.chunks),
				expect(script, 9, closeReason))
			checkMessages(t, "s2c", decodeChunks(websocket.Options{Extensions: ext}, l, s2c.chunks),
				expect(script, 10, closeReason))
		})
	}
}

func TestLiveGorilla(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%t", compress), func(t *testing.T) {
			script := bigScript()
			c2s, s2c, ext := splitHandshake(t, runGorilla(t, compress, script))
			if compress != strings.Contains(ext, "permessage-deflate") {
				t.Fatalf("extensions %q", ext)
			}
			checkCompressed(t, c2s, script, compress)
			checkFrames(t, c2s, s2c, compress)
			l := decoder.DefaultLimits()
			checkMessages(t, "c2s", decodeChunks(websocket.Options{FromClient: true, Extensions: ext}, l, c2s.chunks),
				expect(script, 9, closeReason))
			// Gorilla's default close handler replies without a reason.
			checkMessages(t, "s2c", decodeChunks(websocket.Options{Extensions: ext}, l, s2c.chunks),
				expect(script, 10, ""))
		})
	}
}

// checkCompressed makes sure the recording exercises what the test claims:
// compressed text makes the wire smaller than the payloads.
func checkCompressed(t *testing.T, side wsSide, script []sent, compressed bool) {
	t.Helper()
	payload := 0
	for _, m := range script {
		payload += len(m.data)
	}
	wire := len(side.bytes())
	if compressed != (wire < payload) {
		t.Fatalf("wire %d bytes for %d payload bytes; compressed=%t", wire, payload, compressed)
	}
}

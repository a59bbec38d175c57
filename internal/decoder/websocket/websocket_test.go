package websocket_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	cws "github.com/coder/websocket"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
)

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

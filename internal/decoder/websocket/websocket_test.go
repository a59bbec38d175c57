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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	gws "github.com/gorilla/websocket"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
	"github.com/tlstap/tlstap/internal/golden"
)

var key = []byte{0x37, 0xfa, 0x21, 0x3d}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func closePayload(code uint16, reason string) []byte {
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

// out is a compact expectation: type, opcode, close code, payload, flags.
type out struct {
	typ        decoder.Type
	op         uint8
	code       uint16
	payload    string
	orig       uint64
	trunc, inc bool
}

func ws(op uint8, payload string) out { return out{typ: decoder.WebSocket, op: op, payload: payload} }

func outs(ms []*decoder.Message) []out {
	var o []out
	for _, m := range ms {
		o = append(o, out{m.Type, m.WSOpcode, m.WSCloseCode, string(m.Payload), m.OriginalLength, m.Truncated, m.Incomplete})
	}
	return o
}

func TestFraming(t *testing.T) {
	long := strings.Repeat("x", 70000)
	mid := strings.Repeat("y", 300)
	tests := []struct {
		name       string
		fromClient bool
		ext        string
		in         []byte
		want       []out
		// reason is the failure counted, once, if any.
		reason decoder.Reason
	}{
		{
			name: "control frames between fragments",
			in: cat(
				frame(false, false, 1, nil, []byte("frag1 ")),
				frame(true, false, 9, nil, []byte("ping!")),
				frame(false, false, 0, nil, []byte("frag2 ")),
				frame(true, false, 10, nil, nil),
				frame(true, false, 0, nil, []byte("frag3")),
			),
			want: []out{ws(9, "ping!"), ws(10, ""), ws(1, "frag1 frag2 frag3")},
		},
		{
			name:       "masked client frames",
			fromClient: true,
			in: cat(
				frame(true, false, 2, key, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}),
				frame(false, false, 1, key, []byte("ab")),
				frame(true, false, 0, key, []byte("cdefghijklm")),
			),
			want: []out{ws(2, "\x01\x02\x03\x04\x05\x06\x07\x08\x09"), ws(1, "abcdefghijklm")},
		},
		{
			name: "length encodings",
			in: cat(
				frame(true, false, 1, nil, []byte(mid)),
				frame(true, false, 2, nil, []byte(long)),
				// A 64-bit length for a short payload is not minimal but
				// unambiguous; it is accepted.
				[]byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 3}, []byte("abc"),
			),
			want: []out{ws(1, mid), ws(2, long), ws(1, "abc")},
		},
		{
			name: "close frames",
			in: cat(
				frame(true, false, 8, nil, closePayload(1000, "normal")),
				frame(true, false, 8, nil, nil),
				frame(true, false, 8, nil, []byte{3}),
			),
			want: []out{
				{typ: decoder.WebSocket, op: 8, code: 1000, payload: "normal"},
				ws(8, ""),
				ws(8, "\x03"),
			},
		},
		{
			name:   "rsv1 without permessage-deflate",
			in:     cat(frame(true, false, 1, nil, []byte("ok")), frame(true, true, 1, nil, []byte("zz"))),
			want:   []out{ws(1, "ok"), {payload: "\xc1\x02zz", inc: false}},
			reason: decoder.WebSocketFrameDataUnexpected,
		},
		{
			name:   "reserved opcode",
			in:     cat(frame(true, false, 3, nil, []byte("??"))),
			want:   []out{{payload: "\x83\x02??"}},
			reason: decoder.WebSocketFrameOpcodeUnknown,
		},
		{
			name:   "rsv2",
			in:     []byte{0xa1, 0x00},
			want:   []out{{payload: "\xa1\x00"}},
			reason: decoder.WebSocketFrameRSVBits,
		},
		{
			name:       "unmasked client frame",
			fromClient: true,
			in:         frame(true, false, 1, nil, []byte("x")),
			want:       []out{{payload: "\x81\x01x"}},
			reason:     decoder.WebSocketFrameMask,
		},
		{
			name:   "masked server frame",
			in:     frame(true, false, 1, key, []byte("x")),
			want:   []out{{payload: string(frame(true, false, 1, key, []byte("x")))}},
			reason: decoder.WebSocketFrameMask,
		},
		{
			name:   "fragmented control frame",
			in:     frame(false, false, 9, nil, []byte("x")),
			want:   []out{{payload: "\x09\x01x"}},
			reason: decoder.WebSocketFrameControlInvalid,
		},
		{
			name:   "oversized control frame",
			in:     frame(true, false, 9, nil, []byte(mid)),
			want:   []out{{payload: string(frame(true, false, 9, nil, []byte(mid)))}},
			reason: decoder.WebSocketFrameControlInvalid,
		},
		{
			name:   "continuation without a message",
			in:     frame(true, false, 0, nil, []byte("x")),
			want:   []out{{payload: "\x80\x01x"}},
			reason: decoder.WebSocketFrameContinuationUnexpected,
		},
		{
			name:   "data frame inside a fragmented message",
			in:     cat(frame(false, false, 1, nil, []byte("part")), frame(true, false, 2, nil, []byte("new"))),
			want:   []out{{typ: decoder.WebSocket, op: 1, payload: "part", inc: true}, {payload: "\x82\x03new"}},
			reason: decoder.WebSocketFrameDataUnexpected,
		},
		{
			name:   "64-bit length with the top bit set",
			in:     []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x'},
			want:   []out{{payload: "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01x"}},
			reason: decoder.WebSocketFrameLengthInvalid,
		},
		{
			name:   "HTTP is not WebSocket",
			in:     []byte("GET / HTTP/1.1\r\n\r\n"),
			want:   []out{{payload: "GET / HTTP/1.1\r\n\r\n"}},
			reason: decoder.WebSocketFrameOpcodeUnknown,
		},
		{
			name:   "rsv1 on a continuation frame",
			ext:    "permessage-deflate",
			in:     cat(frame(false, false, 1, nil, []byte("a")), frame(true, true, 0, nil, []byte("b"))),
			want:   []out{{typ: decoder.WebSocket, op: 1, payload: "a", inc: true}, {payload: "\xc0\x01b"}},
			reason: decoder.WebSocketFrameContinuationUnexpected,
		},
		{
			name:   "rsv1 on a control frame",
			ext:    "permessage-deflate",
			in:     frame(true, true, 9, nil, nil),
			want:   []out{{payload: "\xc9\x00"}},
			reason: decoder.WebSocketFrameControlInvalid,
		},
		{
			name: "close mid-message",
			in:   cat(frame(false, false, 2, nil, []byte("abc")), frame(true, false, 0, nil, []byte("defgh"))[:4]),
			want: []out{{typ: decoder.WebSocket, op: 2, payload: "abcde", inc: true}},
		},
		{
			name: "close mid-control frame",
			in:   frame(true, false, 9, nil, []byte("ping"))[:4],
			want: []out{{typ: decoder.WebSocket, op: 9, payload: "pi", inc: true}},
		},
		{
			name: "close mid-header",
			in:   cat(frame(true, false, 1, nil, []byte("ok")), []byte{0x82, 126, 0x01}),
			want: []out{ws(1, "ok"), {payload: "\x82\x7e\x01", inc: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := websocket.Options{FromClient: tt.fromClient, Extensions: tt.ext}
			for cut := range len(tt.in) + 1 {
				var counts decoder.Counts
				lim := decoder.DefaultLimits()
				lim.Errors = &counts
				got := outs(decodeChunks(opts, lim, [][]byte{tt.in[:cut], tt.in[cut:]}))
				if !equalOuts(got, tt.want) {
					t.Fatalf("cut at %d:\n got %+v\nwant %+v", cut, got, tt.want)
				}
				var want []decoder.Reason
				if tt.reason != decoder.NoReason {
					want = []decoder.Reason{tt.reason}
				}
				if c := counts.Counted(); !slices.Equal(c, want) || (tt.reason != decoder.NoReason && counts.Get(tt.reason) != 1) {
					t.Fatalf("cut at %d: counted %v, want %v once", cut, c, want)
				}
				if len(tt.in) > 1000 {
					break // long inputs are split by TestRandomChunking
				}
			}
		})
	}
}

func equalOuts(a, b []out) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeflate(t *testing.T) {
	text := func(i int) string { return strings.Repeat("the quick brown fox jumps ", 3+i) }
	for _, tc := range []struct {
		ext        string
		fromClient bool
		takeover   bool
	}{
		{"permessage-deflate", false, true},
		{"permessage-deflate", true, true},
		{"permessage-deflate; client_no_context_takeover", true, false},
		{"permessage-deflate; client_no_context_takeover", false, true},
		{"permessage-deflate; server_no_context_takeover; client_max_window_bits=10", false, false},
		{"permessage-deflate; server_no_context_takeover", true, true},
		{"x-webkit-deflate-frame, Permessage-Deflate ; Server_No_Context_Takeover", false, false},
	} {
		t.Run(tc.ext, func(t *testing.T) {
			var k []byte
			if tc.fromClient {
				k = key
			}
			z := newDeflater(tc.takeover)
			var in []byte
			var want []out
			for i := range 5 {
				msg := text(i)
				in = append(in, frame(true, true, 1, k, z.compress([]byte(msg)))...)
				want = append(want, ws(1, msg))
			}
			// A fragmented compressed message: RSV1 on the first frame only.
			c := z.compress([]byte(text(9)))
			in = append(in, frame(false, true, 1, k, c[:3])...)
			in = append(in, frame(true, false, 9, k, []byte("p"))...)
			in = append(in, frame(true, false, 0, k, c[3:])...)
			// Uncompressed messages may be mixed in.
			in = append(in, frame(true, false, 2, k, []byte("plain"))...)
			want = append(want, ws(9, "p"), ws(1, text(9)), ws(2, "plain"))
			opts := websocket.Options{FromClient: tc.fromClient, Extensions: tc.ext}
			for cut := range len(in) + 1 {
				got := outs(decodeChunks(opts, decoder.DefaultLimits(), [][]byte{in[:cut], in[cut:]}))
				if !equalOuts(got, want) {
					t.Fatalf("cut at %d:\n got %+v\nwant %+v", cut, got, want)
				}
			}
		})
	}
}

// TestDeflateWrongTakeover shows why the takeover parameters matter: a
// decoder that resets its window between messages cannot read a sender
// that keeps it.
func TestDeflateWrongTakeover(t *testing.T) {
	z := newDeflater(true)
	msg := []byte(strings.Repeat("abcdefgh", 40))
	in := cat(frame(true, true, 1, nil, z.compress(msg)), frame(true, true, 1, nil, z.compress(msg)))
	got := outs(decodeChunks(websocket.Options{Extensions: "permessage-deflate; server_no_context_takeover"},
		decoder.DefaultLimits(), [][]byte{in}))
	if len(got) < 2 || got[1] == ws(1, string(msg)) {
		t.Fatalf("second message decoded without the window: %+v", got)
	}
}

func TestLimits(t *testing.T) {
	small := decoder.DefaultLimits()
	small.MaxBodyBytes = 100
	small.MaxBufferBytes = 200
	random := string(binaryOf(1000, 7))
	zeros := strings.Repeat("\x00", 100000)

	tests := []struct {
		name string
		ext  string
		in   func() []byte
		want []out
		// reason is the failure counted, once, if any.
		reason decoder.Reason
	}{
		{
			name: "long message truncated, next one intact",
			in: func() []byte {
				return cat(frame(false, false, 1, nil, []byte(strings.Repeat("a", 80))),
					frame(true, false, 0, nil, []byte(strings.Repeat("b", 80))),
					frame(true, false, 1, nil, []byte("next")))
			},
			want: []out{
				{typ: decoder.WebSocket, op: 1, payload: strings.Repeat("a", 80) + strings.Repeat("b", 20), orig: 160, trunc: true},
				ws(1, "next"),
			},
		},
		{
			name: "inflated output truncated, window kept",
			ext:  "permessage-deflate",
			in: func() []byte {
				z := newDeflater(true)
				return cat(frame(true, true, 1, nil, z.compress([]byte(strings.Repeat("q", 300)))),
					frame(true, true, 1, nil, z.compress([]byte(strings.Repeat("q", 50)))))
			},
			want: []out{
				{typ: decoder.WebSocket, op: 1, payload: strings.Repeat("q", 100), orig: 300, trunc: true},
				ws(1, strings.Repeat("q", 50)),
			},
		},
		{
			name: "decompression bomb with context takeover: raw after",
			ext:  "permessage-deflate",
			in: func() []byte {
				z := newDeflater(true)
				return cat(frame(true, true, 2, nil, z.compress([]byte(zeros))), []byte("tail"))
			},
			want: []out{
				{typ: decoder.WebSocket, op: 2, payload: zeros[:100], orig: 0, trunc: true},
				{payload: "tail"},
			},
			reason: decoder.WebSocketDeflateTooLarge,
		},
		{
			name: "decompression bomb without context takeover: next message intact",
			ext:  "permessage-deflate; server_no_context_takeover",
			in: func() []byte {
				z := newDeflater(false)
				return cat(frame(true, true, 2, nil, z.compress([]byte(zeros))),
					frame(true, true, 1, nil, z.compress([]byte("fine"))))
			},
			want: []out{
				{typ: decoder.WebSocket, op: 2, payload: zeros[:100], orig: 0, trunc: true},
				ws(1, "fine"),
			},
			reason: decoder.WebSocketDeflateTooLarge,
		},
		{
			name: "compressed message beyond the buffer, context takeover: raw after",
			ext:  "permessage-deflate",
			in: func() []byte {
				z := newDeflater(true)
				return cat(frame(true, true, 2, nil, z.compress([]byte(random))), []byte("tail"))
			},
			want: []out{
				{typ: decoder.WebSocket, op: 2, payload: random[:100], orig: 0, trunc: true},
				{payload: "tail"},
			},
			reason: decoder.WebSocketDeflateTooLarge,
		},
		{
			name: "corrupt deflate data",
			ext:  "permessage-deflate; server_no_context_takeover",
			in: func() []byte {
				return cat(frame(true, true, 1, nil, []byte{0xff, 0xff, 0xff}), []byte("tail"))
			},
			want: []out{
				{typ: decoder.WebSocket, op: 1, payload: "", inc: true},
				{payload: "tail"},
			},
			reason: decoder.WebSocketDeflateCorrupt,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			var counts decoder.Counts
			lim := small
			lim.Errors = &counts
			got := decodeChunks(websocket.Options{Extensions: tt.ext}, lim, [][]byte{in})
			var want []decoder.Reason
			if tt.reason != decoder.NoReason {
				want = []decoder.Reason{tt.reason}
			}
			if c := counts.Counted(); !slices.Equal(c, want) || (tt.reason != decoder.NoReason && counts.Get(tt.reason) != 1) {
				t.Errorf("counted %v, want %v once", c, want)
			}
			o := outs(got)
			// The bombs' OriginalLength is a lower bound that depends on
			// the inflate cap; check its range and compare the rest.
			for i := range o {
				if o[i].trunc && o[i].orig != 0 && tt.want[i].orig == 0 {
					if o[i].orig <= uint64(len(o[i].payload)) {
						t.Errorf("message %d: OriginalLength %d not above payload", i, o[i].orig)
					}
					o[i].orig = 0
				}
			}
			if !equalOuts(o, tt.want) {
				t.Fatalf("\n got %+v\nwant %+v", o, tt.want)
			}
			for _, m := range got {
				if len(m.Payload) > small.MaxBodyBytes {
					t.Fatalf("payload %d bytes over the limit", len(m.Payload))
				}
			}
		})
	}
}

func TestGap(t *testing.T) {
	var got []*decoder.Message
	emit := func(m *decoder.Message) { got = append(got, m) }
	d := websocket.New(websocket.Options{}, decoder.DefaultLimits())
	d.Feed(1, frame(true, false, 1, nil, []byte("whole")), emit)
	d.Feed(2, frame(false, false, 1, nil, []byte("half")), emit)
	d.Gap(10)
	d.Feed(3, frame(true, false, 1, nil, []byte("after")), emit)
	d.Flush(4, decoder.Idle, emit)
	want := []out{
		ws(1, "whole"),
		{typ: decoder.WebSocket, op: 1, payload: "half", inc: true},
		{payload: string(frame(true, false, 1, nil, []byte("after")))},
	}
	if o := outs(got); !equalOuts(o, want) {
		t.Fatalf("\n got %+v\nwant %+v", o, want)
	}
	if got[1].Start != 2 || got[1].End != 2 || got[2].Start != 3 {
		t.Fatalf("times: %s / %s", render(got[1]), render(got[2]))
	}
}

func TestIdleFlushKeepsFrames(t *testing.T) {
	var got []*decoder.Message
	emit := func(m *decoder.Message) { got = append(got, m) }
	d := websocket.New(websocket.Options{}, decoder.DefaultLimits())
	in := frame(true, false, 1, nil, []byte("patience"))
	d.Feed(1, in[:5], emit)
	d.Flush(2, decoder.Idle, emit)
	d.Feed(3, in[5:], emit)
	if o := outs(got); !equalOuts(o, []out{ws(1, "patience")}) {
		t.Fatalf("got %+v", o)
	}
	if got[0].Start != 1 || got[0].End != 3 {
		t.Fatalf("times: %s", render(got[0]))
	}
}

// TestPayloadOwnership checks that emitted payloads are not overwritten by
// later input.
func TestPayloadOwnership(t *testing.T) {
	var got []*decoder.Message
	emit := func(m *decoder.Message) { got = append(got, m) }
	d := websocket.New(websocket.Options{FromClient: true, Extensions: "permessage-deflate"}, decoder.DefaultLimits())
	z := newDeflater(true)
	r := rand.New(rand.NewPCG(3, 4))
	var want []string
	for i := range 50 {
		p := binaryOf(r.IntN(300), uint64(i))
		want = append(want, string(p))
		f := frame(true, i%2 == 0, 2, key, p)
		if i%2 == 0 {
			f = frame(true, true, 2, key, z.compress(p))
		}
		d.Feed(int64(i), f, emit)
		clear(f)
	}
	for i, m := range got {
		if string(m.Payload) != want[i] {
			t.Fatalf("message %d changed", i)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
}

// fixtures are small recorded sessions, checked in so that the golden
// output (including timestamps, which follow the recorded chunking) is
// stable. -update records them afresh over loopback.
var fixtures = []struct {
	name   string
	record func(t *testing.T) recording
}{
	{"coder-plain", func(t *testing.T) recording { return runCoder(t, cws.CompressionDisabled, 0, smallScript()) }},
	{"coder-takeover", func(t *testing.T) recording { return runCoder(t, cws.CompressionContextTakeover, 1, smallScript()) }},
	{"coder-no-takeover", func(t *testing.T) recording {
		return runCoder(t, cws.CompressionNoContextTakeover, 1, smallScript())
	}},
	{"gorilla-deflate", func(t *testing.T) recording { return runGorilla(t, true, smallScript()) }},
}

func loadFixture(t *testing.T, name string) recording {
	t.Helper()
	rec, err := loadRecording(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// sideOptions returns the decoder options of both directions.
func sideOptions(ext string) [2]websocket.Options {
	return [2]websocket.Options{{FromClient: true, Extensions: ext}, {Extensions: ext}}
}

func TestGolden(t *testing.T) {
	if *golden.Update {
		defer writeSeeds(t)
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			recPath := filepath.Join("testdata", fx.name+".rec")
			if *golden.Update {
				if err := fx.record(t).save(recPath); err != nil {
					t.Fatal(err)
				}
			}
			c2s, s2c, ext := splitHandshake(t, loadFixture(t, fx.name))
			var out strings.Builder
			out.WriteString("extensions: " + ext + "\n")
			opts := sideOptions(ext)
			for i, side := range []wsSide{c2s, s2c} {
				dir := [2]string{"c2s", "s2c"}[i]
				for _, m := range decodeChunks(opts[i], decoder.DefaultLimits(), side.chunks) {
					out.WriteString(dir + " " + render(m) + "\n")
				}
			}
			golden.Check(t, filepath.Join("testdata", fx.name+".golden"), []byte(out.String()))
		})
	}
}

// untimed renders messages without their timestamps, which depend on how
// the bytes were chunked.
func untimed(ms []*decoder.Message) string {
	var b strings.Builder
	for _, m := range ms {
		c := *m
		c.Start, c.End = 0, 0
		b.WriteString(render(&c) + "\n")
		b.Write(m.Payload) // whole payload, not only render's prefix
		b.WriteByte('\n')
	}
	return b.String()
}

// TestSplitEverywhere feeds each fixture direction cut at every byte
// offset, and one byte at a time: the messages must not depend on where
// the reads ended.
func TestSplitEverywhere(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			c2s, s2c, ext := splitHandshake(t, loadFixture(t, fx.name))
			opts := sideOptions(ext)
			l := decoder.DefaultLimits()
			for i, side := range []wsSide{c2s, s2c} {
				stream := side.bytes()
				want := untimed(decodeChunks(opts[i], l, [][]byte{stream}))
				if strings.Contains(want, "incomplete=true") || strings.Contains(want, "type=raw") {
					t.Fatalf("direction %d does not decode cleanly:\n%s", i, want)
				}
				for cut := range len(stream) + 1 {
					got := untimed(decodeChunks(opts[i], l, [][]byte{stream[:cut], stream[cut:]}))
					if got != want {
						t.Fatalf("direction %d cut at %d:\n%s\nwant:\n%s", i, cut, got, want)
					}
				}
				var bytewise [][]byte
				for j := range stream {
					bytewise = append(bytewise, stream[j:j+1])
				}
				if got := untimed(decodeChunks(opts[i], l, bytewise)); got != want {
					t.Fatalf("direction %d byte by byte:\n%s\nwant:\n%s", i, got, want)
				}
			}
		})
	}
}

// rechunk cuts b at n random offsets.
func rechunk(b []byte, n int, r *rand.Rand) [][]byte {
	var out [][]byte
	for range n {
		if len(b) == 0 {
			break
		}
		k := r.IntN(len(b) + 1)
		out = append(out, b[:k])
		b = b[k:]
	}
	return append(out, b)
}

// TestRandomChunking re-chunks a large live session many ways.
func TestRandomChunking(t *testing.T) {
	script := bigScript()
	c2s, s2c, ext := splitHandshake(t, runCoder(t, cws.CompressionContextTakeover, 64, script))
	opts := sideOptions(ext)
	l := decoder.DefaultLimits()
	r := rand.New(rand.NewPCG(1, 2))
	for i, side := range []wsSide{c2s, s2c} {
		stream := side.bytes()
		want := untimed(decodeChunks(opts[i], l, [][]byte{stream}))
		for range 20 {
			if got := untimed(decodeChunks(opts[i], l, rechunk(stream, 1+r.IntN(200), r))); got != want {
				t.Fatalf("direction %d: random chunking changed the messages", i)
			}
		}
		if !bytes.Contains([]byte(want), []byte("op=8 code=4000")) {
			t.Fatalf("direction %d: no close message", i)
		}
	}
}

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

// fuzzExtensions are the negotiations FuzzFrames picks from.
var fuzzExtensions = []string{
	"",
	"permessage-deflate",
	"permessage-deflate; client_no_context_takeover; server_no_context_takeover",
}

// FuzzFrames feeds arbitrary bytes, whole and cut in two, under tight and
// default limits. Beyond not panicking, the messages must respect the
// limits and must not depend on the cut.
func FuzzFrames(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzFrames, written by writeSeeds from the
	// recorded fixtures.
	f.Fuzz(func(t *testing.T, data []byte, fromClient bool, ext uint8, tight bool, cut uint16) {
		l := decoder.DefaultLimits()
		if tight {
			l.MaxBodyBytes, l.MaxBufferBytes, l.RawFlushBytes = 64, 128, 256
		}
		opts := websocket.Options{FromClient: fromClient, Extensions: fuzzExtensions[int(ext)%len(fuzzExtensions)]}
		whole := decodeChunks(opts, l, [][]byte{data})
		for _, m := range whole {
			limit := l.MaxBodyBytes
			if m.Type == decoder.Raw {
				limit = max(l.RawFlushBytes, 14) // a failed header is at most 14 bytes
			}
			if len(m.Payload) > limit {
				t.Fatalf("%s: payload over limit %d", render(m), limit)
			}
		}
		k := min(int(cut), len(data))
		split := decodeChunks(opts, l, [][]byte{data[:k], data[k:]})
		if a, b := untimed(whole), untimed(split); a != b {
			t.Fatalf("cut at %d changed the messages:\n%s\nvs whole:\n%s", k, b, a)
		}
	})
}

// writeSeeds checks the fuzz seed corpus in: go test's corpus file format,
// one file per fixture direction. Called under -update.
func writeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrames")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, fx := range fixtures {
		c2s, s2c, ext := splitHandshake(t, loadFixture(t, fx.name))
		e := 0
		if ext != "" {
			e = 1
		}
		for i, side := range []wsSide{c2s, s2c} {
			b := side.bytes()
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%t)\nbyte(%q)\nbool(%t)\nuint16(%d)\n",
				b, i == 0, rune(e), i == 1, len(b)/3)
			name := fmt.Sprintf("%s-%d", fx.name, i)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

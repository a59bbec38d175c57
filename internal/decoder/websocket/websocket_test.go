package websocket_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
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

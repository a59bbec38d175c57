package split

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
)

type part struct {
	info decoder.PartInfo
	data []byte
}

// run feeds body cut at every step bytes, then flushes.
func run(f Framing, maxPart int, body []byte, step int) []part {
	var out []part
	s := New(f, maxPart)
	emit := func(info decoder.PartInfo, data []byte) { out = append(out, part{info, data}) }
	for len(body) > 0 {
		n := min(step, len(body))
		s.Write(body[:n], emit)
		body = body[n:]
	}
	s.Flush(emit)
	return out
}

func grpcMsg(flag byte, msg string) string {
	var p [5]byte
	p[0] = flag
	binary.BigEndian.PutUint32(p[1:], uint32(len(msg)))
	return string(p[:]) + msg
}

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		ct, ce string
		want   Framing
	}{
		{"text/event-stream", "", SSE},
		{"text/event-stream; charset=utf-8", "", SSE},
		{"TEXT/EVENT-STREAM", "", SSE},
		{"text/event-stream", "gzip", Window},
		{"text/event-stream", "identity", SSE},
		{"application/grpc", "", GRPC},
		{"application/grpc+proto", "", GRPC},
		{"application/grpc-web", "", Window},
		{"application/x-ndjson", "", Lines},
		{"application/json-seq", "", Lines},
		{"application/json", "", Window},
		{"", "", Window},
		{";;;", "", Window},
	} {
		if got := For(tc.ct, tc.ce); got != tc.want {
			t.Errorf("For(%q, %q) = %v, want %v", tc.ct, tc.ce, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 25)
	for _, tc := range []struct {
		name   string
		f      Framing
		max    int
		body   string
		parts  []string
		checks func(t *testing.T, ps []part)
	}{
		{name: "sse", f: SSE, max: 64, body: "event: a\ndata: 1\n\nid: 7\ndata: x\ndata: y\n\n: ping\n\n",
			parts: []string{"event: a\ndata: 1\n\n", "id: 7\ndata: x\ndata: y\n\n", ": ping\n\n"},
			checks: func(t *testing.T, ps []part) {
				if e := ps[0].info.SSE; e == nil || e.Event != "a" || e.Data != "1" {
					t.Errorf("event 0: %+v", e)
				}
				if e := ps[1].info.SSE; e == nil || e.ID != "7" || e.Data != "x\ny" {
					t.Errorf("event 1: %+v", e)
				}
				if ps[2].info.SSE != nil {
					t.Errorf("comment parsed as %+v", ps[2].info.SSE)
				}
			}},
		{name: "sse crlf and cr", f: SSE, max: 64, body: "data: a\r\n\r\ndata: b\r\rdata: c",
			parts: []string{"data: a\r\n\r\n", "data: b\r\r", "data: c"},
			checks: func(t *testing.T, ps []part) {
				for i, want := range []string{"a", "b", "c"} {
					if e := ps[i].info.SSE; e == nil || e.Data != want {
						t.Errorf("event %d: %+v", i, e)
					}
				}
			}},
		{name: "grpc", f: GRPC, body: grpcMsg(0, "\x08\x01") + grpcMsg(1, "") + grpcMsg(0, "abc"),
			parts: []string{grpcMsg(0, "\x08\x01"), grpcMsg(1, ""), grpcMsg(0, "abc")},
			checks: func(t *testing.T, ps []part) {
				if g := ps[1].info.GRPC; g == nil || !g.Compressed || g.Length != 0 {
					t.Errorf("message 1: %+v", g)
				}
				if g := ps[2].info.GRPC; g == nil || g.Compressed || g.Length != 3 {
					t.Errorf("message 2: %+v", g)
				}
			}},
		{name: "grpc longer than a part", f: GRPC, body: grpcMsg(0, string(big)) + grpcMsg(0, "z"),
			parts: []string{grpcMsg(0, string(big))[:16], string(big[11:25]), grpcMsg(0, "z")},
			checks: func(t *testing.T, ps []part) {
				if !ps[0].info.Continued || !ps[1].info.Continued || ps[2].info.Continued {
					t.Errorf("continued flags: %v %v %v", ps[0].info.Continued, ps[1].info.Continued, ps[2].info.Continued)
				}
				if g := ps[0].info.GRPC; g == nil || g.Length != 25 {
					t.Errorf("message 0: %+v", g)
				}
				if ps[1].info.GRPC != nil {
					t.Errorf("continuation has a prefix: %+v", ps[1].info.GRPC)
				}
			}},
		{name: "lines", f: Lines, body: "{\"a\":1}\n{\"b\":2}\n\x1e{}\ntail",
			parts: []string{"{\"a\":1}\n", "{\"b\":2}\n", "\x1e{}\n", "tail"}},
		{name: "long line", f: Lines, body: string(big) + "\nok\n",
			parts: []string{string(big[:16]), string(big[16:]) + "\n", "ok\n"}},
		{name: "window", f: Window, body: string(big) + string(big),
			parts: []string{string(big[:16]), string(big[16:]) + string(big[:7]), string(big[7:23]), string(big[23:])}},
	} {
		for _, step := range []int{1, 3, 1 << 20} {
			ps := run(tc.f, cmp.Or(tc.max, 16), []byte(tc.body), step)
			var got []string
			var off uint64
			for i, p := range ps {
				got = append(got, string(p.data))
				if p.info.Index != uint32(i) || p.info.Offset != off {
					t.Errorf("%s/%d: part %d index %d offset %d, want offset %d", tc.name, step, i, p.info.Index, p.info.Offset, off)
				}
				off += uint64(len(p.data))
			}
			if tc.f == Window && step == 1<<20 {
				// One write: cut by size only.
				continue
			}
			if tc.f != Window && !equal(got, tc.parts) {
				t.Errorf("%s/%d: parts %q, want %q", tc.name, step, got, tc.parts)
			}
			if tc.checks != nil {
				tc.checks(t, ps)
			}
		}
	}
}

func equal(a, b []string) bool {
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

// check verifies what holds for any input: parts re-assemble the body, are
// no larger than the bound, and are numbered and placed in order.
func check(t *testing.T, f Framing, body []byte, cuts []byte) {
	const maxPart = 64
	var got []byte
	s := New(f, maxPart)
	var n uint32
	emit := func(info decoder.PartInfo, data []byte) {
		if len(data) == 0 || len(data) > maxPart {
			t.Fatalf("part %d has %d bytes", n, len(data))
		}
		if info.Index != n || info.Offset != uint64(len(got)) {
			t.Fatalf("part %d: index %d offset %d, want offset %d", n, info.Index, info.Offset, len(got))
		}
		if info.GRPC != nil && (len(data) < grpcPrefix || binary.BigEndian.Uint32(data[1:5]) != info.GRPC.Length) {
			t.Fatalf("part %d: gRPC prefix %+v does not match %x", n, info.GRPC, data)
		}
		n++
		got = append(got, data...)
	}
	rest := body
	for _, c := range cuts {
		k := min(int(c), len(rest))
		s.Write(rest[:k], emit)
		rest = rest[k:]
		if s.Buffered() > maxPart {
			t.Fatalf("buffered %d bytes", s.Buffered())
		}
	}
	s.Write(rest, emit)
	s.Flush(emit)
	if !bytes.Equal(got, body) {
		t.Fatalf("parts re-assemble to %q, want %q", got, body)
	}
}

func fuzzSplit(f *testing.F, fr Framing, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s), []byte{1, 2, 3, 7})
	}
	f.Fuzz(func(t *testing.T, body, cuts []byte) { check(t, fr, body, cuts) })
}

func FuzzSSE(f *testing.F) {
	fuzzSplit(f, SSE, "event: a\ndata: 1\n\n", "data: x\r\n\r\n:c\r\rid: 1\n\n", "\n\n\n")
}

func FuzzGRPC(f *testing.F) {
	fuzzSplit(f, GRPC, grpcMsg(0, "\x08\x96\x01"), grpcMsg(1, "")+grpcMsg(0, "x"), "\x00\xff\xff\xff\xff")
}

func FuzzLines(f *testing.F) {
	fuzzSplit(f, Lines, "{}\n[]\n", "\x1e{\"a\":1}\n", "no newline")
}

func FuzzParseSSE(f *testing.F) {
	f.Add([]byte("event: a\r\ndata: 1\rdata:2\n:x\nid\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ev := ParseSSE(b); ev != nil && len(ev.Data) > len(b) {
			t.Fatalf("data %q longer than the event", ev.Data)
		}
	})
}

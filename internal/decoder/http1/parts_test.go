package http1

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
)

// feedResponses feeds each input as one Feed of the response direction and
// returns what every Feed emitted.
func feedResponses(t *testing.T, l decoder.Limits, req string, in ...string) [][]*decoder.Message {
	t.Helper()
	c := NewConn(l)
	c.Requests().Feed(1, []byte(req), func(*decoder.Message) {})
	var out [][]*decoder.Message
	for i, p := range in {
		var got []*decoder.Message
		emit := func(m *decoder.Message) { got = append(got, m) }
		c.Responses().Feed(int64(10+i), []byte(p), emit)
		// The connection goes idle after every input.
		c.Responses().Flush(int64(10+i), decoder.Idle, emit)
		out = append(out, got)
	}
	var got []*decoder.Message
	c.Responses().Flush(100, decoder.Close, func(m *decoder.Message) { got = append(got, m) })
	return append(out, got)
}

func describe(ms []*decoder.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s:%q", m.Part, m.Payload)
		if e := m.PartInfo.SSE; e != nil {
			fmt.Fprintf(&b, "{%s|%s}", e.Event, e.Data)
		}
		if m.Incomplete {
			b.WriteString("!")
		}
		b.WriteString(" ")
	}
	return b.String()
}

func TestStreamParts(t *testing.T) {
	on := decoder.Limits{StreamParts: true}
	const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name string
		lim  decoder.Limits
		in   []string
		want []string // per Feed, then the close
	}{
		{
			name: "sse chunked",
			lim:  on,
			in:   []string{sseHead, "12\r\nevent: a\ndata:", " 1\n\n\r\n", "9\r\ndata: 2\n\n\r\n0\r\nX-T: 1\r\n\r\n"},
			want: []string{
				`head:"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" `,
				``,
				`part:"event: a\ndata: 1\n\n"{a|1} `,
				`part:"data: 2\n\n"{|2} end:"X-T: 1\r\n" `,
				``,
			},
		},
		{
			name: "whole when the body completes with the head",
			lim:  on,
			in:   []string{sseHead + "9\r\ndata: 1\n\n\r\n0\r\n\r\n"},
			want: []string{
				`whole:"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 9\r\n\r\ndata: 1\n\n" `,
				``,
			},
		},
		{
			name: "off",
			lim:  decoder.Limits{},
			in:   []string{sseHead, "9\r\ndata: 1\n\n\r\n", "0\r\n\r\n"},
			want: []string{``, ``, `whole:"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 9\r\n\r\ndata: 1\n\n" `, ``},
		},
		{
			name: "ndjson by length, cut by close",
			lim:  on,
			in:   []string{"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100\r\n\r\n{\"a\":1}\n{\"b\"", ":2}\n"},
			want: []string{
				`head:"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100\r\n\r\n" part:"{\"a\":1}\n" `,
				`part:"{\"b\":2}\n" `,
				`end:""! `,
			},
		},
		{
			name: "window: cut at idle and by the part size",
			lim:  decoder.Limits{StreamParts: true, MaxPartBytes: 8},
			in:   []string{"HTTP/1.1 200 OK\r\n\r\n0123", "456789abcdefghijk", "l"},
			want: []string{
				`head:"HTTP/1.1 200 OK\r\n\r\n" part:"0123" `,
				`part:"456789ab" part:"cdefghij" part:"k" `,
				`part:"l" `,
				`end:"" `,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := feedResponses(t, tc.lim, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", tc.in...)
			for i := range max(len(got), len(tc.want)) {
				var g, w string
				if i < len(got) {
					g = describe(got[i])
				}
				if i < len(tc.want) {
					w = tc.want[i]
				}
				if g != w {
					t.Errorf("feed %d:\n got %s\nwant %s", i, g, w)
				}
			}
		})
	}
}

// TestStreamIdle: a body without boundaries is cut at idle flushes.
func TestStreamIdle(t *testing.T) {
	c := NewConn(decoder.Limits{StreamParts: true})
	var got []*decoder.Message
	emit := func(m *decoder.Message) { got = append(got, m) }
	req := c.Requests()
	req.Feed(1, []byte("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), emit)
	req.Flush(2, decoder.Idle, emit)
	req.Feed(3, []byte("2\r\nde\r\n"), emit)
	req.Flush(4, decoder.Idle, emit)
	req.Flush(5, decoder.Idle, emit)
	req.Feed(6, []byte("0\r\n\r\n"), emit)
	want := `head:"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" part:"abc" part:"de" end:"" `
	if g := describe(got); g != want {
		t.Fatalf("got %s\nwant %s", g, want)
	}
	for i, m := range got {
		if m.Type != decoder.HTTP1Request || m.Method != "POST" || m.Path != "/up" {
			t.Errorf("message %d: %v %s %s", i, m.Type, m.Method, m.Path)
		}
	}
	if got[2].PartInfo.Index != 1 || got[2].PartInfo.Offset != 3 {
		t.Errorf("second part: %+v", got[2].PartInfo)
	}
	if got[3].OriginalLength != 5 {
		t.Errorf("end: body length %d, want 5", got[3].OriginalLength)
	}
}

// TestStreamMemory: an endless body costs no more than a part.
func TestStreamMemory(t *testing.T) {
	c := NewConn(decoder.Limits{StreamParts: true, MaxPartBytes: 1024, MaxBodyBytes: 4096})
	resp := c.Responses()
	c.Requests().Feed(1, []byte("GET / HTTP/1.1\r\n\r\n"), func(*decoder.Message) {})
	var n, total int
	emit := func(m *decoder.Message) {
		n++
		if m.Part == decoder.Body {
			total += len(m.Payload)
			if len(m.Payload) > 1024 {
				t.Fatalf("part of %d bytes", len(m.Payload))
			}
		}
	}
	resp.Feed(2, []byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"), emit)
	chunk := make([]byte, 1000)
	for range 1000 {
		resp.Feed(3, chunk, emit)
		if s := &c.resp; cap(s.m.body) > 2048 || (s.m.split != nil && s.m.split.Buffered() > 1024) {
			t.Fatalf("body buffered: cap %d", cap(s.m.body))
		}
	}
	resp.Flush(4, decoder.Close, emit)
	if total != 1000*1000 {
		t.Fatalf("parts carry %d bytes, want %d", total, 1000*1000)
	}
}

// TestStreamAfter: a body that keeps arriving without ever going idle is
// streamed once it has been arriving for StreamAfter.
func TestStreamAfter(t *testing.T) {
	c := NewConn(decoder.Limits{StreamParts: true, StreamAfter: 100})
	c.Requests().Feed(1, []byte("GET / HTTP/1.1\r\n\r\n"), func(*decoder.Message) {})
	var got []*decoder.Message
	emit := func(m *decoder.Message) { got = append(got, m) }
	resp := c.Responses()
	resp.Feed(10, []byte("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n1\n\r\n"), emit)
	resp.Feed(60, []byte("2\r\n2\n\r\n"), emit)
	if len(got) != 0 {
		t.Fatalf("streamed before StreamAfter: %s", describe(got))
	}
	resp.Feed(110, []byte("2\r\n3\n\r\n"), emit)
	want := `head:"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n" part:"1\n" part:"2\n" part:"3\n" `
	if g := describe(got); g != want {
		t.Fatalf("got %s\nwant %s", g, want)
	}
	if got[3].Start != 110 || got[3].End != 110 || got[1].Start != 10 {
		t.Errorf("part times: %d-%d, first from %d", got[3].Start, got[3].End, got[1].Start)
	}
}

// FuzzStreamParts feeds either direction in random pieces with idle flushes
// and gaps, streaming on with small limits: no panic, no part larger than
// MaxPartBytes, and a streamed body never buffered beyond a part.
func FuzzStreamParts(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"), uint64(1))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Type: application/grpc\r\nContent-Length: 40\r\n\r\n\x00\x00\x00\x00\x02\x08\x01"), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		lim := decoder.Limits{StreamParts: true, MaxPartBytes: 64, StreamAfter: 3, MaxHeaderBytes: 256, MaxBodyBytes: 512, MaxBufferBytes: 1024, RawFlushBytes: 300}
		c := NewConn(lim)
		s := &c.req
		if seed&1 == 1 {
			s = &c.resp
			c.Requests().Feed(0, []byte("GET / HTTP/1.1\r\n\r\n"), func(*decoder.Message) {})
		}
		rng := rand.New(rand.NewPCG(seed, seed>>1))
		emit := func(m *decoder.Message) {
			if m.Part == decoder.Body && (len(m.Payload) == 0 || len(m.Payload) > 64) {
				t.Fatalf("part of %d bytes", len(m.Payload))
			}
		}
		for ts := int64(1); len(data) > 0; ts++ {
			n := min(len(data), 1+rng.IntN(100))
			s.Feed(ts, data[:n], emit)
			data = data[n:]
			switch rng.IntN(8) {
			case 0:
				s.Flush(ts, decoder.Idle, emit)
			case 1:
				s.Gap(uint64(1 + rng.IntN(16)))
			}
			if s.m.split != nil && (s.m.split.Buffered() > 64 || len(s.m.body) > 0) {
				t.Fatalf("streamed body buffered: %d in the splitter, %d in the body", s.m.split.Buffered(), len(s.m.body))
			}
		}
		s.Flush(1<<20, decoder.Close, emit)
	})
}

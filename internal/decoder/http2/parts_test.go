package http2

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/decoder"
)

func grpcFrame(msg string) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func partsOf(ms []*Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s/%d:%q", m.Part, m.StreamID, m.Payload)
		if g := m.PartInfo.GRPC; g != nil {
			fmt.Fprintf(&b, "{grpc %d}", g.Length)
		}
		if e := m.PartInfo.SSE; e != nil {
			fmt.Fprintf(&b, "{sse %s}", e.Data)
		}
		if g := m.GRPCStatus; g != nil {
			fmt.Fprintf(&b, "{status %d %s}", g.Code, g.Message)
		}
		if m.Incomplete {
			b.WriteString("!")
		}
		b.WriteString(" ")
	}
	return b.String()
}

// TestStreamParts feeds a server's frames one Feed per chunk: a gRPC server
// stream and an SSE stream interleaved, and a response whose body arrives
// with its head.
func TestStreamParts(t *testing.T) {
	sv := newFrames(t)
	sv.ok(sv.fr.WriteSettings())
	sv.headers(1, false, ":status", "200", "content-type", "application/grpc")
	sv.headers(3, false, ":status", "200", "content-type", "text/event-stream")
	c0 := sv.chunk()
	m := grpcFrame("\x08\x01")
	sv.ok(sv.fr.WriteData(1, false, m[:3]))
	sv.ok(sv.fr.WriteData(3, false, []byte("data: a\n\ndata: b")))
	c1 := sv.chunk()
	sv.ok(sv.fr.WriteData(1, false, append(m[3:], grpcFrame("x")...)))
	sv.ok(sv.fr.WriteData(3, false, []byte("\n\n")))
	c2 := sv.chunk()
	sv.headers(1, true, "grpc-status", "5", "grpc-message", "not found")
	sv.headers(5, false, ":status", "200")
	sv.ok(sv.fr.WriteData(5, true, []byte("whole")))
	c3 := sv.chunk()
	sv.ok(sv.fr.WriteRSTStream(3, http2.ErrCodeCancel))
	c4 := sv.chunk()

	for _, tc := range []struct {
		name string
		lim  Limits
		want []string
	}{
		{"on", Limits{StreamParts: true}, []string{
			`head/1:"HTTP/2 200\r\ncontent-type: application/grpc\r\n\r\n" head/3:"HTTP/2 200\r\ncontent-type: text/event-stream\r\n\r\n" `,
			`part/3:"data: a\n\n"{sse a} `,
			`part/1:"\x00\x00\x00\x00\x02\b\x01"{grpc 2} part/1:"\x00\x00\x00\x00\x01x"{grpc 1} part/3:"data: b\n\n"{sse b} `,
			`end/1:"grpc-status: 5\r\ngrpc-message: not found\r\n"{status 5 not found} whole/5:"HTTP/2 200\r\nContent-Length: 5\r\n\r\nwhole" `,
			`end/3:""! `,
		}},
		{"off", Limits{}, []string{``, ``, ``,
			`whole/1:"HTTP/2 200\r\ncontent-type: application/grpc\r\ngrpc-status: 5\r\ngrpc-message: not found\r\nContent-Length: 13\r\n\r\n\x00\x00\x00\x00\x02\b\x01\x00\x00\x00\x00\x01x" whole/5:"HTTP/2 200\r\nContent-Length: 5\r\n\r\nwhole" `,
			`whole/3:"HTTP/2 200\r\ncontent-type: text/event-stream\r\nContent-Length: 18\r\n\r\ndata: a\n\ndata: b\n\n"! `,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder(Server, tc.lim)
			for i, c := range [][]byte{c0, c1, c2, c3, c4} {
				var got []*Message
				emit := func(m *Message) { got = append(got, m) }
				d.Feed(int64(i+1), c, emit)
				d.Flush(int64(i+1), decoder.Idle, emit)
				if g := partsOf(got); g != tc.want[i] {
					t.Errorf("feed %d:\n got %s\nwant %s", i, g, tc.want[i])
				}
				for _, m := range got {
					if m.Part != decoder.Whole && m.Status != 200 {
						t.Errorf("feed %d: %s of stream %d has status %d", i, m.Part, m.StreamID, m.Status)
					}
				}
			}
		})
	}
}

// TestStreamIdle: DATA without boundaries is cut at idle flushes; a request
// head is emitted before its body completes.
func TestStreamIdle(t *testing.T) {
	cl := newFrames(t)
	cl.preface()
	cl.headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "h", ":path", "/up")
	c0 := cl.chunk()
	cl.ok(cl.fr.WriteData(1, false, []byte("abc")))
	c1 := cl.chunk()
	cl.ok(cl.fr.WriteData(1, true, []byte("de")))
	c2 := cl.chunk()

	d := newDecoder(Client, Limits{StreamParts: true})
	var got []*Message
	emit := func(m *Message) { got = append(got, m) }
	d.Feed(1, c0, emit)
	d.Flush(2, decoder.Idle, emit)
	d.Feed(3, c1, emit)
	d.Flush(4, decoder.Idle, emit)
	d.Feed(5, c2, emit)
	want := `head/1:"POST /up HTTP/2\r\nHost: h\r\n\r\n" part/1:"abc" part/1:"de" end/1:"" `
	if g := partsOf(got); g != want {
		t.Fatalf("got %s\nwant %s", g, want)
	}
	for _, m := range got {
		if m.Method != "POST" || m.Path != "/up" || m.Host != "h" {
			t.Errorf("%s: %s %s %s", m.Part, m.Method, m.Host, m.Path)
		}
	}
	if got[3].OriginalLength != 5 || got[2].PartInfo.Offset != 3 || got[2].End != 5 {
		t.Errorf("end length %d, part offset %d end %d", got[3].OriginalLength, got[2].PartInfo.Offset, got[2].End)
	}
}

// TestStreamAfter: DATA that keeps arriving without the connection going
// idle is streamed once it has been arriving for StreamAfter, and a stream
// that ends within it stays whole.
func TestStreamAfter(t *testing.T) {
	sv := newFrames(t)
	sv.ok(sv.fr.WriteSettings())
	sv.headers(1, false, ":status", "200", "content-type", "application/x-ndjson")
	sv.headers(3, false, ":status", "200")
	sv.ok(sv.fr.WriteData(1, false, []byte("1\n")))
	c0 := sv.chunk()
	sv.ok(sv.fr.WriteData(3, true, []byte("quick")))
	c1 := sv.chunk()
	sv.ok(sv.fr.WriteData(1, false, []byte("2\n")))
	c2 := sv.chunk()
	d := newDecoder(Server, Limits{StreamParts: true, StreamAfter: 100})
	var got []*Message
	emit := func(m *Message) { got = append(got, m) }
	d.Feed(10, c0, emit)
	d.Feed(50, c1, emit)
	d.Feed(120, c2, emit)
	want := `whole/3:"HTTP/2 200\r\nContent-Length: 5\r\n\r\nquick" head/1:"HTTP/2 200\r\ncontent-type: application/x-ndjson\r\n\r\n" part/1:"1\n" part/1:"2\n" `
	if g := partsOf(got); g != want {
		t.Fatalf("got %s\nwant %s", g, want)
	}
}

// FuzzStreamParts decodes either side in pieces with idle flushes,
// streaming on with small limits: no panic and no part larger than
// MaxPartBytes.
func FuzzStreamParts(f *testing.F) {
	sv := newFrames(f)
	sv.ok(sv.fr.WriteSettings())
	sv.headers(1, false, ":status", "200", "content-type", "application/grpc")
	sv.ok(sv.fr.WriteData(1, false, grpcFrame("\x08\x01")))
	sv.headers(1, true, "grpc-status", "0")
	f.Add(sv.chunk(), uint8(1))
	f.Add([]byte(clientPreface), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, side uint8) {
		d := newDecoder(Side(side&1), Limits{StreamParts: true, MaxPartBytes: 16, StreamAfter: 2, MaxStreams: 4, MaxBodyBytes: 256})
		emit := func(m *Message) {
			if m.Part == decoder.Body && (len(m.Payload) == 0 || len(m.Payload) > 16) {
				t.Fatalf("part of %d bytes", len(m.Payload))
			}
		}
		for i, c := range split(data, 13) {
			d.Feed(int64(i), c, emit)
			if i%3 == 0 {
				d.Flush(int64(i), decoder.Idle, emit)
			}
		}
		d.Flush(1<<20, decoder.Close, emit)
	})
}

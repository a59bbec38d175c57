package http2

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/decoder"
)

// exchange is the bytes of one request and its response, each one Write.
type exchange struct{ req, resp []byte }

// connection writes n exchanges of a typical API client after the start of
// the connection, with HPACK encoders as warm as after the first request.
func connection(b *testing.B, n int) (start exchange, ex []exchange) {
	cl, sv := newFrames(b), newFrames(b)
	cl.preface()
	cl.ok(cl.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}))
	sv.ok(sv.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 250}))
	start = exchange{cl.chunk(), sv.chunk()}
	for i := range n {
		id := uint32(2*i + 1)
		cl.headers(id, true, ":method", "GET", ":scheme", "https", ":authority", "api.example.com",
			":path", fmt.Sprintf("/v1/items/%d", i), "user-agent", "bench/1.0", "accept", "application/json",
			"accept-encoding", "gzip")
		sv.headers(id, false, ":status", "200", "content-type", "application/json", "content-length", "11")
		sv.ok(sv.fr.WriteData(id, true, []byte(`{"ok":true}`)))
		ex = append(ex, exchange{cl.chunk(), sv.chunk()})
	}
	return start, ex
}

// BenchmarkStreams measures request/response pairs decoded per second on
// one goroutine, both sides, with the HPACK tables warm.
func BenchmarkStreams(b *testing.B) {
	const perConn = 10000
	start, ex := connection(b, perConn)
	size := 0
	for _, e := range ex {
		size += len(e.req) + len(e.resp)
	}
	b.SetBytes(int64(size / len(ex)))
	var msgs int
	emit := func(m *decoder.Message) { msgs++ }
	var cl, sv decoder.Decoder
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % perConn
		if k == 0 {
			// A new connection every perConn streams; its cost is
			// part of the figure, amortised.
			cl, sv = New(Client, decoder.DefaultLimits()), New(Server, decoder.DefaultLimits())
			cl.Feed(0, start.req, emit)
			sv.Feed(0, start.resp, emit)
		}
		cl.Feed(int64(i), ex[k].req, emit)
		sv.Feed(int64(i), ex[k].resp, emit)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "streams/s")
	if msgs != 2*b.N {
		b.Fatalf("%d messages for %d streams", msgs, b.N)
	}
}

// BenchmarkLargeBody measures DATA throughput: an 8 MiB response in 16 KiB
// frames, fed a frame at a time.
func BenchmarkLargeBody(b *testing.B) {
	const size = 8 << 20
	sv := newFrames(b)
	sv.ok(sv.fr.WriteSettings())
	sv.headers(1, false, ":status", "200", "content-type", "application/octet-stream")
	var chunks [][]byte
	chunks = append(chunks, sv.chunk())
	body := randBytes(size, 7)
	for off := 0; off < size; off += 16 << 10 {
		sv.ok(sv.fr.WriteData(1, off+16<<10 >= size, body[off:min(off+16<<10, size)]))
		chunks = append(chunks, sv.chunk())
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var got *decoder.Message
		d := New(Server, decoder.DefaultLimits())
		for _, c := range chunks {
			d.Feed(1, c, func(m *decoder.Message) { got = m })
		}
		if got == nil || len(got.Payload) < size {
			b.Fatal("no message")
		}
	}
}

// BenchmarkBaselineFramer reads the same frames as BenchmarkStreams with
// x/net/http2's Framer and HPACK decoder (ReadMetaHeaders), without
// assembling or rendering messages: the reference for docs/benchmarks.md.
func BenchmarkBaselineFramer(b *testing.B) {
	const perConn = 10000
	start, ex := connection(b, perConn)
	var cbuf, sbuf bytes.Buffer
	cbuf.Write(start.req[len(http2.ClientPreface):])
	sbuf.Write(start.resp)
	for _, e := range ex {
		cbuf.Write(e.req)
		sbuf.Write(e.resp)
	}
	size := 0
	for _, e := range ex {
		size += len(e.req) + len(e.resp)
	}
	b.SetBytes(int64(size / len(ex)))
	b.ReportAllocs()
	var cr, sr bytes.Reader
	var cf, sf *http2.Framer
	b.ResetTimer()
	for i := range b.N {
		if i%perConn == 0 {
			cr.Reset(cbuf.Bytes())
			sr.Reset(sbuf.Bytes())
			cf, sf = http2.NewFramer(io.Discard, &cr), http2.NewFramer(io.Discard, &sr)
			cf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			sf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			// The connection's SETTINGS frames.
			mustFrame(b, cf)
			mustFrame(b, sf)
		}
		mustFrame(b, cf) // request HEADERS
		mustFrame(b, sf) // response HEADERS
		mustFrame(b, sf) // response DATA
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "streams/s")
}

func mustFrame(b *testing.B, f *http2.Framer) {
	if _, err := f.ReadFrame(); err != nil {
		b.Fatal(err)
	}
}

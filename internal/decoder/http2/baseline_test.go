package http2

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

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

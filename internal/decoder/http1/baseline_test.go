package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkBaselineNetHTTP parses the same request/response pair as
// BenchmarkSmallMessages with net/http's parser (http.ReadRequest,
// http.ReadResponse and reading the body), the reference our decoder's
// figures are compared with in docs/benchmarks.md. net/http gets complete
// messages; our decoder works incrementally and renders the payload too.
func BenchmarkBaselineNetHTTP(b *testing.B) {
	reqMsg := []byte("GET /api/v1/items?id=42&fields=name,price HTTP/1.1\r\nHost: api.example.test\r\n" +
		"User-Agent: bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\nCookie: session=0123456789abcdef\r\n\r\n")
	respMsg := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41\r\n" +
		"Cache-Control: no-cache\r\nServer: bench\r\nDate: Thu, 26 Nov 2026 00:00:00 GMT\r\n\r\n{\"id\":42,\"name\":\"widget\",\"price\":\"9.99\"}\n")
	var rr, sr bytes.Reader
	br, bs := bufio.NewReader(&rr), bufio.NewReader(&sr)
	b.SetBytes(int64(len(reqMsg) + len(respMsg)))
	b.ReportAllocs()
	for b.Loop() {
		rr.Reset(reqMsg)
		br.Reset(&rr)
		req, err := http.ReadRequest(br)
		if err != nil {
			b.Fatal(err)
		}
		sr.Reset(respMsg)
		bs.Reset(&sr)
		resp, err := http.ReadResponse(bs, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

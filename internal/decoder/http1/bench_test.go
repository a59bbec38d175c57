package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
)

// BenchmarkSmallMessages decodes request/response pairs of about 200 bytes
// each, one TLS record per message, on one keep-alive connection.
func BenchmarkSmallMessages(b *testing.B) {
	reqMsg := []byte("GET /api/v1/items?id=42&fields=name,price HTTP/1.1\r\nHost: api.example.test\r\n" +
		"User-Agent: bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\nCookie: session=0123456789abcdef\r\n\r\n")
	respMsg := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41\r\n" +
		"Cache-Control: no-cache\r\nServer: bench\r\nDate: Thu, 26 Nov 2026 00:00:00 GMT\r\n\r\n{\"id\":42,\"name\":\"widget\",\"price\":\"9.99\"}\n")
	c := NewConn(decoder.Limits{})
	reqs, resps := c.Requests(), c.Responses()
	n := 0
	emit := func(*decoder.Message) { n++ }
	b.SetBytes(int64(len(reqMsg) + len(respMsg)))
	b.ReportAllocs()
	for b.Loop() {
		reqs.Feed(1, reqMsg, emit)
		resps.Feed(2, respMsg, emit)
	}
	if n != 2*b.N {
		b.Fatalf("%d messages for %d pairs", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkLargeBody decodes 1 MiB responses fed in 16 KiB reads.
func BenchmarkLargeBody(b *testing.B) {
	body := noise(1 << 20)
	var chunked bytes.Buffer
	for p := body; len(p) > 0; {
		k := min(len(p), 16<<10)
		chunked.WriteString(chunk(string(p[:k])))
		p = p[k:]
	}
	chunked.WriteString("0\r\n\r\n")
	zipped := gz(string(body))
	cases := []struct{ name, msg string }{
		{"identity", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String()},
		{"gzip", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(zipped), zipped)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			msg := []byte(tc.msg)
			c := NewConn(decoder.Limits{})
			resps := c.Responses()
			var got int
			emit := func(m *decoder.Message) { got = len(m.Payload) }
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				got = 0
				for p := msg; len(p) > 0; {
					k := min(len(p), 16<<10)
					resps.Feed(1, p[:k], emit)
					p = p[k:]
				}
				if got < len(body) {
					b.Fatalf("payload of %d bytes", got)
				}
			}
		})
	}
}

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

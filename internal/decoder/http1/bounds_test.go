package http1

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
)

// TestBounds feeds hostile streams of a few MiB in random pieces and checks
// after every Feed that the decoder's memory stays within the limits.
func TestBounds(t *testing.T) {
	const size = 4 << 20
	repeat := func(prefix, unit string) string {
		return prefix + strings.Repeat(unit, (size-len(prefix))/len(unit))
	}
	bomb := gz(strings.Repeat("\x00", size))
	tests := []struct {
		name string
		dir  int
		data string
	}{
		{"endless start line", 0, repeat("GET /", "a")},
		{"endless header section", 0, repeat("GET / HTTP/1.1\r\n", "X-A: b\r\n")},
		{"endless field", 1, repeat("HTTP/1.1 200 OK\r\nX: ", "b")},
		{"endless chunk size", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "0")},
		{"endless chunk extension", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", "x")},
		{"endless trailer", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "X-T: v\r\n")},
		{"endless chunks", 1, repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk("0123456789"))},
		{"endless body", 1, repeat("HTTP/1.0 200 OK\r\n\r\n", "z")},
		{"endless garbage", 0, repeat("", "\x16\x03\x01")},
		{"endless lines", 1, repeat("", "HTTP/1.1 20\n")},
		{"endless pipelining", 0, repeat("", "HEAD / HTTP/1.1\r\n\r\n")},
		{"endless wait for upgrade", 0, repeat("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", "\x81\x85abcdhello")},
		{"bomb", 1, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n", chunk(bomb))},
	}
	limits := []decoder.Limits{
		{MaxHeaderBytes: 1024, MaxBodyBytes: 4096, MaxBufferBytes: 2048, RawFlushBytes: 512},
		{MaxHeaderBytes: 8192, MaxBodyBytes: 1024, MaxBufferBytes: 4096, RawFlushBytes: 8192},
	}
	for _, tt := range tests {
		for li, l := range limits {
			t.Run(fmt.Sprintf("%s/%d", tt.name, li), func(t *testing.T) {
				lim := normalize(l)
				c := NewConn(l)
				s := [2]*stream{&c.req, &c.resp}[tt.dir]
				rng := rand.New(rand.NewPCG(uint64(li), uint64(len(tt.name))))
				msgs := 0
				emit := func(m *decoder.Message) {
					msgs++
					checkMessage(t, tt.dir, m, lim)
				}
				for p := []byte(tt.data); len(p) > 0; {
					n := min(len(p), 1+rng.IntN(64<<10))
					s.Feed(1, p[:n], emit)
					checkBounds(t, s, lim)
					p = p[n:]
				}
				s.Flush(2, decoder.Close, emit)
				if msgs == 0 {
					t.Errorf("no message")
				}
			})
		}
	}
}

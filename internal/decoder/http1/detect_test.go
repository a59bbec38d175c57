package http1

import (
	"math/rand/v2"
	"testing"
)

func TestIsStart(t *testing.T) {
	type verdict int
	const (
		no verdict = iota
		more
		yes
	)
	tests := []struct {
		name string
		in   string
		req  verdict
		resp verdict
	}{
		{"get crlf", "GET / HTTP/1.1\r\nHost: x\r\n", yes, no},
		{"get lf", "GET /a?b=c HTTP/1.1\n", yes, no},
		{"http10", "POST /form HTTP/1.0\r\n", yes, no},
		{"m-search", "M-SEARCH * HTTP/1.1\r\n", yes, no},
		{"webdav", "PROPFIND /dav/ HTTP/1.1\r\n", yes, no},
		{"connect authority", "CONNECT example.com:443 HTTP/1.1\r\n", yes, no},
		{"absolute form", "GET http://example.com/x HTTP/1.1\r\n", yes, no},
		{"utf8 path", "GET /caf\xc3\xa9 HTTP/1.1\r\n", yes, no},
		{"unknown method 20", "ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\n", yes, no},
		{"method 21", "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n", no, no},
		{"lower-case method", "get / HTTP/1.1\r\n", no, no},
		{"digit first", "1GET / HTTP/1.1\r\n", no, no},
		{"double space", "GET  / HTTP/1.1\r\n", no, no},
		{"space before eol", "GET / HTTP/1.1 \r\n", no, no},
		{"no target", "GET HTTP/1.1\r\n", no, no},
		{"http2 version", "GET / HTTP/2.0\r\n", no, no},
		{"cr without lf", "GET / HTTP/1.1\rX", no, no},
		{"nul in target", "GET /a\x00b HTTP/1.1\r\n", no, no},
		{"target starts oddly", "GET \"x HTTP/1.1\r\n", no, no},
		{"empty", "", more, more},
		{"method prefix", "GE", more, no},
		{"method only", "GET", more, no},
		{"target cut", "GET /index.ht", more, no},
		{"version cut", "GET / HTTP/1.", more, no},
		{"no eol yet", "GET / HTTP/1.1", more, no},
		{"cr only", "GET / HTTP/1.1\r", more, no},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", no, no},
		{"status ok", "HTTP/1.1 200 OK\r\n", no, yes},
		{"status lf", "HTTP/1.0 404 Not Found\n", no, yes},
		{"status no reason", "HTTP/1.1 200\r\n", no, yes},
		{"status empty reason", "HTTP/1.1 204 \r\n", no, yes},
		{"status obs-text reason", "HTTP/1.1 200 D\xfcrfen\r\n", no, yes},
		{"status prefix", "HTTP/1.", no, more},
		{"status code cut", "HTTP/1.1 20", no, more},
		{"status no eol", "HTTP/1.1 200 OK", no, more},
		{"status two digits", "HTTP/1.1 20 OK\r\n", no, no},
		{"status zero first", "HTTP/1.1 099 x\r\n", no, no},
		{"status control", "HTTP/1.1 200 O\x01K\r\n", no, no},
		{"status http2", "HTTP/2 200\r\n", no, no},
		{"status lower", "http/1.1 200 OK\r\n", no, no},
		{"gzip magic", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", no, no},
		{"tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", no, no},
		{"tls alert", "\x15\x03\x03\x00\x02\x02\x28", no, no},
		{"websocket frame", "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", no, no},
		{"json", "{\"GET\": \"/ HTTP/1.1\"}\n", no, no},
	}
	verdictOf := func(match, needMore bool) verdict {
		switch {
		case match && needMore:
			t.Fatalf("match and needMore both set")
		case match:
			return yes
		case needMore:
			return more
		}
		return no
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdictOf(IsRequestStart([]byte(tt.in))); got != tt.req {
				t.Errorf("IsRequestStart(%q) = %v, want %v", tt.in, got, tt.req)
			}
			if got := verdictOf(IsResponseStart([]byte(tt.in))); got != tt.resp {
				t.Errorf("IsResponseStart(%q) = %v, want %v", tt.in, got, tt.resp)
			}
			// A line that matches is undecided at every shorter length.
			for fn, want := range map[*func([]byte) (bool, bool)]verdict{&isReq: tt.req, &isResp: tt.resp} {
				if want != yes {
					continue
				}
				line := tt.in[:indexLF(tt.in)+1]
				for n := range len(line) {
					if got := verdictOf((*fn)([]byte(line[:n]))); got != more {
						t.Errorf("prefix %q = %v, want needMore", line[:n], got)
					}
				}
			}
		})
	}
}

var isReq, isResp = IsRequestStart, IsResponseStart

func indexLF(s string) int {
	for i := range len(s) {
		if s[i] == '\n' {
			return i
		}
	}
	return len(s) - 1
}

// TestIsStartRandom checks that random bytes never match, in any length
// and whether they are binary or printable text.
func TestIsStartRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	buf := make([]byte, 256)
	for i := range 200000 {
		n := rng.IntN(len(buf))
		for j := range n {
			if i%2 == 0 {
				buf[j] = byte(rng.Uint32())
			} else {
				buf[j] = byte(' ' + rng.IntN(95))
			}
		}
		b := buf[:n]
		if m, _ := IsRequestStart(b); m {
			t.Fatalf("IsRequestStart(%q) matched", b)
		}
		if m, _ := IsResponseStart(b); m {
			t.Fatalf("IsResponseStart(%q) matched", b)
		}
	}
}

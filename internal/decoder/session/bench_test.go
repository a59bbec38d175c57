package session_test

import (
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/http1"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

// BenchmarkDetect measures a new session deciding on its first read, per
// kind of first bytes: the per-connection cost of detection.
func BenchmarkDetect(b *testing.B) {
	emit := func(capture.Direction, *decoder.Message) {}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"http1-request", http1Request(b)},
		{"http2-preface", http2ClientStart(b)},
		{"tls-record", tlsClientHello(b)},
		{"random", randomBytes(1, 512)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				s := session.New(session.Options{})
				s.Feed(capture.Write, 1, tc.in, emit)
			}
		})
	}
}

// BenchmarkKeepAlive replays the recorded net/http keep-alive conversation
// through a session and, for comparison, straight into the HTTP/1 decoders:
// the difference is the session's dispatch overhead.
func BenchmarkKeepAlive(b *testing.B) {
	rec := loadConversation(b, "http1-keepalive")
	size := 0
	for _, c := range rec {
		size += len(c.data)
	}
	b.Run("session", func(b *testing.B) {
		emit := func(capture.Direction, *decoder.Message) {}
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for range b.N {
			s := session.New(session.Options{})
			for i, c := range rec {
				s.Feed(c.dir, int64(i), c.data, emit)
			}
			s.Flush(0, decoder.Close, emit)
		}
	})
	b.Run("http1-direct", func(b *testing.B) {
		emit := func(*decoder.Message) {}
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for range b.N {
			c := http1.NewConn(decoder.Limits{})
			decs := [2]decoder.Decoder{c.Responses(), c.Requests()} // Read, Write
			for i, ch := range rec {
				decs[ch.dir].Feed(int64(i), ch.data, emit)
			}
			for _, d := range decs {
				d.Flush(0, decoder.Close, emit)
			}
		}
	})
}

// BenchmarkSlowStartLine feeds a 60 KiB request line a byte at a time: the
// case that makes detection cost quadratic if tests rerun at every read.
func BenchmarkSlowStartLine(b *testing.B) {
	line := append([]byte("GET /"), make([]byte, 60<<10)...)
	for i := 5; i < len(line); i++ {
		line[i] = 'a'
	}
	emit := func(capture.Direction, *decoder.Message) {}
	b.ReportAllocs()
	for range b.N {
		s := session.New(session.Options{})
		for i := range line {
			s.Feed(capture.Write, 1, line[i:i+1], emit)
		}
		if s.Protocol(capture.Write) != "" {
			b.Fatal("decided early")
		}
	}
}

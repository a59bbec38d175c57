package session_test

import (
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

// cutStart drops the first n bytes of dir from a recording: a capture that
// began in the middle of the connection.
func cutStart(rec recording, dir capture.Direction, n int) recording {
	var out recording
	for _, c := range rec {
		if c.dir == dir && n > 0 {
			k := min(n, len(c.data))
			n -= k
			if c.data = c.data[k:]; len(c.data) == 0 {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// TestMidConnection starts decoding recorded conversations part-way in.
func TestMidConnection(t *testing.T) {
	h1 := loadConversation(t, "http1-keepalive")
	h2 := loadConversation(t, "h2c")
	n := len(httpExchanges)
	tests := []struct {
		name string
		rec  recording
		// idle flushes before every write that follows a read, as the
		// pipeline's idle timer would between exchanges.
		idle      bool
		protocols [2]string // read, write
		// Messages decoded complete: only the first exchange may be lost
		// to the cut.
		reqs, resps int
		reqT, resT  decoder.Type
	}{
		{"http1, requests cut", cutStart(h1, capture.Write, 10), false, [2]string{"http1", "http1"}, n - 1, n, decoder.HTTP1Request, decoder.HTTP1Response},
		{"http1, both cut, idle between exchanges", cutStart(cutStart(h1, capture.Write, 10), capture.Read, 10), true, [2]string{"http1", "http1"}, n - 1, n - 1, decoder.HTTP1Request, decoder.HTTP1Response},
		// The SETTINGS frame is lost; the decoder finds the frames after
		// it, and the server's HPACK table starts empty, as the cut did
		// not remove any header block.
		{"http2, server cut", cutStart(h2, capture.Read, 5), false, [2]string{"http2", "http2"}, n, n, decoder.HTTP2Request, decoder.HTTP2Response},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []emitted
			emit := func(d capture.Direction, m *decoder.Message) { got = append(got, emitted{d, m}) }
			s := session.New(session.Options{})
			var last capture.Direction
			for i, c := range tt.rec {
				if tt.idle && i > 0 && last == capture.Read && c.dir == capture.Write {
					s.Flush(int64(i), decoder.Idle, emit)
				}
				s.Feed(c.dir, int64(i+1), c.data, emit)
				last = c.dir
			}
			s.Flush(int64(len(tt.rec)+1), decoder.Close, emit)
			if p := [2]string{s.Protocol(capture.Read), s.Protocol(capture.Write)}; p != tt.protocols {
				t.Fatalf("protocols %q, want %q", p, tt.protocols)
			}
			var reqs, resps int
			for _, e := range got {
				switch {
				case e.m.Type == tt.reqT && e.dir == capture.Write && !e.m.Incomplete:
					reqs++
				case e.m.Type == tt.resT && e.dir == capture.Read && !e.m.Incomplete:
					resps++
				case e.m.Type != decoder.Raw && !e.m.Incomplete:
					t.Errorf("unexpected %s", render(e, false))
				}
			}
			if reqs != tt.reqs || resps != tt.resps {
				t.Fatalf("%d requests, %d responses decoded; want %d, %d:\n%s", reqs, resps, tt.reqs, tt.resps, renderAll(got, false))
			}
		})
	}
}

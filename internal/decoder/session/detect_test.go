package session_test

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

// Real bytes from the libraries that produce them.

func http2ClientStart(t testing.TB) []byte {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	f := http2.NewFramer(&b, nil)
	f.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 4 << 20})
	f.WriteWindowUpdate(0, 1<<30)
	writeHeaders(f, 1, ":method", "GET", ":scheme", "https", ":authority", "example.test", ":path", "/x")
	return b.Bytes()
}

// writeHeaders writes one HPACK-encoded HEADERS frame that ends its stream.
func writeHeaders(f *http2.Framer, stream uint32, kv ...string) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := 0; i+1 < len(kv); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	f.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true})
}

func http2ServerStart(t testing.TB) []byte {
	var b bytes.Buffer
	f := http2.NewFramer(&b, nil)
	f.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 250}, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
	f.WriteWindowUpdate(0, 1<<20)
	f.WriteSettingsAck()
	writeHeaders(f, 1, ":status", "204", "server", "test")
	return b.Bytes()
}

func http1Request(t testing.TB) []byte {
	req, err := http.NewRequest("POST", "http://example.test/api/v1?q=1", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func http1Response(t testing.TB) []byte {
	body := "not found\n"
	resp := &http.Response{
		StatusCode: 404, ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          nopCloser{strings.NewReader(body)},
		ContentLength: int64(len(body)),
	}
	var b bytes.Buffer
	if err := resp.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func gzipBytes(t testing.TB) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(strings.Repeat("GET / HTTP/1.1\r\n", 40)))
	w.Close()
	return b.Bytes()
}

// writeConn captures what a TLS client writes; reads fail.
type writeConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *writeConn) Write(p []byte) (int, error)      { return c.buf.Write(p) }
func (c *writeConn) Read([]byte) (int, error)         { return 0, errors.New("no server") }
func (c *writeConn) Close() error                     { return nil }
func (c *writeConn) SetDeadline(time.Time) error      { return nil }
func (c *writeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *writeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *writeConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *writeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// tlsClientHello is a real ClientHello record from crypto/tls, what a
// capture below TLS or of a nested TLS connection would see.
func tlsClientHello(t testing.TB) []byte {
	c := &writeConn{}
	tls.Client(c, &tls.Config{ServerName: "example.test", NextProtos: []string{"h2", "http/1.1"}}).Handshake()
	if c.buf.Len() < 100 || c.buf.Bytes()[0] != 0x16 {
		t.Fatalf("no ClientHello captured")
	}
	return c.buf.Bytes()
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type detectCase struct {
	name string
	in   []byte
	// want is Protocol after the bytes (before any flush); closed after
	// Flush(Close).
	want, closed string
}

func detectCases(t testing.TB) []detectCase {
	cs := []detectCase{
		{"http2 client preface", http2ClientStart(t), "http2", "http2"},
		{"http2 server SETTINGS first", http2ServerStart(t), "http2", "http2"},
		{"http1 request", http1Request(t), "http1", "http1"},
		{"http1 response", http1Response(t), "http1", "http1"},
		{"gzip", gzipBytes(t), "raw", "raw"},
		{"TLS ClientHello", tlsClientHello(t), "raw", "raw"},
		{"TLS application data record", append([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, randomBytes(99, 64)...), "raw", "raw"},
		{"websocket frame", []byte{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}, "raw", "raw"},
		{"lower-case request line", []byte("get / http/1.1\r\n\r\n"), "raw", "raw"},
		{"HTTP/2.0 request line", []byte("GET / HTTP/2.0\r\n\r\n"), "raw", "raw"},
		{"text", []byte("Hello there, this is not HTTP.\n"), "raw", "raw"},
		{"partial request line", []byte("GET /index.html HT"), "", "raw"},
		{"partial preface", []byte("PRI * HTTP/2.0\r\n"), "", "raw"},
		{"partial SETTINGS", http2ServerStart(t)[:7], "", "raw"},
	}
	for seed := range uint64(20) {
		cs = append(cs, detectCase{"random", randomBytes(seed, 1+int(seed*37)%700), "raw", "raw"})
	}
	return cs
}

// cutRandomly splits b into random pieces.
func cutRandomly(b []byte, r *rand.Rand) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := 1 + r.IntN(len(b))
		if r.IntN(2) == 0 {
			k = 1 + r.IntN(min(len(b), 8))
		}
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

// TestDetect classifies each input as the first bytes of either
// direction, whole and cut 100 ways: protocol and emitted messages must be
// the same every time.
func TestDetect(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range detectCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, dir := range []capture.Direction{capture.Read, capture.Write} {
				var want string
				for run := range 100 {
					pieces := [][]byte{tc.in}
					if run > 0 {
						pieces = cutRandomly(tc.in, r)
					}
					var got []emitted
					emit := func(d capture.Direction, m *decoder.Message) { got = append(got, emitted{d, m}) }
					s := session.New(session.Options{})
					for i, p := range pieces {
						s.Feed(dir, int64(i), p, emit)
					}
					if p := s.Protocol(dir); p != tc.want {
						t.Fatalf("run %d (%d pieces): protocol %q, want %q", run, len(pieces), p, tc.want)
					}
					if p := s.Protocol(1 - dir); p != "" {
						t.Fatalf("peer protocol %q before it sent anything", p)
					}
					s.Flush(100, decoder.Close, emit)
					if p := s.Protocol(dir); p != tc.closed {
						t.Fatalf("run %d: protocol %q after close, want %q", run, p, tc.closed)
					}
					out := renderAll(got, false)
					if run == 0 {
						want = out
						if len(got) == 0 {
							t.Fatalf("nothing emitted")
						}
						continue
					}
					if out != want {
						t.Fatalf("run %d (%d pieces) emitted:\n%s\nwant:\n%s", run, len(pieces), out, want)
					}
				}
			}
		})
	}
}

// TestDetectPeer checks what the second direction becomes, given the first.
func TestDetectPeer(t *testing.T) {
	garbage := randomBytes(5, 100)
	tests := []struct {
		name        string
		first, peer []byte
		want        [2]string // first, peer
		peerType    decoder.Type
	}{
		{"request then response", http1Request(t), http1Response(t), [2]string{"http1", "http1"}, decoder.HTTP1Response},
		{"response then request", http1Response(t), http1Request(t), [2]string{"http1", "http1"}, decoder.HTTP1Request},
		{"request then garbage", http1Request(t), garbage, [2]string{"http1", "http1"}, decoder.Raw},
		{"preface then SETTINGS", http2ClientStart(t), http2ServerStart(t), [2]string{"http2", "http2"}, 0},
		{"SETTINGS then preface", http2ServerStart(t), http2ClientStart(t), [2]string{"http2", "http2"}, 0},
		{"preface then garbage", http2ClientStart(t), garbage, [2]string{"http2", "http2"}, decoder.Raw},
		{"garbage then request", garbage, http1Request(t), [2]string{"http1", "http1"}, decoder.HTTP1Request},
		{"TLS then TLS", tlsClientHello(t), tlsClientHello(t), [2]string{"raw", "raw"}, decoder.Raw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []emitted
			emit := func(d capture.Direction, m *decoder.Message) { got = append(got, emitted{d, m}) }
			s := session.New(session.Options{})
			s.Feed(capture.Write, 1, tt.first, emit)
			s.Feed(capture.Read, 2, tt.peer, emit)
			if g := [2]string{s.Protocol(capture.Write), s.Protocol(capture.Read)}; g != tt.want {
				t.Fatalf("protocols %q, want %q", g, tt.want)
			}
			s.Flush(3, decoder.Close, emit)
			if tt.peerType == 0 {
				return
			}
			var types []decoder.Type
			for _, e := range got {
				if e.dir == capture.Read {
					types = append(types, e.m.Type)
				}
			}
			if len(types) == 0 || types[0] != tt.peerType {
				t.Fatalf("peer emitted %v, want %v first:\n%s", types, tt.peerType, renderAll(got, false))
			}
		})
	}
}

// TestRandomNeverHTTP: random binary of any length, as the first bytes of
// a connection, is raw.
func TestRandomNeverHTTP(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	emit := func(capture.Direction, *decoder.Message) {}
	for i := range 20000 {
		b := randomBytes(uint64(i), 1+r.IntN(300))
		s := session.New(session.Options{})
		s.Feed(capture.Read, 1, b, emit)
		s.Flush(2, decoder.Close, emit)
		if p := s.Protocol(capture.Read); p != "raw" {
			t.Fatalf("%x classified %q", b, p)
		}
	}
}

// TestDetectReasons: a direction detection decides raw is counted under
// why, once, and only then: not again when the raw direction is re-tested,
// not under --raw, not for a protocol switch tlstap follows.
func TestDetectReasons(t *testing.T) {
	tlsRecord := []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
	type call func(s *session.Session, emit session.Emit)
	feed := func(dir capture.Direction, b []byte) call {
		return func(s *session.Session, emit session.Emit) { s.Feed(dir, 1, b, emit) }
	}
	flush := func(r decoder.FlushReason) call {
		return func(s *session.Session, emit session.Emit) { s.Flush(2, r, emit) }
	}
	gap := func(dir capture.Direction) call {
		return func(s *session.Session, _ session.Emit) { s.Gap(dir, 10) }
	}
	tests := []struct {
		name    string
		rawOnly bool
		calls   []call
		want    decoder.Reason
	}{
		{"TLS inside TLS", false, []call{feed(capture.Write, tlsRecord)}, decoder.SessionNoProtocol},
		{"no protocol, re-tested after idle", false, []call{
			feed(capture.Write, tlsRecord), flush(decoder.Idle), feed(capture.Write, tlsRecord), flush(decoder.Idle), feed(capture.Write, []byte("more")),
		}, decoder.SessionNoProtocol},
		{"start line longer than the buffer", false, []call{
			feed(capture.Write, []byte("GET /")), feed(capture.Write, bytes.Repeat([]byte("a"), 2000)),
		}, decoder.SessionBufferFull},
		{"idle before a decision", false, []call{feed(capture.Write, []byte("GET /")), flush(decoder.Idle)}, decoder.SessionUndecidedFlush},
		{"closed before a decision", false, []call{feed(capture.Write, []byte("HTTP/1.")), flush(decoder.Close)}, decoder.SessionUndecidedFlush},
		{"bytes lost before a decision", false, []call{
			feed(capture.Write, []byte("GET /")), gap(capture.Write), feed(capture.Write, []byte("x HTTP/1.1\r\n\r\n")),
		}, decoder.SessionUndecidedGap},
		{"upgrade to an unknown protocol", false, []call{
			feed(capture.Write, []byte("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n")),
			feed(capture.Read, []byte("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\nfoo bytes")),
			feed(capture.Write, []byte("more foo")),
		}, decoder.SessionUpgradeUnknown},
		{"upgrade to websocket", false, []call{
			feed(capture.Write, []byte("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")),
			feed(capture.Read, []byte("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")),
		}, decoder.NoReason},
		{"CONNECT tunnel", false, []call{
			feed(capture.Write, []byte("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")),
			feed(capture.Read, []byte("HTTP/1.1 200 OK\r\n\r\n")),
			feed(capture.Write, tlsRecord),
		}, decoder.NoReason},
		{"--raw", true, []call{feed(capture.Write, tlsRecord), flush(decoder.Close)}, decoder.NoReason},
		{"HTTP/1 both ways", false, []call{
			feed(capture.Write, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), feed(capture.Read, []byte("HTTP/1.1 204 No Content\r\n\r\n")), flush(decoder.Close),
		}, decoder.NoReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var counts decoder.Counts
			s := session.New(session.Options{Limits: decoder.Limits{MaxHeaderBytes: 1024, Errors: &counts}, RawOnly: tt.rawOnly})
			emit := func(capture.Direction, *decoder.Message) {}
			for _, c := range tt.calls {
				c(s, emit)
			}
			var want []decoder.Reason
			if tt.want != decoder.NoReason {
				want = []decoder.Reason{tt.want}
			}
			if got := counts.Counted(); !slices.Equal(got, want) || (tt.want != decoder.NoReason && counts.Get(tt.want) != 1) {
				t.Errorf("counted %v, want %v once", got, want)
			}
		})
	}
}

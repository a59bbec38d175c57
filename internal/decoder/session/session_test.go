package session_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c" //lint:ignore SA1019 see TestH2CUpgrade

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

// step is one call on a session.
type step struct {
	dir   capture.Direction
	data  string
	idle  bool   // Flush(Idle) instead of Feed
	gap   uint64 // Gap instead of Feed
	check [2]string
}

// brief is a message reduced to what the scenarios check.
func brief(e emitted) string {
	m := e.m
	s := e.dir.String() + " " + m.Type.String()
	switch {
	case m.Type == decoder.WebSocket:
		s += " " + string(rune('0'+m.WSOpcode)) + ":" + string(m.Payload)
	case m.Type == decoder.Raw:
		s += " " + string(m.Payload)
	default:
		line, _, _ := bytes.Cut(m.Payload, []byte("\r\n"))
		s += " " + string(line)
	}
	if m.Incomplete {
		s += " (incomplete)"
	}
	return s
}

func wsFrame(op byte, masked bool, payload string) string {
	b := []byte{0x80 | op, byte(len(payload))}
	if !masked {
		return string(append(b, payload...))
	}
	key := []byte{9, 8, 7, 6}
	b[1] |= 0x80
	b = append(b, key...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i&3])
	}
	return string(b)
}

const (
	getReq  = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	okResp  = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	upReq   = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	upResp  = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	connReq = "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n"
	connOK  = "HTTP/1.1 200 Connection established\r\n\r\n"
	tlsRec  = "\x16\x03\x01\x00\x05hello"
)

func TestScenarios(t *testing.T) {
	W, R := capture.Write, capture.Read
	tests := []struct {
		name  string
		opts  session.Options
		steps []step
		want  []string
	}{
		{
			name: "raw, idle, then a request: re-detected",
			steps: []step{
				{dir: W, data: "tail of an earlier body", check: [2]string{"", "raw"}},
				{dir: R, data: "more junk"},
				{idle: true},
				{dir: W, data: getReq, check: [2]string{"http1", "http1"}},
				{dir: R, data: okResp},
			},
			want: []string{"read raw more junk", "write raw tail of an earlier body", "write http1-request GET /a HTTP/1.1", "read http1-response HTTP/1.1 200 OK"},
		},
		{
			name: "raw without idle stays raw",
			steps: []step{
				{dir: W, data: "junk"},
				{dir: W, data: getReq, check: [2]string{"", "raw"}},
			},
			want: []string{"write raw junk" + getReq},
		},
		{
			name: "request makes a raw peer the response decoder",
			steps: []step{
				{dir: R, data: "\x00\x01binary", check: [2]string{"raw", ""}},
				{dir: W, data: getReq, check: [2]string{"http1", "http1"}},
				{dir: R, data: okResp},
			},
			want: []string{"read raw \x00\x01binary", "write http1-request GET /a HTTP/1.1", "read http1-response HTTP/1.1 200 OK"},
		},
		{
			name: "gap while detecting",
			steps: []step{
				{dir: W, data: "GET /ind"},
				{dir: W, gap: 10},
				{dir: W, data: "ex.html HTTP/1.1\r\n\r\n", check: [2]string{"", "raw"}},
			},
			want: []string{"write raw GET /index.html HTTP/1.1\r\n\r\n"},
		},
		{
			name: "idle flush ends detection",
			steps: []step{
				{dir: W, data: "GET /slow"},
				{idle: true, check: [2]string{"", "raw"}},
				{dir: W, data: " HTTP/1.1\r\n\r\n", check: [2]string{"", "raw"}},
			},
			want: []string{"write raw GET /slow", "write raw  HTTP/1.1\r\n\r\n"},
		},
		{
			name: "raw only",
			opts: session.Options{RawOnly: true},
			steps: []step{
				{dir: W, data: getReq, check: [2]string{"", "raw"}},
				{idle: true},
				{dir: W, data: getReq, check: [2]string{"", "raw"}},
			},
			want: []string{"write raw " + getReq, "write raw " + getReq},
		},
		{
			name: "websocket frames in the same reads as the handshake",
			steps: []step{
				{dir: W, data: upReq + wsFrame(1, true, "early")},
				{dir: R, data: upResp + wsFrame(1, false, "hi"), check: [2]string{"websocket", "websocket"}},
				{dir: W, data: wsFrame(8, true, "\x03\xe8bye")},
			},
			want: []string{
				"write http1-request GET /ws HTTP/1.1", "read http1-response HTTP/1.1 101 Switching Protocols",
				"write websocket 1:early", "read websocket 1:hi", "write websocket 8:bye",
			},
		},
		{
			name: "server frames must not be masked",
			steps: []step{
				{dir: W, data: upReq},
				{dir: R, data: upResp + wsFrame(1, true, "masked")},
			},
			want: []string{
				"write http1-request GET /ws HTTP/1.1", "read http1-response HTTP/1.1 101 Switching Protocols",
				"read raw " + wsFrame(1, true, "masked"),
			},
		},
		{
			name: "CONNECT tunnel goes raw",
			steps: []step{
				{dir: W, data: connReq + tlsRec},
				{dir: R, data: connOK + tlsRec, check: [2]string{"raw", "raw"}},
			},
			want: []string{
				"write http1-request CONNECT example.test:443 HTTP/1.1", "read http1-response HTTP/1.1 200 Connection established",
				"read raw " + tlsRec, "write raw " + tlsRec, // Flush goes Read first
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []emitted
			emit := func(d capture.Direction, m *decoder.Message) { got = append(got, emitted{d, m}) }
			s := session.New(tt.opts)
			for i, st := range tt.steps {
				ts := int64(i + 1)
				switch {
				case st.idle:
					s.Flush(ts, decoder.Idle, emit)
				case st.gap > 0:
					s.Gap(st.dir, st.gap)
				default:
					s.Feed(st.dir, ts, []byte(st.data), emit)
				}
				if st.check != [2]string{} {
					if g := [2]string{s.Protocol(capture.Read), s.Protocol(capture.Write)}; g != st.check {
						t.Fatalf("step %d: protocols read/write %q, want %q", i, g, st.check)
					}
				}
			}
			s.Flush(int64(len(tt.steps)+1), decoder.Close, emit)
			var b []string
			for _, e := range got {
				b = append(b, brief(e))
			}
			if strings.Join(b, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got:\n%q\nwant:\n%q", b, tt.want)
			}
		})
	}
}

// TestH2CUpgrade runs the HTTP/1.1 Upgrade: h2c handshake against the
// x/net/http2 h2c server and decodes the client's recording.
func TestH2CUpgrade(t *testing.T) {
	// net/http dropped the Upgrade: h2c handshake; the deprecated package
	// is the implementation real servers still run.
	//lint:ignore SA1019 see above
	srv := httptest.NewServer(h2c.NewHandler(handler(), &http2.Server{}))
	defer srv.Close()
	var r recorder
	c, err := r.dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// HTTP2-Settings: an empty SETTINGS payload, base64url.
	io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: "+strings.TrimPrefix(srv.URL, "http://")+
		"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, br)
	fr.WriteSettings()
	// Read until stream 1, the upgraded request, ends.
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			done = f.StreamID == 1 && f.StreamEnded()
		case *http2.HeadersFrame:
			done = f.StreamID == 1 && f.StreamEnded()
		}
	}
	rec, _ := r.recording()
	got, s := run(session.Options{}, rec)
	if s.Protocol(capture.Write) != "http2" || s.Protocol(capture.Read) != "http2" {
		t.Fatalf("protocols %q/%q", s.Protocol(capture.Write), s.Protocol(capture.Read))
	}
	var b []string
	for _, e := range got {
		b = append(b, brief(e))
	}
	want := []string{
		"write http1-request GET /hello HTTP/1.1",
		"read http1-response HTTP/1.1 101 Switching Protocols",
		"read http2-response HTTP/2 200",
	}
	if strings.Join(b, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", renderAll(got, false), strings.Join(want, "\n"))
	}
	if last := got[len(got)-1].m; last.StreamID != 1 || !bytes.HasSuffix(last.Payload, []byte("hello, world\n")) {
		t.Fatalf("response: %s", render(got[len(got)-1], false))
	}
}

package http2

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/net/http2"
)

func settingsFrame(t *testing.T, flags uint8, stream uint32, payload []byte) []byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.AllowIllegalWrites = true
	if err := fr.WriteRawFrame(http2.FrameSettings, http2.Flags(flags), stream, payload); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func setting(id uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, id), v)
}

// notHTTP2 are byte streams the detectors must never take for HTTP/2.
func notHTTP2(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"http1-request":  []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		"http1-response": []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
		"gzip":           encode("gzip", []byte(lorem)),
		"zstd":           encode("zstd", []byte(lorem)),
		"brotli":         encode("br", []byte(lorem)),
		"tls-handshake":  append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, randBytes(64, 9)...),
		"tls-appdata":    append([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, randBytes(64, 10)...),
		"tls-alert":      {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28},
		"websocket":      {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		"settings-ack":   settingsFrame(t, 1, 0, nil),
	}
}

func TestIsClientPreface(t *testing.T) {
	tests := []struct {
		name            string
		in              []byte
		match, needMore bool
	}{
		{"preface", []byte(clientPreface), true, false},
		{"preface and settings", append([]byte(clientPreface), 0, 0, 0, 4, 0, 0, 0, 0, 0), true, false},
		{"prefix", []byte(clientPreface[:10]), false, true},
		{"empty", nil, false, true},
		{"http1 PRI", []byte("PRI * HTTP/1.1\r\n\r\n"), false, false},
		{"http1 request", []byte("GET / HTTP/1.1\r\n"), false, false},
		{"almost", []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, more := IsClientPreface(tt.in)
			if match != tt.match || more != tt.needMore {
				t.Errorf("IsClientPreface(%q) = %t, %t; want %t, %t", tt.in, match, more, tt.match, tt.needMore)
			}
		})
	}
	for name, b := range notHTTP2(t) {
		if match, _ := IsClientPreface(b); match {
			t.Errorf("%s: matched", name)
		}
	}
}

func TestIsServerStart(t *testing.T) {
	tests := []struct {
		name            string
		in              []byte
		match, needMore bool
	}{
		{"empty settings", settingsFrame(t, 0, 0, nil), true, false},
		{"settings", settingsFrame(t, 0, 0, append(setting(3, 250), setting(4, 1<<20)...)), true, false},
		{"unknown setting", settingsFrame(t, 0, 0, setting(0x4242, 0xffffffff)), true, false},
		{"max frame size bounds", settingsFrame(t, 0, 0, append(setting(5, 1<<14), setting(5, 1<<24-1)...)), true, false},
		{"partial entries", settingsFrame(t, 0, 0, setting(3, 100))[:12], false, true},
		{"header only", settingsFrame(t, 0, 0, setting(3, 100))[:9], false, true},
		{"three bytes", []byte{0, 0, 6}, false, true},
		{"ack", settingsFrame(t, 1, 0, nil), false, false},
		{"on a stream", settingsFrame(t, 0, 1, nil), false, false},
		{"length not multiple of 6", settingsFrame(t, 0, 0, []byte{0, 3, 0, 0, 0}), false, false},
		{"too long", settingsFrame(t, 0, 0, make([]byte, 16386)), false, false},
		{"enable push 2", settingsFrame(t, 0, 0, setting(2, 2)), false, false},
		{"window too large", settingsFrame(t, 0, 0, setting(4, 1<<31)), false, false},
		{"max frame size small", settingsFrame(t, 0, 0, setting(5, 1<<14-1)), false, false},
		{"max frame size large", settingsFrame(t, 0, 0, setting(5, 1<<24)), false, false},
		{"ping", []byte{0, 0, 8, 6, 0, 0, 0, 0, 0}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, more := IsServerStart(tt.in)
			if match != tt.match || more != tt.needMore {
				t.Errorf("IsServerStart(%x) = %t, %t; want %t, %t", tt.in[:min(len(tt.in), 32)], match, more, tt.match, tt.needMore)
			}
		})
	}
	// Every recorded server starts so; every prefix of its first frame
	// asks for more.
	for name, cp := range captures(t) {
		b := flat(cp.Server)
		end := frameHeaderLen + int(parseFrameHeader(b).length)
		if match, _ := IsServerStart(b); !match {
			t.Errorf("%s: server start not matched", name)
		}
		for i := range end {
			if match, more := IsServerStart(b[:i]); match || !more {
				t.Errorf("%s: prefix %d: %t, %t", name, i, match, more)
			}
		}
		if match, _ := IsServerStart(flat(cp.Client)); match {
			t.Errorf("%s: client side matched", name)
		}
	}
	for name, b := range notHTTP2(t) {
		if match, _ := IsServerStart(b); match {
			t.Errorf("%s: matched", name)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 64)
	for range 50000 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if match, _ := IsServerStart(b); match {
			t.Fatalf("random bytes matched: %x", b)
		}
	}
}

func TestIsFrameAligned(t *testing.T) {
	for name, cp := range captures(t) {
		cl := bytes.TrimPrefix(flat(cp.Client), []byte(clientPreface))
		sv := flat(cp.Server)
		for side, b := range map[string][]byte{"client": cl, "server": sv} {
			if !IsFrameAligned(b) {
				t.Errorf("%s/%s: not aligned", name, side)
			}
			// Every frame boundary of the stream is one.
			for off := range frameOffsets(t, b) {
				if len(b)-off > 2*frameHeaderLen && !IsFrameAligned(b[off:]) && followedByFrame(b, off) {
					t.Errorf("%s/%s: not aligned at frame boundary %d", name, side, off)
				}
			}
		}
		if IsFrameAligned(flat(cp.Client)) {
			t.Errorf("%s: the preface is no frame", name)
		}
	}
	for name, b := range notHTTP2(t) {
		if IsFrameAligned(b) {
			t.Errorf("%s: aligned", name)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 256)
	for range 50000 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if IsFrameAligned(b) {
			t.Fatalf("random bytes aligned: %x", b)
		}
	}
}

// frameOffsets lists where each frame of b starts.
func frameOffsets(t *testing.T, b []byte) map[int]bool {
	out := map[int]bool{}
	for off := 0; off+frameHeaderLen <= len(b); off += frameHeaderLen + int(parseFrameHeader(b[off:]).length) {
		out[off] = true
	}
	return out
}

// followedByFrame: the frame at off and the next are of known types.
func followedByFrame(b []byte, off int) bool {
	end := off + frameHeaderLen + int(parseFrameHeader(b[off:]).length)
	return len(b)-end >= frameHeaderLen && parseFrameHeader(b[off:]).typ <= frameContinuation &&
		parseFrameHeader(b[end:]).typ <= frameContinuation
}

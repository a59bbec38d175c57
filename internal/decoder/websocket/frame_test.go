package websocket

import (
	"bytes"
	"testing"
)

func TestMask(t *testing.T) {
	key := [4]byte{1, 0x20, 0x3, 0x40}
	for pos := range 4 {
		for n := range 40 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(pos+i)&3]
			}
			if next := mask(key, pos, b); next != (pos+n)&3 {
				t.Fatalf("pos %d n %d: next %d", pos, n, next)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("pos %d n %d: %x, want %x", pos, n, b, want)
			}
		}
	}
}

func TestParseExtensions(t *testing.T) {
	tests := []struct {
		ext        string
		fromClient bool
		want       deflateParams
	}{
		{"", false, deflateParams{}},
		{"x-webkit-deflate-frame", true, deflateParams{}},
		{"permessage-deflate", true, deflateParams{enabled: true, takeover: true}},
		{"permessage-deflate; client_no_context_takeover", true, deflateParams{enabled: true}},
		{"permessage-deflate; client_no_context_takeover", false, deflateParams{enabled: true, takeover: true}},
		{"permessage-deflate;server_no_context_takeover", false, deflateParams{enabled: true}},
		{"permessage-deflate; server_max_window_bits=9; client_max_window_bits", true, deflateParams{enabled: true, takeover: true}},
		{"foo, PERMESSAGE-DEFLATE; SERVER_NO_CONTEXT_TAKEOVER", false, deflateParams{enabled: true}},
	}
	for _, tt := range tests {
		if got := parseExtensions(tt.ext, tt.fromClient); got != tt.want {
			t.Errorf("%q fromClient=%t: %+v, want %+v", tt.ext, tt.fromClient, got, tt.want)
		}
	}
}

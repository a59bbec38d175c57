package content

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func TestNewReader(t *testing.T) {
	plain := []byte(strings.Repeat("tlstap content coding test. ", 200))
	enc := func(w io.WriteCloser, buf *bytes.Buffer) []byte {
		w.Write(plain)
		w.Close()
		return buf.Bytes()
	}
	var gz, zl, fl, br, zs bytes.Buffer
	fw, _ := flate.NewWriter(&fl, flate.BestSpeed)
	zw, _ := zstd.NewWriter(&zs)
	for _, tt := range []struct {
		coding string
		data   []byte
	}{
		{"gzip", enc(gzip.NewWriter(&gz), &gz)},
		{"x-gzip", gz.Bytes()},
		{"deflate", enc(zlib.NewWriter(&zl), &zl)},
		{"deflate", enc(fw, &fl)}, // raw DEFLATE, as some servers send
		{"br", enc(brotli.NewWriter(&br), &br)},
		{"zstd", enc(zw, &zs)},
	} {
		r, err := NewReader(tt.coding, bytes.NewReader(tt.data), len(plain))
		if err != nil {
			t.Fatalf("%s: %v", tt.coding, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: got %d bytes, %v; want the %d-byte original", tt.coding, len(got), err, len(plain))
		}
	}
	if _, err := NewReader("compress", bytes.NewReader(nil), 10); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown coding: %v, want ErrUnknown", err)
	}
}

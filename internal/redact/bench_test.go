package redact

import (
	"bytes"
	"testing"
)

// BenchmarkRedact measures masking a 1 KiB chunk that holds no secret,
// the common case, against one bytes.Index pass over the same chunk.
func BenchmarkRedact(b *testing.B) {
	chunk := bytes.Repeat([]byte("GET /api/products?page=2 HTTP/1.1\r\nHost: shop.example.com\r\n"), 18)[:1024]
	b.Run("baseline-one-index", func(b *testing.B) {
		sec := []byte(token)
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			_ = bytes.Index(chunk, sec)
		}
	})
	b.Run("redact", func(b *testing.B) {
		s := New(nil)
		s.Add(token) // three forms: as is, query-escaped, path-escaped
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			_ = s.Redact(chunk)
		}
	})
}

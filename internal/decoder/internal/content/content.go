// Package content opens decompressing readers for HTTP content codings
// (gzip, deflate, br, zstd), shared by the HTTP/1 and HTTP/2 decoders. It
// never starts goroutines and bounds what a hostile stream can make it
// allocate; callers bound the output they read.
package content

import (
	"bufio"
	"errors"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/tlstap/tlstap/internal/decoder"
)

// ErrUnknown is returned for a coding this package cannot undo.
var ErrUnknown = errors.ErrUnsupported

// maxZstdWindow is the window RFC 9659 requires HTTP zstd encoders to stay
// within; larger ones would let a peer make the decoder allocate at will.
const maxZstdWindow = 8 << 20

// NewReader returns a reader that undoes coding (lower-case: "gzip",
// "x-gzip", "deflate", "br" or "zstd") on r. limit is the most output the
// caller will read; it bounds zstd's memory. Close releases the decoder.
func NewReader(coding string, r io.Reader, limit int) (io.ReadCloser, error) {
	switch coding {
	case "gzip", "x-gzip":
		return gzip.NewReader(r)
	case "deflate":
		// "deflate" is meant to be zlib (RFC 9110 8.4.1.2) but some
		// servers send raw DEFLATE; the zlib header tells them apart.
		br := bufio.NewReaderSize(r, 512)
		if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			return zlib.NewReader(br)
		}
		return flate.NewReader(br), nil
	case "br":
		return io.NopCloser(brotli.NewReader(r)), nil
	case "zstd":
		z, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1), // decode synchronously: no goroutines
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderMaxMemory(uint64(max(limit, 0))+maxZstdWindow))
		if err != nil {
			return nil, err
		}
		return z.IOReadCloser(), nil
	}
	return nil, ErrUnknown
}

// Reason names a decoding failure for counting: an unknown coding, or
// anything else that stopped the output (corrupt data, a window or memory
// bound a hostile stream exceeds).
func Reason(err error) decoder.Reason {
	if errors.Is(err, ErrUnknown) {
		return decoder.ContentCodingUnknown
	}
	return decoder.ContentCorrupt
}

package demo

import (
	"bytes"
	_ "embed"
	"io"
)

//go:generate go run ./gen -o demo.rec

//go:embed demo.rec
var recording []byte

// Open returns a reader of the embedded recording.
func Open() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(recording)), nil
}

package recording_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/recording"
)

// TestWriteFuzzSeeds keeps the checked-in seed corpus in step with the
// writer: with -update it rewrites the seeds from real recordings.
func TestWriteFuzzSeeds(t *testing.T) {
	good := write(t, sampleChunks())
	seeds := map[string][]byte{
		"good":           good,
		"truncated":      good[:len(good)-5],
		"bad-magic":      append([]byte("TLSTAPR0"), good[8:]...),
		"bad-version":    cat([]byte(recording.Magic), header(2)),
		"corrupt-length": cat(good[:len(recording.Magic)], []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, good[len(recording.Magic)+1:]),
		"magic-only":     []byte(recording.Magic),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	for name, data := range seeds {
		// The header holds the time the recording was made, so a seed is
		// only rewritten with -update, never compared.
		path := filepath.Join(dir, name)
		if *golden.Update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, golden.FuzzSeed(data), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("seed %s missing (run go test -run TestWriteFuzzSeeds -update): %v", name, err)
		}
	}
}

// FuzzReader: no input may panic or hang the reader; every failure is a
// CorruptError naming an offset inside the file.
func FuzzReader(f *testing.F) {
	f.Add(write(f, sampleChunks()))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := recording.NewReader(bytes.NewReader(data))
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF {
			return
		}
		var ce *recording.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T) is not a CorruptError", err, err)
		}
		if ce.Offset < 0 || ce.Offset > int64(len(data)) {
			t.Fatalf("offset %d outside a %d-byte file", ce.Offset, len(data))
		}
	})
}

package pcapng

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
)

// Rotation starts a new file, each readable on its own with a handshake.
func TestRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cap.pcapng")
	f, err := Create(path, 8<<10, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c := chunk(i, capture.Read, capture.Data, strings.Repeat("z", 1400))
		if err := f.Write(&c); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(&capture.Chunk{}); err == nil {
		t.Error("Write after Close succeeded")
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "cap*.pcapng"))
	if len(files) < 2 || f.Rotations != len(files)-1 {
		t.Fatalf("%d files after %d rotations: %v", len(files), f.Rotations, files)
	}
	total := 0
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		ps := readAll(t, fh)
		fh.Close()
		if len(ps) < 4 || !ps[0].tcp.SYN {
			t.Errorf("%s: %d packets, first SYN=%v", name, len(ps), len(ps) > 0 && ps[0].tcp.SYN)
		}
		for _, p := range ps {
			total += len(p.tcp.Payload)
		}
	}
	if total != 20*1400 {
		t.Errorf("%d payload bytes over all files, want %d", total, 20*1400)
	}
}

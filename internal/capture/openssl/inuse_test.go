package openssl

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMapsDev(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
	}{
		{"fd:01", unix.Mkdev(0xfd, 1)},
		{"00:1f", unix.Mkdev(0, 0x1f)},
		{"103:05", unix.Mkdev(0x103, 5)},
		{"fd01", 0},
		{"zz:01", 0},
		{"", 0},
	} {
		if got := mapsDev(tt.in); got != tt.want {
			t.Errorf("mapsDev(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

// TestCountMapped: a fake /proc with three processes; each counts once
// per file however many mappings it has of it, and unwanted files are
// not counted.
func TestCountMapped(t *testing.T) {
	root := t.TempDir()
	maps := map[string]string{
		"1": "7f00-7f10 r-xp 00000000 fd:01 100 /usr/lib/libssl.so.3\n" +
			"7f10-7f20 r--p 00010000 fd:01 100 /usr/lib/libssl.so.3\n" +
			"7f20-7f30 r-xp 00000000 fd:01 200 /usr/bin/goprog\n",
		"22":   "7f00-7f10 r-xp 00000000 fd:01 100 /usr/lib/libssl.so.3\nnot a maps line\n",
		"333":  "7f00-7f10 r-xp 00000000 fd:02 100 /other/dev/same/inode\n00400000-00401000 r-xp 00000000 00:00 0 [vdso]\n",
		"self": "7f00-7f10 r-xp 00000000 fd:01 100 /usr/lib/libssl.so.3\n", // not a pid
	}
	for pid, m := range maps {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "maps"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev := unix.Mkdev(0xfd, 1)
	lib, prog := FileKey{dev, 100}, FileKey{dev, 200}
	got := countMapped(root, map[FileKey]bool{lib: true, prog: true, {dev, 999}: true})
	if len(got) != 2 || got[lib] != 2 || got[prog] != 1 {
		t.Errorf("counts %v, want libssl 2, the Go program 1", got)
	}
	if got := countMapped(filepath.Join(root, "missing"), map[FileKey]bool{lib: true}); len(got) != 0 {
		t.Errorf("counts %v from a missing /proc, want none", got)
	}
}

package sched

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPrefaultExecutable: afterwards every page of the executable's
// readable file mappings is in the page tables (smaps' Rss equals Size for
// each), and the bytes reported are their sizes' sum.
func TestPrefaultExecutable(t *testing.T) {
	// A test binary is small enough to be all mapped in by now: first
	// drop the page table entries of its read-only data (the file's
	// pages stay in the page cache; a later read maps them in again).
	for r, m := range exeMappings(t) {
		if m.perms != "r--p" { // not the code, nor the writable data
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.size), unix.MADV_DONTNEED); e != 0 {
			t.Fatalf("madvise(MADV_DONTNEED) %s: %v", r, e)
		}
	}
	before := exeMappings(t)
	if resident(before) >= total(before) {
		t.Fatalf("%d of %d bytes resident before prefaulting: nothing to show", resident(before), total(before))
	}

	n, err := PrefaultExecutable()
	if err != nil {
		t.Fatal(err)
	}
	after := exeMappings(t)
	for r, m := range after {
		if m.rss != m.size {
			t.Errorf("%s: %d KiB resident after prefaulting, want all %d KiB", r, m.rss>>10, m.size>>10)
		}
	}
	if len(after) == 0 || n != total(after) {
		t.Errorf("prefaulted %d bytes; the executable's %d readable mappings total %d", n, len(after), total(after))
	}
}

type mapping struct {
	perms            string
	start, size, rss int
}

// exeMappings reads the executable's readable mappings from smaps, by
// address range.
func exeMappings(t *testing.T) map[string]mapping {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	maps := map[string]mapping{}
	cur := "" // the range of the mapping being read, if it is one of ours
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			cur = ""
			if len(f) >= 6 && f[5] == exe && f[1][0] == 'r' {
				lo, hi, _ := strings.Cut(f[0], "-")
				a, _ := strconv.ParseUint(lo, 16, 64)
				z, _ := strconv.ParseUint(hi, 16, 64)
				cur = f[0]
				maps[cur] = mapping{perms: f[1], start: int(a), size: int(z - a)}
			}
			continue
		}
		if cur != "" && len(f) >= 2 && f[0] == "Rss:" {
			kb, _ := strconv.Atoi(f[1])
			m := maps[cur]
			m.rss = kb << 10
			maps[cur] = m
		}
	}
	return maps
}

func total(maps map[string]mapping) (n int) {
	for _, m := range maps {
		n += m.size
	}
	return n
}

func resident(maps map[string]mapping) (n int) {
	for _, m := range maps {
		n += m.rss
	}
	return n
}

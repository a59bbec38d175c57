package sched

import (
	"bufio"
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
	exeMaps(t, func(r string, perms string) {
		if perms != "r--p" { // not the code, nor the writable data
			return
		}
		lo, _, _ := strings.Cut(r, "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(sizeOf(r)), unix.MADV_DONTNEED); e != 0 {
			t.Fatalf("madvise(MADV_DONTNEED) %s: %v", r, e)
		}
	})
	if resident, size := rss(t); resident >= size {
		t.Fatalf("%d of %d bytes resident before prefaulting: nothing to show", resident, size)
	}
	n, err := PrefaultExecutable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sizes, total := 0, 0
	var cur string // the executable's readable mapping being read, "" for others
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			cur = ""
			if len(fields) >= 6 && fields[5] == exe && fields[1][0] == 'r' {
				cur = fields[0]
			}
			continue
		}
		if cur == "" || len(fields) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Size:":
			sizes++
			total += kb << 10
		case "Rss:":
			if kb<<10 != sizeOf(cur) {
				t.Errorf("%s: %d KiB resident after prefaulting, want all %d KiB", cur, kb, sizeOf(cur)>>10)
			}
		}
	}
	if sizes == 0 || n != total {
		t.Errorf("prefaulted %d bytes; the executable's %d readable mappings total %d", n, sizes, total)
	}
}

func sizeOf(r string) int {
	lo, hi, _ := strings.Cut(r, "-")
	a, _ := strconv.ParseUint(lo, 16, 64)
	b, _ := strconv.ParseUint(hi, 16, 64)
	return int(b - a)
}

// exeMaps calls f for each readable mapping of the executable.
func exeMaps(t *testing.T, f func(r, perms string)) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if fs := strings.Fields(line); len(fs) >= 6 && fs[5] == exe && fs[1][0] == 'r' {
			f(fs[0], fs[1])
		}
	}
}

// rss returns the resident and total bytes of the executable's readable
// mappings.
func rss(t *testing.T) (resident, size int) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for line := range strings.Lines(string(b)) {
		fs := strings.Fields(line)
		if len(fs) >= 5 && strings.Contains(fs[0], "-") && !strings.HasSuffix(fs[0], ":") {
			in = len(fs) >= 6 && fs[5] == exe && fs[1][0] == 'r'
			continue
		}
		if !in || len(fs) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(fs[1])
		switch fs[0] {
		case "Size:":
			size += kb << 10
		case "Rss:":
			resident += kb << 10
		}
	}
	return resident, size
}

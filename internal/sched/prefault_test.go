package sched

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestPrefaultExecutable: afterwards every page of the executable's
// readable file mappings is in the page tables (smaps' Rss equals Size for
// each), and the bytes reported are their sizes' sum.
func TestPrefaultExecutable(t *testing.T) {
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

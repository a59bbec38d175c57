package sched

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PrefaultExecutable maps every page of the running executable's file
// mappings (its code and read-only data) into the process's page tables
// now, and returns how many bytes that covered.
//
// Why: a page of code runs for the first time with a page fault, and on a
// hypervisor with shadow page tables each one is a trap into the host
// (~15 µs measured here, docs/benchmarks.md). The first event after start
// runs the decoders, the pipeline and the outputs for the first time and
// took ~1 ms more than the next ones; that is paid here, once, at start,
// instead. The pages are the file's, shared and clean: the kernel can
// still reclaim them.
func PrefaultExecutable() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != exe || f[1][0] != 'r' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_POPULATE_READ); e != 0 {
			return total, fmt.Errorf("madvise(MADV_POPULATE_READ) %s: %w", f[0], e)
		}
		total += int(end - start)
	}
	return total, sc.Err()
}

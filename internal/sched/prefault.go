package sched

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture/procfs"
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
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	var madvErr error
	err = procfs.ParseMaps(f, func(m procfs.Mapping) {
		if madvErr != nil || m.Path != exe || !m.Read {
			return
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.Start), uintptr(m.End-m.Start), unix.MADV_POPULATE_READ); e != 0 {
			madvErr = fmt.Errorf("madvise(MADV_POPULATE_READ) %x-%x: %w", m.Start, m.End, e)
			return
		}
		total += int(m.End - m.Start)
	})
	if madvErr != nil {
		return total, madvErr
	}
	return total, err
}

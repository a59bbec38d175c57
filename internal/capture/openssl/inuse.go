package openssl

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture/procfs"
)

// FileKey identifies an attached file (a Library's or GoProgram's Dev and
// Inode).
type FileKey struct{ Dev, Inode uint64 }

// InUse returns, for every attached library and Go program, how many
// running processes map it now, read from /proc (a file no process maps
// is absent). It reads every process's maps, so it is meant for status
// requests, not for a hot path.
func (s *Source) InUse() map[FileKey]int {
	want := map[FileKey]bool{}
	s.mu.Lock()
	for id := range s.libs {
		want[FileKey{id.dev, id.inode}] = true
	}
	for id := range s.gos {
		want[FileKey{id.dev, id.inode}] = true
	}
	s.mu.Unlock()
	return countMapped("/proc", want)
}

// countMapped counts, per file in want, the processes under procRoot that
// map it. Each process counts once per file, however many of its mappings
// are of it.
func countMapped(procRoot string, want map[FileKey]bool) map[FileKey]int {
	out := map[FileKey]int{}
	if len(want) == 0 {
		return out
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return out
	}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err != nil || pid <= 0 {
			continue
		}
		f, err := os.Open(filepath.Join(procRoot, e.Name(), "maps"))
		if err != nil {
			continue // exited, or a kernel thread
		}
		seen := map[FileKey]bool{}
		// A read error means the process exited mid-read: keep what we got.
		_ = procfs.ParseMaps(f, func(m procfs.Mapping) {
			k := FileKey{mapsDev(m.Dev), m.Inode}
			if want[k] && !seen[k] {
				seen[k] = true
				out[k]++
			}
		})
		f.Close()
	}
	return out
}

// mapsDev converts /proc/PID/maps' "MAJOR:MINOR" (hex) to stat's st_dev;
// 0 if malformed, which matches no attached file.
func mapsDev(s string) uint64 {
	maj, min, ok := strings.Cut(s, ":")
	a, err1 := strconv.ParseUint(maj, 16, 32)
	b, err2 := strconv.ParseUint(min, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0
	}
	return unix.Mkdev(uint32(a), uint32(b))
}

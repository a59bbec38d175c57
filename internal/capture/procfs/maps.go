package procfs

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mapping is one file-backed line of /proc/PID/maps.
type Mapping struct {
	// Dev is the device as maps prints it ("fd:01"), Inode its inode.
	Dev   string
	Inode uint64
	// Path is the file's path in the mapping process's mount namespace.
	Path string
	// Deleted is set when the file was unlinked after it was mapped.
	Deleted bool
	// Exec is set when the mapping is executable (code).
	Exec bool
}

// ParseMaps calls fn for each file-backed mapping in r, in the format of
// /proc/PID/maps. Anonymous and pseudo mappings ([heap], [vdso]) are
// skipped. Malformed lines are skipped too: the kernel writes this file and a
// half-read line from a racing exit must not abort a scan.
func ParseMaps(r io.Reader, fn func(Mapping)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if m, ok := parseLine(sc.Bytes()); ok {
			fn(m)
		}
	}
	return sc.Err()
}

// parseLine parses "start-end perms offset dev inode   path".
func parseLine(line []byte) (Mapping, bool) {
	var fields [5][]byte
	rest := line
	for i := range fields {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			return Mapping{}, false
		}
		fields[i], rest = rest[:end], rest[end:]
	}
	inode, err := strconv.ParseUint(string(fields[4]), 10, 64)
	if err != nil || inode == 0 {
		return Mapping{}, false
	}
	path := string(bytes.TrimLeft(rest, " "))
	if !strings.HasPrefix(path, "/") {
		return Mapping{}, false
	}
	m := Mapping{Dev: string(fields[3]), Inode: inode, Path: path, Exec: bytes.IndexByte(fields[1], 'x') >= 0}
	if p, ok := strings.CutSuffix(path, " (deleted)"); ok {
		m.Path, m.Deleted = p, true
	}
	return m, true
}

// MappedFile is a file some process has mapped.
type MappedFile struct {
	PID int
	Mapping
	// HostPath opens the file from tlstap's mount namespace.
	HostPath string
}

// ScanMapped returns, for every process under procRoot (normally "/proc"),
// the mapped files whose path match accepts, once per process and file.
// Processes that exit during the scan or cannot be read are skipped.
func ScanMapped(procRoot string, match func(path string) bool) ([]MappedFile, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []MappedFile
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		f, err := os.Open(filepath.Join(procRoot, e.Name(), "maps"))
		if err != nil {
			continue
		}
		seen := map[Mapping]bool{}
		// A read error means the process exited mid-read: keep what we got.
		_ = ParseMaps(f, func(m Mapping) {
			key := m
			key.Exec = false // one file, whichever of its mappings
			if m.Deleted || seen[key] || !match(m.Path) {
				return
			}
			seen[key] = true
			out = append(out, MappedFile{
				PID:      pid,
				Mapping:  m,
				HostPath: filepath.Join(procRoot, e.Name(), "root", m.Path),
			})
		})
		f.Close()
	}
	return out, nil
}

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
	// Start and End are the mapping's addresses, End excluded.
	Start, End uint64
	// Dev is the device as maps prints it ("fd:01"), Inode its inode.
	Dev   string
	Inode uint64
	// Path is the file's path in the mapping process's mount namespace.
	Path string
	// Deleted is set when the file was unlinked after it was mapped.
	Deleted bool
	// Read and Exec are set when the mapping is readable, executable
	// (code).
	Read, Exec bool
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
	lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
	if !ok {
		return Mapping{}, false
	}
	start, err1 := strconv.ParseUint(string(lo), 16, 64)
	end, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || end < start {
		return Mapping{}, false
	}
	path := string(bytes.TrimLeft(rest, " "))
	if !strings.HasPrefix(path, "/") {
		return Mapping{}, false
	}
	m := Mapping{Start: start, End: end, Dev: string(fields[3]), Inode: inode, Path: path,
		Read: bytes.IndexByte(fields[1], 'r') >= 0, Exec: bytes.IndexByte(fields[1], 'x') >= 0}
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
		type file struct {
			dev   string
			inode uint64
			path  string
		}
		seen := map[file]bool{} // one file, whichever of its mappings
		// A read error means the process exited mid-read: keep what we got.
		_ = ParseMaps(f, func(m Mapping) {
			key := file{m.Dev, m.Inode, m.Path}
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

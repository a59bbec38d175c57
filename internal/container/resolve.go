package container

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRoot is where cgroup v2 is mounted on a unified-hierarchy host.
const DefaultRoot = "/sys/fs/cgroup"

// FindRoot returns where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on unified hosts, /sys/fs/cgroup/unified on hybrid ones (systemd's v1
// layout, where /sys/fs/cgroup is a tmpfs of v1 hierarchies whose inode
// numbers mean nothing to bpf_get_current_cgroup_id).
func FindRoot() (string, error) {
	for _, dir := range []string{DefaultRoot, DefaultRoot + "/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return dir, nil
		}
	}
	return "", errors.New("container: no cgroup v2 hierarchy at " + DefaultRoot + " or " + DefaultRoot + "/unified")
}

// Bounds of the resolver's memory and work. A host has far fewer live
// cgroups than maxPaths; if a walk finds more, the rest are not cached
// and resolve as unknown. A miss walks the hierarchy again at most every
// minWalk, so a stream of unknown ids costs bounded work.
const (
	maxPaths  = 1 << 16
	maxMisses = 1 << 12
	minWalk   = 200 * time.Millisecond
)

// Resolver maps cgroup ids to cgroup paths and container ids. On a cgroup
// v2 mount a cgroup's directory opens by its id (byHandle); where it does
// not (no privilege, or a root that is not such a mount), a cgroup's id is
// the inode number of its directory, so a walk of the hierarchy finds it.
// Results are cached, and a miss re-walks (at most every minWalk), because
// cgroups are created after the walk (a container started later). Memory
// is bounded: each walk replaces the cache, and at most maxMisses ids are
// remembered as not found. Safe for concurrent use.
type Resolver struct {
	root string

	mu     sync.Mutex
	paths  map[uint64]string    // id -> path relative to root, "/"-rooted
	misses map[uint64]time.Time // id -> time of the walk that did not find it
	walked time.Time            // last walk
	walks  uint64
	// minWalk is the const, but tests may shorten it.
	minWalk time.Duration
	// handles: root is a cgroup v2 mount, whose cgroups open by id
	// (byHandle); cleared once the kernel or our privileges say no.
	handles bool
}

// NewResolver resolves under root (FindRoot's answer, or DefaultRoot, if
// empty).
func NewResolver(root string) *Resolver {
	if root == "" {
		root = DefaultRoot
		if r, err := FindRoot(); err == nil {
			root = r
		}
	}
	var st unix.Statfs_t
	handles := unix.Statfs(root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	return &Resolver{root: root, paths: map[uint64]string{}, misses: map[uint64]time.Time{}, minWalk: minWalk, handles: handles}
}

// Root returns the directory the resolver walks.
func (r *Resolver) Root() string { return r.root }

// Path returns the cgroup path of id, e.g. "/system.slice/docker-<id>.scope".
func (r *Resolver) Path(id uint64) (string, bool) {
	p, ok, _ := r.lookup(id)
	return p, ok
}

// lookup returns id's path; final is false when id was not found but a
// later call may find it (the walk was skipped as too recent).
func (r *Resolver) lookup(id uint64) (p string, ok, final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[id]; ok {
		return p, true, true
	}
	if r.handles {
		p, found, known := r.byHandle(id)
		if found {
			if len(r.paths) >= maxPaths {
				clear(r.paths)
			}
			r.paths[id] = p
			return p, true, true
		}
		if known {
			return "", false, true // no such cgroup (any more)
		}
	}
	if t, ok := r.misses[id]; ok && !r.walked.After(t) {
		return "", false, true // no walk since the one that missed it
	}
	now := time.Now()
	if now.Sub(r.walked) < r.minWalk {
		return "", false, false
	}
	r.walk(now)
	if p, ok := r.paths[id]; ok {
		delete(r.misses, id)
		return p, true, true
	}
	if len(r.misses) >= maxMisses {
		clear(r.misses)
	}
	r.misses[id] = now
	return "", false, true
}

// Container returns the container id of the cgroup id, "" if it is not a
// container's or unknown.
func (r *Resolver) Container(id uint64) string {
	c, _ := r.Lookup(id)
	return c
}

// Lookup returns the container id of the cgroup id ("" for none) and
// whether that answer is final: false means the id is unknown for now
// and worth asking again later (a cgroup created since the last walk).
func (r *Resolver) Lookup(id uint64) (string, bool) {
	p, ok, final := r.lookup(id)
	if !ok {
		return "", final
	}
	return ID(p), true
}

// fileIDKernfs is the file handle type of kernfs (FILEID_KERNFS in the
// kernel's exportfs.h): 8 bytes, the node's id, which for a cgroup is its
// cgroup id.
const fileIDKernfs = 0xfe

// byHandle finds the cgroup id without a walk: cgroup v2 exports each
// cgroup's directory under a file handle made of its id, so
// open_by_handle_at opens it and /proc/self/fd names it: four system
// calls, about a thousandth of a walk of a few hundred cgroups
// (BenchmarkResolveMiss, docs/benchmarks.md), on the capture's path. found is
// false with known true when the cgroup does not exist (ESTALE); known is
// false when the kernel or our privileges (CAP_DAC_READ_SEARCH) refuse
// handles, and from then on only walks are used. r.mu held.
func (r *Resolver) byHandle(id uint64) (path string, found, known bool) {
	mount, err := unix.Open(r.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false, false
	}
	defer unix.Close(mount)
	var h [8]byte
	binary.NativeEndian.PutUint64(h[:], id)
	fd, err := unix.OpenByHandleAt(mount, unix.NewFileHandle(fileIDKernfs, h[:]), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	switch {
	case errors.Is(err, unix.ESTALE), errors.Is(err, unix.ENOENT):
		return "", false, true
	case err != nil:
		r.handles = false
		return "", false, false
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", false, false
	}
	rel, err := filepath.Rel(r.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false, false // outside our view of the hierarchy: the walk decides
	}
	return filepath.Clean("/" + rel), true, true
}

// walk records every cgroup directory's inode; r.mu held. Directories
// that vanish during the walk are skipped, and so are other file systems
// mounted below the root (their inode numbers are not cgroup ids).
func (r *Resolver) walk(now time.Time) {
	r.walked = now
	r.walks++
	paths := make(map[uint64]string, len(r.paths))
	var rootDev uint64
	if st, err := os.Stat(r.root); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			rootDev = s.Dev
		}
	}
	_ = filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == r.root {
				return err
			}
			return fs.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fs.SkipDir
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok || st.Dev != rootDev {
			return fs.SkipDir
		}
		if len(paths) >= maxPaths {
			return fs.SkipAll
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return nil
		}
		paths[st.Ino] = filepath.Clean("/" + rel)
		return nil
	})
	r.paths = paths
}

// Of returns the cgroup id of a directory in the cgroup v2 hierarchy: its
// inode number.
func Of(dir string) (uint64, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return 0, err
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("container: no inode number")
	}
	return s.Ino, nil
}

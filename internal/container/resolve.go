package container

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// DefaultRoot is where cgroup v2 is mounted.
const DefaultRoot = "/sys/fs/cgroup"

// Resolver maps cgroup ids to cgroup paths and container ids. On cgroup v2
// a cgroup's id is the inode number of its directory, so a walk of the
// hierarchy finds it; results are cached, and a miss re-walks at most
// once per id, because cgroups are created after the walk (a container
// started later). Safe for concurrent use.
type Resolver struct {
	root string

	mu    sync.Mutex
	paths map[uint64]string // id -> path relative to root, "/"-rooted
	tried map[uint64]bool   // ids a walk did not find
}

// NewResolver resolves under root (DefaultRoot if empty).
func NewResolver(root string) *Resolver {
	if root == "" {
		root = DefaultRoot
	}
	return &Resolver{root: root, paths: map[uint64]string{}, tried: map[uint64]bool{}}
}

// Path returns the cgroup path of id, e.g. "/system.slice/docker-<id>.scope".
func (r *Resolver) Path(id uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[id]; ok {
		return p, true
	}
	if r.tried[id] {
		return "", false
	}
	r.walk()
	p, ok := r.paths[id]
	if !ok {
		r.tried[id] = true
	}
	return p, ok
}

// Container returns the container id of the cgroup id, "" if it is not a
// container's or unknown.
func (r *Resolver) Container(id uint64) string {
	p, ok := r.Path(id)
	if !ok {
		return ""
	}
	return ID(p)
}

// walk records every cgroup directory's inode; r.mu held. Directories
// that vanish during the walk are skipped.
func (r *Resolver) walk() {
	_ = filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return nil
		}
		r.paths[st.Ino] = filepath.Clean("/" + rel)
		delete(r.tried, st.Ino)
		return nil
	})
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

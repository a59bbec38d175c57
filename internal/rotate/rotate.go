package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Namer moves one output's files aside. Its index counts up across the
// output's life, so names never collide within one second; a name taken
// by anything else is skipped.
type Namer struct {
	index int
	now   func() time.Time // tests fix the clock
}

// maxTries bounds the search for a free name: a directory full of
// NAME-<this second>-NNNN files means something else is wrong.
const maxTries = 10000

// MoveAway renames path to the first free NAME-<time>-<index>.EXT and
// returns that name.
func (n *Namer) MoveAway(path string) (string, error) {
	now := time.Now
	if n.now != nil {
		now = n.now
	}
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	stamp := now().UTC().Format("20060102T150405Z")
	for range maxTries {
		n.index++
		name := fmt.Sprintf("%s-%s-%04d%s", base, stamp, n.index, ext)
		err := renameNoReplace(path, name)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("rotate %s: %w", path, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("rotate %s: no free name after %d tries", path, maxTries)
}

// renameNoReplace renames without ever replacing a file that appeared at
// the new name, where the file system can promise that; elsewhere it
// checks first.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return os.ErrExist
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		if _, err := os.Lstat(to); err == nil {
			return os.ErrExist
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return os.Rename(from, to)
	default:
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
}

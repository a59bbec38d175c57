package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tlstap/tlstap/internal/container"
)

// Cgroup is a cgroup v2 directory a test created, named as docker's
// systemd driver names a container's (docker-<id>.scope).
type Cgroup struct {
	Dir string
	// ID is its cgroup id (the directory's inode), Container the container
	// id its name holds.
	ID        uint64
	Container string
	fd        *os.File
}

// NewContainerCgroup creates a cgroup under a test parent in the cgroup
// v2 hierarchy (root only); it is removed when the test ends, after its
// processes have exited.
func NewContainerCgroup(t testing.TB) *Cgroup {
	t.Helper()
	root, err := container.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	parent := filepath.Join(root, "tlstap-test-"+id[:8])
	dir := filepath.Join(parent, "docker-"+id+".scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cg := &Cgroup{Dir: dir, Container: id}
	t.Cleanup(func() {
		if cg.fd != nil {
			cg.fd.Close()
		}
		os.Remove(dir)
		os.Remove(parent)
	})
	if cg.ID, err = container.Of(dir); err != nil {
		t.Fatal(err)
	}
	if cg.fd, err = os.Open(dir); err != nil {
		t.Fatal(err)
	}
	return cg
}

// Place makes cmd start inside the cgroup (clone3 with CLONE_INTO_CGROUP:
// the process never runs anywhere else).
func (c *Cgroup) Place(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(c.fd.Fd())
}

package openssl

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// bootOffset is what to add to a bpf_ktime_get_ns (CLOCK_MONOTONIC)
// timestamp to get Unix time.
func bootOffset() int64 {
	// A read of the wall clock bracketed by two of the monotonic one; the
	// tightest bracket of a few wins, so a preemption between the reads
	// (common on a busy machine) cannot skew every timestamp by its length.
	best, off := int64(math.MaxInt64), int64(0)
	for range 16 {
		var m1, m2 unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1)
		wall := time.Now().UnixNano()
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2)
		if d := m2.Nano() - m1.Nano(); d < best {
			best, off = d, wall-(m1.Nano()+d/2)
		}
	}
	return off
}

// checkPrerequisites names what is missing before the loader fails with a
// less helpful errno.
func checkPrerequisites() error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("kernel BTF not available (%w): tlstap needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raise RLIMIT_MEMLOCK: %w (capture %s)", err, privHint)
	}
	return ensureTracefs()
}

// ensureTracefs mounts tracefs when nothing has: syscall tracepoints are
// looked up there, and minimal systems (containers, VMs) often lack the mount.
func ensureTracefs() error {
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(dir + "/events"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("tracefs is not mounted and mounting it failed (%w): run `mount -t tracefs tracefs /sys/kernel/tracing` as root", err)
	}
	return nil
}

const privHint = "needs root, or the capabilities CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE"

func loadError(err error) error {
	var ve *ebpf.VerifierError
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("load BPF programs: %w (capture %s)", err, privHint)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("load BPF programs: %w (needs Linux 6.3+ with BPF ring buffers, bpf_loop and BTF)", err)
	case errors.As(err, &ve):
		return fmt.Errorf("load BPF programs: the kernel's verifier refused them: %+v", ve)
	}
	return fmt.Errorf("load BPF programs: %w", err)
}

func uprobeError(path, sym string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrNotExist) && !fileExists(path) {
		return fmt.Errorf("attach uprobe %s:%s: %w (needs CONFIG_UPROBE_EVENTS)", path, sym, err)
	}
	return fmt.Errorf("attach uprobe %s:%s: %w", path, sym, err)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

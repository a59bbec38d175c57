package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Slice bounds the kernel accepts for a SCHED_OTHER thread's request.
const (
	MinSlice = 100 * time.Microsecond
	MaxSlice = 100 * time.Millisecond
)

// ErrUnsupported means the kernel has no per-thread slice (before 6.12):
// sched_setattr refused the request, or took it and left the slice as it
// was.
var ErrUnsupported = errors.New("per-thread scheduling slice not supported by this kernel")

// attr is struct sched_attr (include/uapi/linux/sched/types.h), up to
// sched_period: SCHED_ATTR_SIZE_VER0, which every kernel with
// sched_setattr takes.
type attr struct {
	size     uint32
	policy   uint32
	flags    uint64
	nice     int32
	priority uint32
	runtime  uint64
	deadline uint64
	period   uint64
}

// SetProcess requests slice for every thread of the calling process and
// returns how many it set. Threads created from then on inherit it from
// the thread that creates them. A thread that exits meanwhile is skipped.
// Only SCHED_OTHER threads are changed (the call would make a real-time
// thread SCHED_OTHER); their nice value is kept.
func SetProcess(slice time.Duration) (int, error) {
	if slice < MinSlice || slice > MaxSlice {
		return 0, fmt.Errorf("scheduling slice %v: want %v to %v", slice, MinSlice, MaxSlice)
	}
	// Ours first: a thread Go creates while we walk the list is cloned
	// from one already set, or is on the next pass's list.
	if err := SetThread(unix.Gettid(), slice); err != nil {
		return 0, err
	}
	// Kernels 6.6 to 6.11 take the call and ignore sched_runtime.
	if got, err := Slice(unix.Gettid()); err != nil || got != slice.Truncate(time.Nanosecond) {
		return 0, ErrUnsupported
	}
	done := map[int]bool{unix.Gettid(): true}
	for {
		tids, err := threads()
		if err != nil {
			return len(done), err
		}
		added := false
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			added = true
			done[tid] = true
			if err := SetThread(tid, slice); err != nil && !errors.Is(err, unix.ESRCH) {
				return len(done) - 1, fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		if !added {
			return len(done), nil
		}
	}
}

// SetThread requests slice for one thread of the calling process.
func SetThread(tid int, slice time.Duration) error {
	policy, err := getPolicy(tid)
	if err != nil {
		return err
	}
	if policy&^unix.SCHED_RESET_ON_FORK != unix.SCHED_NORMAL {
		return fmt.Errorf("thread %d has scheduling policy %d, not SCHED_OTHER: left as it is", tid, policy)
	}
	// getpriority returns 20 - nice for a thread id, never an error value
	// in range, so it is unambiguous.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	a := attr{size: uint32(unsafe.Sizeof(attr{})), policy: unix.SCHED_NORMAL, nice: int32(20 - prio),
		runtime: uint64(slice.Nanoseconds())}
	if e := setattr(tid, &a); e != 0 {
		if e == unix.EINVAL || e == unix.ENOSYS || e == unix.E2BIG {
			return fmt.Errorf("%w: %v", ErrUnsupported, e)
		}
		return e
	}
	return nil
}

// Slice reports the slice a thread of the calling process has: its
// request, or the kernel's default. ErrUnsupported when the kernel does not
// say (before 6.6, no se.slice in /proc).
func Slice(tid int) (time.Duration, error) {
	a, err := getAttr(tid)
	if err != nil {
		return 0, err
	}
	if a.runtime == 0 {
		// Kernels that report the slice in sched_getattr do so always;
		// 0 means one that does not know about it.
		return 0, ErrUnsupported
	}
	return time.Duration(a.runtime), nil
}

// setattr is sched_setattr; tests replace it to play an older kernel.
var setattr = func(tid int, a *attr) unix.Errno {
	_, _, e := unix.Syscall(unix.SYS_SCHED_SETATTR, uintptr(tid), uintptr(unsafe.Pointer(a)), 0)
	return e
}

func getPolicy(tid int) (int, error) {
	p, _, e := unix.Syscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(p), nil
}

func getAttr(tid int) (attr, error) {
	var a attr
	if _, _, e := unix.Syscall6(unix.SYS_SCHED_GETATTR, uintptr(tid), uintptr(unsafe.Pointer(&a)), unsafe.Sizeof(a), 0, 0, 0); e != 0 {
		return a, e
	}
	return a, nil
}

// threads lists the calling process's thread ids.
func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

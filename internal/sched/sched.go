package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Priority is the SCHED_FIFO priority Realtime gives: the lowest.
const Priority = 1

// Class is a scheduling class tlstap's threads can be put in.
type Class int

const (
	// Fair is the kernel's default class (SCHED_OTHER, nice 0).
	Fair Class = iota
	// RealTime is SCHED_FIFO at Priority.
	RealTime
)

func (c Class) String() string {
	if c == RealTime {
		return fmt.Sprintf("SCHED_FIFO %d", Priority)
	}
	return "SCHED_OTHER"
}

// Set puts every thread of the calling process in class c and returns how
// many it changed. Threads created from then on inherit it from the
// thread that creates them, so the runtime's later threads are covered
// once every thread has been. A thread that exits meanwhile is skipped.
// Without CAP_SYS_NICE (or an RLIMIT_RTPRIO of at least Priority) the
// first thread is refused RealTime and nothing changes.
func Set(c Class) (int, error) {
	// Ours first: a refusal changes nothing, and a thread the runtime
	// creates while we walk the list is cloned from one already set, or
	// is on the next pass's list.
	if err := SetThread(unix.Gettid(), c); err != nil {
		if errors.Is(err, unix.EPERM) {
			return 0, fmt.Errorf("%v refused (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least %d): %w", c, Priority, err)
		}
		return 0, err
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
			added, done[tid] = true, true
			if err := SetThread(tid, c); err != nil && !errors.Is(err, unix.ESRCH) {
				return len(done) - 1, fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		if !added {
			return len(done), nil
		}
	}
}

// SetThread puts one thread of the calling process in class c.
func SetThread(tid int, c Class) error {
	if c == RealTime {
		return unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: Priority}, 0)
	}
	// The nice value the thread had before: a real-time policy leaves it
	// stored, and getpriority returns 20 - nice for a thread id, never an
	// error value in range.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	return unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL, Nice: int32(20 - prio)}, 0)
}

// Policy returns a thread's scheduling policy and real-time priority.
func Policy(tid int) (policy, priority int, err error) {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, 0, err
	}
	return int(a.Policy), int(a.Priority), nil
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

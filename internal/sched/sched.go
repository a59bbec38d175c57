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

// Realtime makes every thread of the calling process SCHED_FIFO at
// Priority and returns how many it changed. Threads created from then on
// inherit it from the thread that creates them, so the runtime's later
// threads are covered once every thread has been. A thread that exits
// meanwhile is skipped. Without CAP_SYS_NICE (or an RLIMIT_RTPRIO of at
// least Priority) the first thread is refused and nothing changes.
func Realtime() (int, error) {
	// Ours first: a refusal changes nothing, and a thread the runtime
	// creates while we walk the list is cloned from one already set, or
	// is on the next pass's list.
	if err := SetThread(unix.Gettid()); err != nil {
		if errors.Is(err, unix.EPERM) {
			return 0, fmt.Errorf("real-time scheduling refused (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least %d): %w", Priority, err)
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
			if err := SetThread(tid); err != nil && !errors.Is(err, unix.ESRCH) {
				return len(done) - 1, fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		if !added {
			return len(done), nil
		}
	}
}

// SetThread makes one thread of the calling process SCHED_FIFO at
// Priority.
func SetThread(tid int) error {
	return unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: Priority}, 0)
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

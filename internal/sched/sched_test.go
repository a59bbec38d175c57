package sched

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/testenv"
)

// onThread runs f on a new OS thread of its own, which exits afterwards
// (the goroutine ends locked), so whatever f changes about its thread
// leaves the test process.
func onThread(t *testing.T, f func(tid int) error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		errc <- f(unix.Gettid())
	}()
	return <-errc
}

func nice(tid int) (int, error) {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	return 20 - p, err
}

func threadSlices(t *testing.T) map[int]time.Duration {
	t.Helper()
	tids, err := threads()
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]time.Duration{}
	for _, tid := range tids {
		s, err := Slice(tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			t.Fatalf("thread %d: %v", tid, err)
		}
		m[tid] = s
	}
	return m
}

// TestSetProcess: every thread gets the slice, and threads the runtime
// creates afterwards inherit it. This changes the test process for good,
// which nothing else in the package minds.
func TestSetProcess(t *testing.T) {
	const slice = 300 * time.Microsecond
	// Some threads before, so that more than the caller's is set.
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for range 3 {
		wg.Go(func() { runtime.LockOSThread(); <-hold; runtime.UnlockOSThread() })
	}
	n, err := SetProcess(slice)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("kernel %s: %v", release(), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Errorf("set %d threads, want at least 4", n)
	}
	for tid, s := range threadSlices(t) {
		if s != slice {
			t.Errorf("thread %d: slice %v, want %v", tid, s, slice)
		}
	}
	// New threads: each locked goroutine forces the runtime to start
	// another M while the others hold theirs.
	before := threadSlices(t)
	more := make(chan int)
	for range 4 {
		wg.Go(func() { runtime.LockOSThread(); more <- unix.Gettid(); <-hold; runtime.UnlockOSThread() })
	}
	fresh := 0
	for range 4 {
		tid := <-more
		if _, ok := before[tid]; ok {
			continue // an idle M the runtime had already
		}
		fresh++
		s, err := Slice(tid)
		if err != nil {
			t.Fatal(err)
		}
		if s != slice {
			t.Errorf("thread %d created after SetProcess: slice %v, want %v inherited", tid, s, slice)
		}
		// The scheduler's own view, where the kernel prints it (6.6+).
		if ps, ok := procSlice(t, tid); ok && ps != slice {
			t.Errorf("thread %d created after SetProcess: /proc says se.slice %v, want %v", tid, ps, slice)
		}
	}
	close(hold)
	wg.Wait()
	if fresh == 0 {
		t.Error("no new thread was created; inheritance not checked")
	}
}

// TestSetThreadKeepsNice: sched_setattr sets the nice value too; the
// thread's own must survive, above and below 0 (root may lower it).
func TestSetThreadKeepsNice(t *testing.T) {
	testenv.RequireRoot(t, "setting a negative nice value")
	for _, n := range []int{-7, 0, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			err := onThread(t, func(tid int) error {
				if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil {
					return err
				}
				if err := SetThread(tid, MinSlice); err != nil {
					return err
				}
				got, err := nice(tid)
				if err != nil {
					return err
				}
				if got != n {
					return fmt.Errorf("nice %d after SetThread, want %d", got, n)
				}
				if s, err := Slice(tid); err != nil || s != MinSlice {
					return fmt.Errorf("slice %v (%v), want %v", s, err, MinSlice)
				}
				return nil
			})
			if errors.Is(err, ErrUnsupported) {
				t.Skipf("kernel %s: %v", release(), err)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUnprivileged: the request needs no privilege, also with a negative
// nice value that an unprivileged thread could not set itself. The thread
// drops to nobody on its own (setresuid as a raw system call changes only
// the calling thread) and exits afterwards.
func TestUnprivileged(t *testing.T) {
	testenv.RequireRoot(t, "dropping to nobody")
	err := onThread(t, func(tid int) error {
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, -3); err != nil {
			return err
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 65534, 65534, 65534); e != 0 {
			return fmt.Errorf("setresuid: %v", e)
		}
		if err := SetThread(tid, 2*MinSlice); err != nil {
			return fmt.Errorf("as nobody: %w", err)
		}
		if n, _ := nice(tid); n != -3 {
			return fmt.Errorf("nice %d, want -3", n)
		}
		if s, err := Slice(tid); err != nil || s != 2*MinSlice {
			return fmt.Errorf("slice %v (%v), want %v", s, err, 2*MinSlice)
		}
		return nil
	})
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("kernel %s: %v", release(), err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefused: what SetThread and SetProcess do when they cannot.
func TestRefused(t *testing.T) {
	t.Run("out of range", func(t *testing.T) {
		for _, d := range []time.Duration{0, MinSlice - 1, MaxSlice + 1} {
			if _, err := SetProcess(d); err == nil {
				t.Errorf("SetProcess(%v): no error", d)
			}
		}
	})
	t.Run("not SCHED_OTHER", func(t *testing.T) {
		err := onThread(t, func(tid int) error {
			var prio int32 // struct sched_param
			if _, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), unix.SCHED_BATCH, uintptr(unsafe.Pointer(&prio))); e != 0 {
				return fmt.Errorf("setscheduler: %v", e)
			}
			err := SetThread(tid, MinSlice)
			if err == nil {
				return errors.New("a SCHED_BATCH thread was changed")
			}
			if pol, _ := getPolicy(tid); pol != unix.SCHED_BATCH {
				return fmt.Errorf("policy %d after a refused SetThread, want SCHED_BATCH", pol)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("old kernel", func(t *testing.T) {
		for _, e := range []unix.Errno{unix.EINVAL, unix.ENOSYS, unix.E2BIG} {
			old := setattr
			setattr = func(int, *attr) unix.Errno { return e }
			_, err := SetProcess(MinSlice)
			setattr = old
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("sched_setattr failing with %v: SetProcess error %v, want ErrUnsupported", e, err)
			}
		}
		// 6.6 to 6.11: the call succeeds and the slice stays.
		old := setattr
		setattr = func(int, *attr) unix.Errno { return 0 }
		_, err := SetProcess(MaxSlice)
		setattr = old
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("sched_setattr ignoring the slice: SetProcess error %v, want ErrUnsupported", err)
		}
	})
}

// procSlice reads se.slice from /proc/self/task/TID/sched.
func procSlice(t *testing.T, tid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/sched", tid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "se.slice" {
			ns, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("se.slice %q: %v", v, err)
			}
			return time.Duration(ns), true
		}
	}
	return 0, false
}

func release() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

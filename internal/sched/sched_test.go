package sched

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv marks the copy of the test binary that TestRealtime runs: the
// change is for good and process-wide, so it is made in a process of its
// own, not in the one running the other tests.
const childEnv = "TLSTAP_SCHED_TEST_CHILD"

// TestRealtime: as root, every thread, including those the runtime creates
// afterwards, ends up SCHED_FIFO at Priority, and Set(Fair) brings every
// one back with its nice value; without the privilege the refusal names
// what is missing and no thread changes.
func TestRealtime(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRealtime$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	if os.Geteuid() == 0 {
		if !strings.Contains(got, "RESULT realtime") || !strings.Contains(got, "RESULT fair again") || strings.Contains(got, "WRONG") {
			t.Fatalf("as root, want every thread SCHED_FIFO %d:\n%s", Priority, got)
		}
		return
	}
	// Unprivileged: refused, unless an RLIMIT_RTPRIO allows it (then the
	// child checked the threads as for root).
	refused := strings.Contains(got, "RESULT refused")
	if strings.Contains(got, "WRONG") || refused && !strings.Contains(got, "CAP_SYS_NICE") ||
		!refused && !strings.Contains(got, "RESULT fair again") {
		t.Fatalf("without privilege, want a refusal naming CAP_SYS_NICE and no thread changed:\n%s", got)
	}
}

func child() {
	// Nice is per thread: this one's must survive the round trip.
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 3); err != nil {
		fmt.Println("WRONG: setpriority:", err)
	}
	n, err := Set(RealTime)
	want := unix.SCHED_FIFO
	if err != nil {
		fmt.Printf("RESULT refused: %v\n", err)
		want = unix.SCHED_NORMAL
	} else {
		fmt.Printf("RESULT realtime: %d threads\n", n)
	}
	// Threads created from now on: each locked goroutine holds one.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			<-release
		}()
	}
	wg.Wait()
	tids, err := threads()
	if err != nil {
		fmt.Println("WRONG:", err)
	}
	if len(tids) <= n {
		fmt.Printf("WRONG: %d threads after locking 4 goroutines, %d before\n", len(tids), n)
	}
	for _, tid := range tids {
		p, prio, err := Policy(tid)
		switch {
		case err != nil:
			fmt.Printf("WRONG: thread %d: %v\n", tid, err)
		case p != want || (want == unix.SCHED_FIFO && prio != Priority):
			fmt.Printf("WRONG: thread %d: policy %d priority %d, want policy %d\n", tid, p, prio, want)
		}
	}
	if want != unix.SCHED_FIFO {
		close(release)
		return
	}
	// And back: every thread fair again, this one at nice 3.
	if _, err := Set(Fair); err != nil {
		fmt.Println("WRONG: back to fair:", err)
	}
	tids, _ = threads()
	for _, tid := range tids {
		if p, _, err := Policy(tid); err != nil || p != unix.SCHED_NORMAL {
			fmt.Printf("WRONG: thread %d after Set(Fair): policy %d, %v\n", tid, p, err)
		}
	}
	if prio, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid()); err != nil || 20-prio != 3 {
		fmt.Printf("WRONG: nice %d after the round trip, want 3 (%v)\n", 20-prio, err)
	}
	fmt.Println("RESULT fair again")
	close(release)
}

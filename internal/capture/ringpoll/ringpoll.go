package ringpoll

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Waiter parks the goroutine that reads a ring buffer in Go's network
// poller until the ring holds a record, instead of blocking its thread in
// epoll_wait as ringbuf.Reader does.
//
// Why: a goroutine blocked in a system call keeps its P (Go's scheduler
// slot). The ring reader hands every record to the pipeline goroutine and
// then blocks, so the pipeline waited on the blocked P's run queue until
// another thread stole it or sysmon took the P back, and sysmon, which
// retakes such Ps, polled every 20 µs while that went on. Under h2load
// this scheduling cost more CPU than decoding and output together, and it
// added tens of µs to every event. Parked in the poller, the reader frees
// its P at once, the pipeline runs on the same thread, and an idle tlstap
// has no thread in a system call for sysmon to watch.
//
// The kernel wakes a ring's waiters when a record is committed while the
// reader had caught up (default flags, see bpf/tlstap.bpf.c), which is
// exactly when the reader is about to park or parked: Wait re-checks the
// ring after the poller's readiness was reset, so a record committed
// between the last read and the park is never missed.
type Waiter struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
}

// ErrNotPollable means the poller refused the ring's descriptor; the
// caller falls back to blocking reads.
var ErrNotPollable = errors.New("ring buffer descriptor not pollable")

// New registers a duplicate of m's descriptor, a ring buffer map, with the
// poller.
func New(m *ebpf.Map) (*Waiter, error) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup ring descriptor: %w", err)
	}
	// Non-blocking before NewFile: that is what makes os register it
	// with the poller rather than treat it as a blocking file.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ring descriptor non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "tlstap ring buffer")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &Waiter{f: f, rc: rc}
	// A descriptor the poller did not take makes every wait fail at once;
	// find out now rather than in Run. A deadline in the past makes the
	// probe return instead of parking.
	f.SetReadDeadline(time.Unix(1, 0))
	err = rc.Read(func(uintptr) bool { return false })
	f.SetReadDeadline(time.Time{})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		f.Close()
		return nil, fmt.Errorf("%w: %v", ErrNotPollable, err)
	}
	return w, nil
}

// Wait returns nil once rd has a record to read, os.ErrDeadlineExceeded
// at deadline (zero: none), or an error wrapping os.ErrClosed once Close
// was called. rd should have a deadline in the past, so that its reads
// return os.ErrDeadlineExceeded when the ring is empty instead of blocking.
// One goroutine at a time may wait.
func (w *Waiter) Wait(rd *ringbuf.Reader, deadline time.Time) error {
	if err := w.f.SetReadDeadline(deadline); err != nil {
		return err
	}
	err := w.rc.Read(func(uintptr) bool { return rd.AvailableBytes() > 0 })
	if err != nil && w.closed.Load() {
		// The poller's own "use of closed file" is not os.ErrClosed.
		return fmt.Errorf("ring wait: %w", os.ErrClosed)
	}
	return err
}

// Close ends a Wait in progress and every later one; it is safe to call
// more than once and from any goroutine.
func (w *Waiter) Close() {
	w.closed.Store(true)
	w.f.Close()
}

package ringpoll

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

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
// A record committed with default flags wakes a ring's waiters when the
// reader had caught up, which is exactly when the reader is about to park
// or parked; a forced wake-up (Linger) wakes them always. Wait re-checks the
// ring after the poller's readiness was reset, so a record committed
// between the last read and the park is never missed.
//
// With Linger, the waiter also takes part in the producers' wake-up
// protocol (tlstap_reader in bpf/tlstap.bpf.c): producers wake it only
// when it declared itself parked. While records come rarely it parks as
// soon as the ring is empty, so each of them, and each of the few records
// of one request, wakes it at once. Once wake-ups come densely (load), it
// lingers a bounded time after the ring runs dry before parking again, so
// a burst of records costs its producers and the reader one wake-up per
// linger instead of one per record; while lingers keep finding records
// the linger grows, up to a bound, and it shrinks again when one finds
// none.
type Waiter struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// Set by Linger, then owned by the waiting goroutine.
	awake    *uint32  // the reader state's awake word, in a shared mapping
	timer    *os.File // a timerfd: Go's own timers sleep at least ~1 ms
	tfd      int
	first    time.Duration // the linger once wake-ups became dense
	most     time.Duration // the longest linger
	linger   time.Duration // the next linger; 0: park at once
	dense    int           // wake-ups from a park in a row, each after a short one
	parkedAt time.Time
	// DenseWakes and DenseGap; tests widen them.
	denseWakes int
	denseGap   time.Duration
	// onBusy (OnBusy) is told when the reader starts lingering (true)
	// and when it has then stayed parked for quiet (false); busy is the
	// last thing it was told.
	onBusy func(busy bool)
	busy   bool
	quiet  time.Duration
}

// Lingering starts after DenseWakes wake-ups from a park in a row each of
// which ended a park shorter than DenseGap; one park of DenseGap or more
// (traffic paused) starts the count over. One request (curl: about ten
// records within a millisecond or two) stays below it, so its records are
// each delivered at once; a steady load passes it within milliseconds.
const (
	DenseWakes = 16
	DenseGap   = time.Millisecond
)

// Quiet is how long the reader stays parked, once it was busy, before
// OnBusy is told the load is over. Much longer than DenseGap, so that the
// pauses within a load (a park ends the lingering after DenseGap) do not
// count as its end.
const Quiet = 250 * time.Millisecond

var errClosed = fmt.Errorf("ring wait: %w", os.ErrClosed)

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

// Linger makes the waiter follow the wake-up protocol of producers that
// decide, per record, whether to wake the reader (bpf/tlstap.bpf.c,
// tlstap_reader): state is a BPF_F_MMAPABLE array whose first value starts
// with the 32-bit word awake. While awake is 1 producers commit without a
// wake-up; Wait stores 0, a full barrier, before it checks the ring and
// parks, so a record committed while the reader was parked wakes it at
// once. While wake-ups are dense (DenseWakes, DenseGap) Wait first sleeps
// a linger and looks at the ring again before it parks: first, doubled
// after each linger that found records, up to most, and halved after one
// that found none. A record committed while the reader lingers waits at
// most most. Call Linger before the first Wait; without it, producers see
// awake 0 and wake the reader for every record.
func (w *Waiter) Linger(state *ebpf.Map, first, most time.Duration) error {
	if state.Type() != ebpf.Array || state.ValueSize() < 4 {
		return fmt.Errorf("reader state %v: want an array of at least 4-byte values", state)
	}
	if first <= 0 || most < first {
		return fmt.Errorf("linger %v up to %v: want 0 < first <= most", first, most)
	}
	mem, err := unix.Mmap(state.FD(), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map reader state (needs BPF_F_MMAPABLE): %w", err)
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		unix.Munmap(mem)
		return fmt.Errorf("timerfd: %w", err)
	}
	// Unmapped only once the waiter is unreachable: a Wait that Close
	// interrupted still stores to it on its way out.
	runtime.AddCleanup(w, func(m []byte) { unix.Munmap(m) }, mem)
	w.awake = (*uint32)(unsafe.Pointer(&mem[0]))
	w.timer = os.NewFile(uintptr(tfd), "tlstap ring linger timer")
	w.tfd = tfd
	w.first, w.most = first, most
	w.denseWakes, w.denseGap = DenseWakes, DenseGap
	w.quiet = Quiet
	return nil
}

// OnBusy has f called, on the waiting goroutine, when wake-ups become
// dense and the waiter starts lingering (f(true)), and when, after that,
// it stayed parked for Quiet with no record (f(false)), not when the next
// record wakes it: what f does (tlstap tls --realtime changes its threads'
// scheduling class) is then done before that record is read, not in its
// way. Call it after Linger, before the first Wait; without Linger f is
// never called.
func (w *Waiter) OnBusy(f func(busy bool)) { w.onBusy = f }

// Wait returns nil once rd has a record to read, os.ErrDeadlineExceeded
// at deadline (zero: none), or an error wrapping os.ErrClosed once Close
// was called. rd should have a deadline in the past, so that its reads
// return os.ErrDeadlineExceeded when the ring is empty instead of blocking.
// One goroutine at a time may wait.
func (w *Waiter) Wait(rd *ringbuf.Reader, deadline time.Time) error {
	if w.closed.Load() {
		return errClosed
	}
	if w.awake != nil {
		if w.linger > 0 {
			if err := w.sleep(w.linger, deadline); err != nil {
				return err
			}
			if rd.AvailableBytes() > 0 {
				// Records came while we lingered: the next linger may be
				// longer, which halves the wake-ups of a steady load.
				w.linger = min(2*w.linger, w.most)
				return nil
			}
			// None came: park, and linger less once woken again.
			w.linger = max(w.linger/2, w.first)
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return os.ErrDeadlineExceeded
			}
		}
		// Parked from here to the return. An atomic store is an XCHG on
		// amd64, a full barrier: the ring is checked below only after
		// producers can see it (the other half is ring_flags in
		// bpf/tlstap.bpf.c), so a record is either seen by that check or
		// its producer wakes us.
		atomic.StoreUint32(w.awake, 0)
		defer atomic.StoreUint32(w.awake, 1)
		w.parkedAt = time.Now()
	}
	err := w.park(rd, deadline)
	if err != nil && w.closed.Load() {
		// The poller's own "use of closed file" is not os.ErrClosed.
		return errClosed
	}
	if err == nil && w.awake != nil {
		w.woken()
	}
	return err
}

// park waits in the poller until rd has a record or deadline. While the
// waiter is busy, it first waits at most until it has been parked for
// quiet, and on that timeout tells onBusy the load is over and parks on.
func (w *Waiter) park(rd *ringbuf.Reader, deadline time.Time) error {
	for {
		d, quiet := deadline, false
		if w.busy {
			if q := w.parkedAt.Add(w.quiet); d.IsZero() || q.Before(d) {
				d, quiet = q, true
			}
		}
		err := w.f.SetReadDeadline(d)
		if err == nil {
			err = w.rc.Read(func(uintptr) bool { return rd.AvailableBytes() > 0 })
		}
		if !quiet || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		w.busy = false
		w.onBusy(false)
	}
}

// woken decides, after a park ended by a record, whether the next Wait
// lingers: only while wake-ups come densely. A paused stream (a long park)
// resets the linger, so the first records after a pause are delivered at
// once.
func (w *Waiter) woken() {
	if time.Since(w.parkedAt) >= w.denseGap {
		w.dense = 0
		w.linger = 0
		return
	}
	if w.dense < w.denseWakes {
		w.dense++
	}
	if w.dense >= w.denseWakes && w.linger == 0 {
		w.linger = w.first
		if w.onBusy != nil && !w.busy {
			w.busy = true
			w.onBusy(true)
		}
	}
}

// sleep parks the goroutine in the poller for d, or until deadline if that
// comes first.
func (w *Waiter) sleep(d time.Duration, deadline time.Time) error {
	if !deadline.IsZero() {
		d = min(d, time.Until(deadline))
	}
	if d <= 0 {
		return nil
	}
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	if err := unix.TimerfdSettime(w.tfd, 0, &its, nil); err != nil {
		if w.closed.Load() {
			return errClosed
		}
		return fmt.Errorf("arm linger timer: %w", err)
	}
	var expirations [8]byte
	if _, err := w.timer.Read(expirations[:]); err != nil {
		if w.closed.Load() {
			return errClosed
		}
		return fmt.Errorf("linger timer: %w", err)
	}
	return nil
}

// Close ends a Wait in progress and every later one; it is safe to call
// more than once and from any goroutine.
func (w *Waiter) Close() {
	w.closed.Store(true)
	w.f.Close()
	if w.timer != nil {
		w.timer.Close()
	}
}

package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture/procfs"
	"github.com/tlstap/tlstap/internal/capture/ringpoll"
)

// How a file was found.
const (
	// HowScan: mapped by a process running when the watcher started.
	HowScan = "running process"
	// HowExec: the program of a process that started later.
	HowExec = "process start"
	// HowMmap: a library a process mapped later.
	HowMmap = "library mapped"
)

// File is an executable file a process has mapped, seen for the first time.
type File struct {
	// PID is the process that mapped it.
	PID int
	// Path is its path in that process's mount namespace.
	Path string
	// HostPath opens it from tlstap's: /proc/PID/root/Path.
	HostPath string
	// How it was found: HowScan, HowExec or HowMmap.
	How string
	// Mapped is when the kernel reported the mapping (zero for HowScan).
	Mapped time.Time
}

// A Detector decides whether a new file carries something it probes.
//
// Detect is called once per file (by device and inode), from the
// watcher's goroutine, so it must not block for long. It returns true when
// it took the file; an error means the file looked like its kind but
// cannot be used (the watcher logs it, naming the file) and is also final.
type Detector interface {
	Detect(f File) (bool, error)
}

// MaxFiles bounds the set of files seen; when it is full it starts over,
// which costs another look at files already decided, nothing more.
const MaxFiles = 1 << 16

// Options configure a Watcher.
type Options struct {
	Detectors []Detector
	// Logger receives skipped files; nil means slog.Default().
	Logger *slog.Logger
}

// Stats are the watcher's counters.
type Stats struct {
	// Notices is how many process notices the kernel sent, Lost how many
	// it dropped because the ring was full.
	Notices, Lost uint64
	// Files is how many distinct files were looked at, Taken how many a
	// detector took.
	Files, Taken uint64
}

// Watcher reports new executable files to its detectors.
type Watcher struct {
	opts  Options
	objs  watchObjects
	links []link.Link
	rd    *ringbuf.Reader
	boot  time.Time // CLOCK_MONOTONIC's zero, in wall time

	seen    map[fileKey]bool // owned by Run's goroutine
	scanned chan struct{}    // closed when Run's first scan is done

	mu    sync.Mutex
	stats Stats
}

type fileKey struct {
	dev   string
	inode uint64
}

// New loads and attaches the watcher's BPF programs. Run starts watching.
func New(opts Options) (*Watcher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	spec, err := loadWatch()
	if err != nil {
		return nil, fmt.Errorf("parse embedded watcher BPF object: %w", err)
	}
	if err := spec.Variables["self"].Set(uint32(os.Getpid())); err != nil {
		return nil, err
	}
	w := &Watcher{opts: opts, seen: map[fileKey]bool{}, scanned: make(chan struct{}), boot: bootTime()}
	if err := spec.LoadAndAssign(&w.objs, nil); err != nil {
		return nil, fmt.Errorf("load watcher BPF programs: %w", err)
	}
	if err := w.attach(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Watcher) attach() error {
	p := &w.objs.watchPrograms
	for _, tp := range []struct {
		group, name string
		prog        *ebpf.Program
	}{
		{"syscalls", "sys_exit_mmap", p.TlstapSysExitMmap},
		{"syscalls", "sys_enter_mmap", p.TlstapSysEnterMmap},
		{"sched", "sched_process_exec", p.TlstapSchedProcessExec},
	} {
		l, err := link.Tracepoint(tp.group, tp.name, tp.prog, nil)
		if err != nil {
			return fmt.Errorf("attach tracepoint %s:%s: %w", tp.group, tp.name, err)
		}
		w.links = append(w.links, l)
	}
	var err error
	if w.rd, err = ringbuf.NewReader(w.objs.TlstapNotices); err != nil {
		return fmt.Errorf("open watcher ring buffer: %w", err)
	}
	return nil
}

// Close detaches the watcher. It is safe to call more than once.
func (w *Watcher) Close() error {
	for _, l := range slices.Backward(w.links) {
		l.Close()
	}
	w.links = nil
	var errs []error
	if w.rd != nil {
		errs = append(errs, w.rd.Close())
	}
	return errors.Join(append(errs, w.objs.Close())...)
}

// Scanned is closed once Run has looked at the processes running when it
// started; files found after that are reported with HowExec or HowMmap.
func (w *Watcher) Scanned() <-chan struct{} { return w.scanned }

// Stats returns the counters so far.
func (w *Watcher) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.stats
	var lost []uint64
	if w.objs.TlstapLost != nil && w.objs.TlstapLost.Lookup(uint32(0), &lost) == nil {
		for _, n := range lost {
			st.Lost += n
		}
	}
	return st
}

// Run scans the running processes, then reports files as processes map
// them until ctx is cancelled. It closes the watcher when it returns.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	// Parked in Go's poller rather than blocked in epoll_wait when the
	// poller takes the ring (see internal/capture/ringpoll).
	wait, err := ringpoll.New(w.objs.TlstapNotices)
	if err != nil {
		w.opts.Logger.Debug("watcher ring reads block a thread", "err", err)
	} else {
		defer wait.Close()
	}
	// With a waiter, cancelling closes only the waiter (the loop checks
	// ctx); the reader is closed by Close once the loop left it, as
	// ringbuf does not guard a reader closed under a running read.
	stop := context.AfterFunc(ctx, func() {
		if wait != nil {
			wait.Close()
			return
		}
		w.rd.Close()
	})
	defer stop()

	w.scanAll()
	close(w.scanned)
	var rec ringbuf.Record
	pending := map[int]notice{}
	for {
		if wait != nil && ctx.Err() != nil {
			return nil
		}
		// Drain what is queued, then look at each process once: a process
		// start maps many libraries in a row.
		var err error
		if wait != nil {
			err = w.readPolled(wait, &rec, len(pending) > 0)
		} else {
			w.rd.SetDeadline(time.Now().Add(2 * time.Millisecond))
			err = w.rd.ReadInto(&rec)
		}
		switch {
		case err == nil:
			n, ok := decodeNotice(rec.RawSample)
			if !ok {
				continue
			}
			w.count(func(s *Stats) { s.Notices++ })
			if prev, dup := pending[int(n.pid)]; !dup || prev.reason == reasonMmap {
				pending[int(n.pid)] = n
			}
			if len(pending) < 64 {
				continue
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			if len(pending) == 0 && wait == nil {
				w.rd.SetDeadline(time.Time{})
				if err := w.rd.ReadInto(&rec); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("read watcher ring: %w", err)
				}
				if n, ok := decodeNotice(rec.RawSample); ok {
					w.count(func(s *Stats) { s.Notices++ })
					pending[int(n.pid)] = n
				}
				continue
			}
		default:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read watcher ring: %w", err)
		}
		for pid, n := range pending {
			how := HowMmap
			if n.reason == reasonExec {
				how = HowExec
			}
			w.scan(pid, how, w.boot.Add(time.Duration(n.ts)))
			delete(pending, pid)
		}
	}
}

// readPolled reads the next notice without blocking a thread. With
// batching set (notices wait to be handled) it gives up with
// os.ErrDeadlineExceeded after 2 ms without a new one, as the blocking
// read's deadline does; otherwise it waits as long as it takes.
func (w *Watcher) readPolled(wait *ringpoll.Waiter, rec *ringbuf.Record, batching bool) error {
	w.rd.SetDeadline(time.Unix(1, 0)) // never block in the kernel
	for {
		err := w.rd.ReadInto(rec)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		var until time.Time
		if batching {
			until = time.Now().Add(2 * time.Millisecond)
		}
		if err := wait.Wait(w.rd, until); err != nil {
			return err
		}
	}
}

const (
	reasonExec = 0
	reasonMmap = 1
)

// notice mirrors struct notice in bpf/watch.bpf.c.
type notice struct {
	ts     uint64
	pid    uint32
	reason uint32
}

func decodeNotice(b []byte) (notice, bool) {
	if len(b) < 16 {
		return notice{}, false
	}
	le := binary.LittleEndian
	return notice{ts: le.Uint64(b), pid: le.Uint32(b[8:]), reason: le.Uint32(b[12:])}, true
}

func (w *Watcher) count(f func(*Stats)) {
	w.mu.Lock()
	f(&w.stats)
	w.mu.Unlock()
}

// scanAll looks at every running process.
func (w *Watcher) scanAll() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		w.opts.Logger.Warn("watcher: cannot list processes", "err", err)
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 && pid != self {
			w.scan(pid, HowScan, time.Time{})
		}
	}
}

// scan hands pid's executable mappings not seen before to the detectors.
// A process that exited is skipped: its files will show again if they
// matter.
func (w *Watcher) scan(pid int, how string, mapped time.Time) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	f, err := os.Open(filepath.Join(dir, "maps"))
	if err != nil {
		return
	}
	var files []File
	_ = procfs.ParseMaps(f, func(m procfs.Mapping) {
		k := fileKey{m.Dev, m.Inode}
		if !m.Exec || m.Deleted || w.seen[k] {
			return
		}
		if len(w.seen) >= MaxFiles {
			clear(w.seen)
		}
		w.seen[k] = true
		files = append(files, File{PID: pid, Path: m.Path, HostPath: filepath.Join(dir, "root", m.Path), How: how, Mapped: mapped})
	})
	f.Close()
	for _, file := range files {
		w.detect(file)
	}
}

func (w *Watcher) detect(f File) {
	w.count(func(s *Stats) { s.Files++ })
	for _, d := range w.opts.Detectors {
		took, err := d.Detect(f)
		if err != nil {
			w.opts.Logger.Warn("skipping file", "path", f.Path, "pid", f.PID, "err", err)
			return
		}
		if took {
			w.count(func(s *Stats) { s.Taken++ })
			return
		}
	}
}

// bootTime is the wall time of CLOCK_MONOTONIC's zero, which BPF's
// bpf_ktime_get_ns counts from.
func bootTime() time.Time {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

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
	"sync/atomic"
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
	// ExecOnly watches process starts only, not libraries mapped later:
	// for finding Go programs when the TLS libraries were named by hand.
	ExecOnly bool
}

// Stats are the watcher's counters.
type Stats struct {
	// Notices is how many process notices the kernel sent, Lost how many
	// it dropped because the ring was full.
	Notices, Lost uint64
	// Files is how many distinct files were looked at, Taken how many a
	// detector took.
	Files, Taken uint64
	// Inspections is how many times a process's /proc/PID/maps was read:
	// once per running process at the start, then once per process that
	// mapped a file the kernel side did not know yet.
	Inspections uint64
	// Known is how many times a file was handed to the kernel side as
	// looked at, so that later processes mapping it send no notice.
	Known uint64
}

// Watcher reports new executable files to its detectors.
type Watcher struct {
	opts  Options
	objs  watchObjects
	links []link.Link
	rd    *ringbuf.Reader
	boot  time.Time // CLOCK_MONOTONIC's zero, in wall time

	seen     map[fileKey]ident // owned by Scan's and then Run's goroutine
	scanOnce sync.Once
	scanned  chan struct{} // closed when the first scan is done
	reset    atomic.Bool   // set by Forget, acted on by Run
	// inspected, when set (by tests, before Run), learns each pid whose
	// maps are read.
	inspected func(pid int)

	mu     sync.Mutex // guards stats and closed, and the maps against Close
	stats  Stats
	closed bool
}

type fileKey struct {
	dev   string
	inode uint64
}

// ident tells apart the files that had one device and inode number over
// time (see struct file_key in bpf/watch.bpf.c). The zero ident is
// "unknown": the file was found in a maps file with no notice naming it.
type ident struct {
	gen       uint32
	ctimeSec  int64
	ctimeNsec uint32
}

func identOf(k watchFileKey) ident {
	return ident{gen: k.Gen, ctimeSec: k.CtimeSec, ctimeNsec: k.CtimeNsec}
}

// mapsDev is how /proc/PID/maps prints the kernel's dev_t d.
func mapsDev(d uint32) string {
	return fmt.Sprintf("%02x:%02x", d>>20, d&(1<<20-1))
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
	w := &Watcher{opts: opts, seen: map[fileKey]ident{}, scanned: make(chan struct{}), boot: bootTime()}
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
	type tracepoint struct {
		group, name string
		prog        *ebpf.Program
	}
	tps := []tracepoint{
		{"syscalls", "sys_exit_mmap", p.TlstapSysExitMmap},
		{"syscalls", "sys_enter_mmap", p.TlstapSysEnterMmap},
		{"sched", "sched_process_exec", p.TlstapSchedProcessExec},
	}
	if w.opts.ExecOnly {
		tps = tps[2:]
	}
	for _, tp := range tps {
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

// Close detaches the watcher. It is safe to call more than once, and
// while Forget or Stats run.
func (w *Watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
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

// Scanned is closed once the watcher has looked at the processes running
// when it started (Scan, or the start of Run); files found after that are
// reported with HowExec or HowMmap.
func (w *Watcher) Scanned() <-chan struct{} { return w.scanned }

// Scan looks at every running process once and returns when the detectors
// have seen each of them, so that a caller can have the programs running
// now attached before it says it is ready. Run does it first unless Scan
// did; the kernel side has been collecting notices since New, so nothing
// mapped between a Scan and Run is missed.
func (w *Watcher) Scan() {
	w.scanOnce.Do(func() {
		w.scanAll()
		close(w.scanned)
	})
}

// Forget makes the watcher look again at files it has looked at before,
// as processes map them from now on: a detector's answer depended on
// something that changed (the process filter, for Go programs). The
// kernel side forgets at once, so processes starting after Forget send
// notices; Run forgets its own set before it handles them, and the kernel
// side's again, in case Run marked a file known meanwhile.
func (w *Watcher) Forget() {
	w.reset.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.forgetKnown()
	}
}

// forget clears both sets of files looked at, in Run's goroutine.
func (w *Watcher) forget() {
	clear(w.seen)
	w.forgetKnown()
}

func (w *Watcher) forgetKnown() {
	var k watchFileKey
	var v uint8
	var keys []watchFileKey
	for it := w.objs.TlstapKnown.Iterate(); it.Next(&k, &v); {
		keys = append(keys, k)
	}
	for _, k := range keys {
		_ = w.objs.TlstapKnown.Delete(k) // an entry evicted meanwhile is gone already
	}
}

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

// Run scans the running processes (unless Scan did), then reports files as
// processes map them until ctx is cancelled. It closes the watcher when it returns.
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

	w.Scan()
	var rec ringbuf.Record
	pending := map[int]*pendingProc{}
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
			addPending(pending, n)
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
					addPending(pending, n)
				}
				continue
			}
		default:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read watcher ring: %w", err)
		}
		if w.reset.Swap(false) {
			w.forget()
		}
		for pid, p := range pending {
			how := HowMmap
			if p.first.reason == reasonExec {
				how = HowExec
			}
			if !w.knowAll(p) {
				w.scan(pid, how, w.boot.Add(time.Duration(p.first.ts)), p.files)
			}
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
	file   watchFileKey // Ino 0: the kernel could not resolve the file
}

// noticeSize is sizeof(struct notice).
const noticeSize = 48

func decodeNotice(b []byte) (notice, bool) {
	if len(b) < noticeSize {
		return notice{}, false
	}
	le := binary.LittleEndian
	return notice{ts: le.Uint64(b), pid: le.Uint32(b[8:]), reason: le.Uint32(b[12:]), file: watchFileKey{
		Ino:       le.Uint64(b[16:]),
		Dev:       le.Uint32(b[24:]),
		Gen:       le.Uint32(b[28:]),
		CtimeSec:  int64(le.Uint64(b[32:])),
		CtimeNsec: le.Uint32(b[40:]),
	}}, true
}

// maxPendingFiles bounds the files remembered per waiting process; a file
// past it is looked at all the same, only not marked known, so it costs
// one more notice later.
const maxPendingFiles = 64

// pendingProc is a process waiting to be looked at: its first notice (an
// exec if there was one, which names how its files were found) and the
// files the notices named.
type pendingProc struct {
	first notice
	files []watchFileKey
	// unresolved is set when a notice named no file, or more files than
	// fit in files: only the maps tell what the process mapped.
	unresolved bool
}

// knowAll marks the files p's notices named as known, without reading its
// maps, when they were all looked at already: found in another process's
// maps (the first scan, or before the kernel side learnt them: a process
// that exited too soon for its maps to be read leaves its files unknown).
// A file seen without an ident is taken to be the one named: an inode
// number is not reused while any process maps the file, so that is wrong
// only for a file deleted, and its number reused, after every process
// that mapped it exited.
func (w *Watcher) knowAll(p *pendingProc) bool {
	if p.unresolved {
		return false
	}
	for _, n := range p.files {
		prev, ok := w.seen[fileKey{mapsDev(n.Dev), n.Ino}]
		if !ok || (prev != ident{} && prev != identOf(n)) {
			return false
		}
	}
	for _, n := range p.files {
		w.seen[fileKey{mapsDev(n.Dev), n.Ino}] = identOf(n)
		w.markKnown(n)
	}
	return true
}

func (w *Watcher) markKnown(n watchFileKey) {
	if w.objs.TlstapKnown.Put(n, uint8(1)) == nil {
		w.count(func(s *Stats) { s.Known++ })
	}
}

func addPending(pending map[int]*pendingProc, n notice) {
	p := pending[int(n.pid)]
	if p == nil {
		p = &pendingProc{first: n}
		pending[int(n.pid)] = p
	} else if n.reason == reasonExec && p.first.reason == reasonMmap {
		p.first = n
	}
	switch {
	case n.file.Ino == 0 || len(p.files) >= maxPendingFiles:
		p.unresolved = true
	case !slices.Contains(p.files, n.file):
		p.files = append(p.files, n.file)
	}
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
			w.scan(pid, HowScan, time.Time{}, nil)
		}
	}
}

// scan hands pid's executable mappings not seen before to the detectors,
// then tells the kernel side which of named (the files pid's notices
// named) were among them, so that no process mapping them sends a notice
// again. A file named but not found executable in the maps (the process
// exec'd again or unmapped it meanwhile) was not looked at and stays
// unknown. A process that exited is skipped: its files will show again if
// they matter.
func (w *Watcher) scan(pid int, how string, mapped time.Time, named []watchFileKey) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	f, err := os.Open(filepath.Join(dir, "maps"))
	if err != nil {
		return
	}
	w.count(func(s *Stats) { s.Inspections++ })
	if w.inspected != nil {
		w.inspected(pid)
	}
	var files []File
	found := make([]bool, len(named))
	_ = procfs.ParseMaps(f, func(m procfs.Mapping) {
		if !m.Exec {
			return
		}
		k := fileKey{m.Dev, m.Inode}
		var id ident
		for i, n := range named {
			if n.Ino == m.Inode && mapsDev(n.Dev) == m.Dev {
				id, found[i] = identOf(n), true
			}
		}
		if m.Deleted {
			return // never offered, so looking again changes nothing
		}
		prev, seen := w.seen[k]
		// A known ident that differs is another file under a reused
		// device and inode number: look at it again.
		if seen && (id == ident{} || prev == ident{} || prev == id) {
			if prev == (ident{}) {
				w.seen[k] = id
			}
			return
		}
		if len(w.seen) >= MaxFiles {
			clear(w.seen)
		}
		w.seen[k] = id
		files = append(files, File{PID: pid, Path: m.Path, HostPath: filepath.Join(dir, "root", m.Path), How: how, Mapped: mapped})
	})
	f.Close()
	for _, file := range files {
		w.detect(file)
	}
	// Marked only now that the detectors have had the files: a process
	// mapping one meanwhile still sent a notice.
	for i, n := range named {
		if found[i] {
			w.markKnown(n)
		}
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

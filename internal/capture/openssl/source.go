package openssl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/ringpoll"
	"github.com/tlstap/tlstap/internal/capture/watch"
)

// DefaultRingBytes is the ring buffer size when Options.RingBytes is 0.
// 64 MiB: a 200 MB download captured on both sides lost bytes in 3 of 5
// runs with 16 MiB and none with 64 MiB (docs/benchmarks.md).
const DefaultRingBytes = 64 << 20

// slabBytes is the size of the buffers ring records are read into.
const slabBytes = 1 << 20

// ringLinger and ringLingerMost bound how long the ring reader stays awake
// after the ring ran dry before it parks, once records come densely
// (ringpoll.Waiter.Linger); while records come rarely it parks at once.
// While it is awake the probes commit records without waking it, so a
// steady load pays one wake-up per linger rather than one per call: the
// linger starts at ringLinger and doubles while each one finds records.
// The price is that a record committed while the reader lingers waits for
// the linger's end, at most ringLingerMost (under load; the 10 ms poll
// this replaced made every record wait up to 10 ms). A record committed
// while the reader is parked wakes it at once.
const (
	ringLinger     = 250 * time.Microsecond
	ringLingerMost = 2 * time.Millisecond
)

// Options configure a Source.
type Options struct {
	// Libs are the files to attach to: libssl shared objects, or binaries
	// with OpenSSL linked statically. Empty means discover (see doc.go).
	Libs []string
	// Filter selects the processes captured; it can change later with
	// SetFilter.
	Filter Filter
	// RingBytes is the kernel-to-user ring buffer size: a power of two, at
	// least one page. 0 means DefaultRingBytes.
	RingBytes int
	// Logger receives attach and loss notices; nil means slog.Default().
	Logger *slog.Logger
	// GoPrograms are Go executables whose crypto/tls is captured too.
	GoPrograms []string
	// WatchGo attaches to every Go program running now or started later
	// (see doc.go).
	WatchGo bool
	// NoWatch turns off attaching to libraries that processes map after
	// New (see doc.go); it is off already when Libs names files.
	NoWatch bool
	// Detectors are offered the files the watcher finds that are neither
	// OpenSSL nor GnuTLS (a Go crypto/tls detector, say), in order.
	Detectors []watch.Detector
	// OnBusy, if set, is called from Run when records start coming
	// densely (true) and when the ring has then been quiet for
	// ringpoll.Quiet (false); see ringpoll.Waiter.OnBusy.
	OnBusy func(busy bool)
}

// Source captures OpenSSL plaintext with eBPF. It implements capture.Source.
type Source struct {
	log   *slog.Logger
	objs  tlstapObjects
	rd    *ringbuf.Reader
	links []link.Link // tracepoints, shared by every library
	// watcher finds libraries mapped later, or with Options.Libs set only
	// the Go programs started later (nil then without Options.WatchGo).
	watcher *watch.Watcher
	bootNS  int64 // Unix time of CLOCK_MONOTONIC's zero
	onBusy  func(busy bool)

	mu   sync.Mutex // guards libs, gos and closed
	libs map[fileID]*attached
	gos  map[fileID]*attachedGo
	self fileID // tlstap's executable, never probed

	goWatch   *goWatcher // nil unless Options.WatchGo
	stopWatch sync.Once
	// closed is set once Close ran; later calls report ErrClosed.
	closed bool
	final  Stats // counters at Close

	filterMu sync.Mutex // serialises SetFilter
	gen      uint32     // active filter generation, under filterMu
	filter   Filter     // active filter, under filterMu

	filterSwitches uint32 // SetFilter's switches, under filterMu

	running   atomic.Bool
	received  atomic.Uint64
	malformed atomic.Uint64
}

type attached struct {
	Library
	links []link.Link
}

// ErrClosed is returned by methods of a closed Source.
var ErrClosed = errors.New("openssl capture source closed")

// New loads the BPF programs, attaches them and returns a Source ready to
// Run. Errors name what is missing (privileges, kernel features, libssl).
func New(opts Options) (*Source, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ring := opts.RingBytes
	if ring == 0 {
		ring = DefaultRingBytes
	}
	if ring < os.Getpagesize() || ring&(ring-1) != 0 {
		return nil, fmt.Errorf("ring size %d: must be a power of two and at least %d", ring, os.Getpagesize())
	}
	if err := checkPrerequisites(); err != nil {
		return nil, err
	}

	spec, err := loadTlstap()
	if err != nil {
		return nil, fmt.Errorf("parse embedded BPF object: %w", err)
	}
	spec.Maps["tlstap_events"].MaxEntries = uint32(ring)
	s := &Source{log: opts.Logger, libs: map[fileID]*attached{}, gos: map[fileID]*attachedGo{},
		self: selfID(), bootNS: bootOffset(), onBusy: opts.OnBusy}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, loadError(err)
	}
	if err := s.start(opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Source) start(opts Options) error {
	// The filter must be in place before the first probe can fire.
	if err := s.SetFilter(opts.Filter); err != nil {
		return err
	}
	var err error
	if s.rd, err = ringbuf.NewReader(s.objs.TlstapEvents); err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	// A failure only costs speed (see warmRing), so it is not fatal.
	t0 := time.Now()
	if pages, err := s.warmRing(); err != nil {
		s.log.Debug("ring buffer not warmed", "err", err)
	} else {
		s.log.Debug("ring buffer warmed", "pages", pages, "took", time.Since(t0))
	}
	if err := s.attachTracepoints(); err != nil {
		return err
	}

	paths, explicit := opts.Libs, len(opts.Libs) > 0
	if !explicit {
		paths = discover()
	}
	logged := make(map[fileID]bool)
	for _, p := range paths {
		lib, verOff, err := inspect(p)
		if err == nil {
			lib.Found = FoundOption
			if !explicit {
				lib.Found = FoundSearch
			}
			lib, err = s.attachLib(lib, verOff, time.Time{})
		}
		switch {
		case err == nil && logged[fileID{lib.Dev, lib.Inode}]:
			// Another name of a file already attached (symlinks, /lib vs /usr/lib).
		case err == nil:
			logged[fileID{lib.Dev, lib.Inode}] = true
			s.log.Info("attached to TLS library", "path", lib.Path, "kind", lib.Kind, "version", lib.Version, "symbols", lib.Symbols)
		case explicit:
			return err
		case !errors.Is(err, os.ErrNotExist):
			s.log.Debug("skipping library candidate", "path", p, "err", err)
		}
	}
	if len(s.Libraries()) == 0 && (explicit || opts.NoWatch) {
		return ErrNoLibrary
	}
	for _, p := range opts.GoPrograms {
		prog, err := s.AttachGo(p)
		if err != nil {
			return err
		}
		s.log.Info("attached to Go program", "path", prog.Path, "go", prog.GoVersion, "stripped", prog.Stripped)
	}
	// Loaded now so that processes starting from here on are queued for
	// Run, which drains the queue. Without library discovery, Go programs
	// are still found at their exec (ExecOnly), so no periodic /proc walk
	// is ever needed.
	switch libs := !explicit && !opts.NoWatch; {
	case libs || opts.WatchGo:
		var detectors []watch.Detector
		if libs {
			detectors = append([]watch.Detector{s}, opts.Detectors...)
		}
		if opts.WatchGo {
			detectors = append(detectors, goDetector{s})
		}
		var err error
		if s.watcher, err = watch.New(watch.Options{Detectors: detectors, Logger: s.log, ExecOnly: !libs}); err != nil {
			return err
		}
	}
	if opts.WatchGo {
		s.watchGo()
	}
	return nil
}

// warmRing has every page of the ring written once through the kernel's
// mapping (tlstap_ring_warm in bpf/tlstap.bpf.c says why: on a hypervisor
// with shadow page tables the first write to a page traps to the host, and
// that cost fell on the traced threads' calls) and through the reader's,
// by reading back the discarded records that did it. It returns the number
// of pages written and leaves the ring empty. It must run before anything
// that writes to the ring is attached.
func (s *Source) warmRing() (uint32, error) {
	pages, err := s.objs.TlstapRingWarm.Run(&ebpf.RunOptions{})
	if err != nil {
		return 0, err
	}
	s.rd.SetDeadline(time.Unix(1, 0))
	defer s.rd.SetDeadline(time.Time{})
	var rec ringbuf.Record
	for {
		// Discarded records are skipped inside ReadInto, and there is
		// nothing else to read.
		err := s.rd.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return pages, nil
		}
		if err != nil {
			return pages, fmt.Errorf("read back: %w", err)
		}
	}
}

// Watching is closed once the library watcher has looked at the processes
// running when Run started, so files mapped from then on are attached as
// they are mapped; it is closed at once when there is no watcher.
func (s *Source) Watching() <-chan struct{} {
	if s.watcher == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.watcher.Scanned()
}

// AttachRunning has the watcher look at every running process now and
// attach to the TLS libraries and Go programs it finds, and returns when
// it is done; without a watcher it returns at once. Run does the same
// when it starts, concurrently with its first records; a caller that
// says it is ready only after AttachRunning means that the programs
// already running are captured from then on, and that the first requests
// it is shown do not share the CPU with the scan (tens of ms with a
// hundred processes). Records of programs attached before Run wait in the
// ring.
func (s *Source) AttachRunning() {
	if s.watcher != nil {
		s.watcher.Scan()
	}
}

// Detect implements watch.Detector: it attaches to f when it carries
// OpenSSL or GnuTLS. Only dynamic symbols are read, so executables with
// OpenSSL linked in but not exported need Options.Libs.
func (s *Source) Detect(f watch.File) (bool, error) {
	lib, verOff, err := inspectELF(f.HostPath, false)
	switch {
	case errors.Is(err, errNotTLS):
		return false, nil
	case err != nil && lib.Kind == "":
		return false, nil // not an ELF file, or gone
	case err != nil:
		return false, err
	}
	s.mu.Lock()
	_, attached := s.libs[fileID{lib.Dev, lib.Inode}]
	s.mu.Unlock()
	if attached {
		return true, nil // offered again after the watcher forgot it (SetFilter)
	}
	lib.Found = fmt.Sprintf("%s (pid %d, %s)", f.How, f.PID, f.Path)
	lib, err = s.attachLib(lib, verOff, f.Mapped)
	if errors.Is(err, ErrClosed) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !f.Mapped.IsZero() {
		s.log.Info("attached to TLS library", "path", f.Path, "pid", f.PID, "kind", lib.Kind, "how", f.How,
			"after", time.Since(f.Mapped))
	}
	return true, nil
}

// Run delivers captured chunks to out until ctx is cancelled, then detaches
// everything (as Close); records still in the ring then are dropped (see
// Stats: Records against Received). It may be called once.
//
// A chunk's Data is never reused, as capture.Chunk requires; it shares a
// 1 MiB slab with neighbouring records, so a consumer that keeps a small
// piece for long should copy it.
func (s *Source) Run(ctx context.Context, out chan<- capture.Chunk) error {
	return s.RunKeep(ctx, out, nil)
}

// RunKeep implements capture.KeepRunner: Run, passing on only the chunks
// keep (nil: every chunk) returns true for.
func (s *Source) RunKeep(ctx context.Context, out chan<- capture.Chunk, keep func(*capture.Chunk) bool) error {
	return s.run(ctx, out, keep, nil)
}

// RunDrain implements capture.DrainRunner: RunKeep, calling drained each
// time the ring has no more records after some that keep saw.
func (s *Source) RunDrain(ctx context.Context, out chan<- capture.Chunk, keep func(*capture.Chunk) bool, drained func()) error {
	return s.run(ctx, out, keep, drained)
}

func (s *Source) run(ctx context.Context, out chan<- capture.Chunk, keep func(*capture.Chunk) bool, drained func()) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("openssl: Run called twice")
	}
	defer s.Close()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// Reads never block in the kernel when the poller takes the ring
	// (internal/capture/ringpoll); then closing the waiter ends a parked wait, as
	// closing the reader ends a blocked read otherwise.
	wait, err := ringpoll.New(s.objs.TlstapEvents)
	if err != nil {
		s.log.Debug("ring reads block a thread", "err", err)
	} else {
		s.rd.SetDeadline(time.Unix(1, 0)) // ReadInto returns os.ErrDeadlineExceeded once the ring is empty
		defer wait.Close()
		// Without it the probes wake the reader for every record, which is
		// correct but costs each captured call a wake-up (see ringLinger).
		if err := wait.Linger(s.objs.TlstapReader, ringLinger, ringLingerMost); err != nil {
			s.log.Debug("ring reader woken for every record", "err", err)
		} else if s.onBusy != nil {
			wait.OnBusy(s.onBusy)
		}
	}
	// Cancelling ends a parked wait by closing the waiter; the reader is
	// closed by Close, after the loop left it. Closing the reader here
	// would race with the loop's AvailableBytes and ReadInto, which
	// ringbuf does not guard. Without a waiter, closing the reader is what
	// ends a blocked read.
	stop := context.AfterFunc(ctx, func() {
		if wait != nil {
			wait.Close()
			return
		}
		s.rd.Close()
	})
	defer stop()
	if s.watcher != nil {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := s.watcher.Run(wctx); err != nil {
				s.log.Warn("library watcher stopped; libraries mapped from now on are not attached", "err", err)
			}
		}()
		defer func() { cancel(); <-done }()
	}

	var (
		rec    ringbuf.Record
		chunks []capture.Chunk
		slab   []byte
		handed bool // keep saw a chunk since drained was last called
	)
	for {
		// With a waiter the loop never blocks in the reader, so it looks
		// at ctx itself: a ring that never runs dry must not keep it.
		if wait != nil && ctx.Err() != nil {
			return nil
		}
		// Before every read, so before every wait: the end of a drain.
		if handed && s.rd.AvailableBytes() == 0 {
			handed = false
			drained()
		}
		// Records are read straight into a shared slab, which chunks then
		// alias: one copy out of the ring, one allocation per slab rather
		// than per record, and a chunk stays valid after the next send.
		if cap(slab)-len(slab) < headerSize+MaxData {
			slab = make([]byte, 0, slabBytes)
		}
		rec.RawSample = slab[len(slab):] // empty, with the free space as capacity
		// No poll timer: a parked reader is woken by the record's
		// producer, an awake one lingers at most ringLingerMost before
		// parking (see the emission contract in bpf/tlstap.bpf.c), so a
		// record never waits for a tick and an idle reader sleeps.
		if err := s.rd.ReadInto(&rec); err != nil {
			if wait != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				if err := wait.Wait(s.rd, time.Time{}); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("wait for ring buffer: %w", err)
				}
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read ring buffer: %w", err)
		}
		n := len(rec.RawSample)
		if n <= cap(slab)-len(slab) {
			// ReadInto only allocates when the space is too small, so the
			// record is in the slab: keep it.
			slab = slab[:len(slab)+n]
		}
		s.received.Add(1)
		raw := rec.RawSample[:n:n] // capped: appending to Data cannot reach the next record
		if exit, ok := exitRecord(raw, s.bootNS); ok {
			chunks = s.reap(exit, chunks[:0])
		} else {
			var err error
			if chunks, err = decodeRecord(raw, s.bootNS, chunks[:0]); err != nil {
				s.malformed.Add(1)
				s.log.Warn("malformed ring record", "err", err)
				continue
			}
		}
		handed = handed || (drained != nil && len(chunks) > 0)
		for i := range chunks {
			if keep != nil && !keep(&chunks[i]) {
				continue
			}
			select {
			case out <- chunks[i]:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// Close detaches all probes and frees the BPF objects. It is safe to call
// more than once and concurrently with Run.
func (s *Source) Close() error {
	// Before taking mu: the watcher attaches under it.
	s.stopWatch.Do(s.goWatch.stop)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for id, a := range s.libs {
		closeLinks(a.links)
		delete(s.libs, id)
	}
	for id, a := range s.gos {
		closeLinks(a.links)
		delete(s.gos, id)
	}
	closeLinks(s.links)
	s.links = nil
	if s.watcher != nil && !s.running.Load() {
		s.watcher.Close() // Run owns it once started
	}
	if s.objs.TlstapStats != nil {
		s.final = s.statsLocked()
	}
	var errs []error
	if s.rd != nil {
		errs = append(errs, s.rd.Close())
	}
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}

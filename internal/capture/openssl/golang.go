package openssl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture/gotls"
	"github.com/tlstap/tlstap/internal/capture/watch"
)

// GoProgram is a Go executable whose crypto/tls the probes are attached to.
type GoProgram struct {
	// Path is the path the file was found or given under.
	Path string
	// Dev and Inode identify the file, as for Library.
	Dev, Inode uint64
	// GoVersion is the toolchain that built it ("go1.26.8").
	GoVersion string
	// Stripped is set when the functions were found in .gopclntab.
	Stripped bool
}

// errSelf refuses to probe tlstap's own executable: tlstap never observes
// itself, and the probes would cost its own TLS a trap per call.
var errSelf = errors.New("tlstap's own executable is never captured")

// GoPrograms returns the Go executables the probes are attached to.
func (s *Source) GoPrograms() []GoProgram {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]GoProgram, 0, len(s.gos))
	for _, a := range s.gos {
		out = append(out, a.GoProgram)
	}
	slices.SortFunc(out, func(a, b GoProgram) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// AttachGo attaches the Go probes to the executable at path. Errors wrap
// gotls.ErrNotGo, gotls.ErrNoTLS or gotls.ErrUnsupported when the file is
// not one tlstap can capture; nothing is attached then.
func (s *Source) AttachGo(path string) (GoProgram, error) {
	id, err := statID(path)
	if err != nil {
		return GoProgram{}, err
	}
	if id == s.self {
		return GoProgram{}, fmt.Errorf("%s: %w", path, errSelf)
	}
	s.mu.Lock()
	if a, ok := s.gos[id]; ok {
		s.mu.Unlock()
		return a.GoProgram, nil
	}
	s.mu.Unlock()

	bin, err := gotls.Inspect(path)
	if err != nil {
		return GoProgram{}, fmt.Errorf("%s: %w", path, err)
	}
	prog := GoProgram{Path: path, Dev: id.dev, Inode: id.inode, GoVersion: bin.GoVersion, Stripped: bin.Stripped}
	links, err := s.attachGo(path, bin)
	if err != nil {
		return GoProgram{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.gos[id]; ok || s.closed {
		closeLinks(links) // attached concurrently, or closed meanwhile
		if s.closed {
			return GoProgram{}, ErrClosed
		}
		return s.gos[id].GoProgram, nil
	}
	s.gos[id] = &attachedGo{GoProgram: prog, links: links}
	return prog, nil
}

type attachedGo struct {
	GoProgram
	links []link.Link
}

// attachGo puts a uprobe on the bodies of Write, Read, clientHandshake and
// serverHandshake (the first instruction after the stack check, so a call
// whose stack must grow is not seen twice: see gotls.Func.Body) and on
// every RET of Read. Write is emitted from its one probe, so a Write costs
// one trap: the handshake probes are on the functions that run a
// handshake, not on handshakeContext, which every Write and Read calls.
// Never a uretprobe: see bpf/gotls.h.
func (s *Source) attachGo(path string, bin *gotls.Binary) ([]link.Link, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	p := &s.objs.tlstapPrograms
	type probe struct {
		fn   string
		off  uint64
		prog *ebpf.Program
	}
	var probes []probe
	// Returns first, entries after (see closeLinks).
	for _, r := range bin.Read.Rets {
		probes = append(probes, probe{"Read RET", r, p.TlstapGoReadReturn})
	}
	probes = append(probes,
		probe{"Read", bin.Read.Body, p.TlstapGoReadEnter},
		probe{"Write", bin.Write.Body, p.TlstapGoWriteEnter})
	for _, h := range []struct {
		fn string
		f  gotls.Func
	}{{"clientHandshake", bin.ClientHandshake}, {"serverHandshake", bin.ServerHandshake}} {
		if h.f.Entry != 0 {
			probes = append(probes, probe{h.fn, h.f.Body, p.TlstapGoHandshakeEnter})
		}
	}
	cookie := goCookie(bin)
	var links []link.Link
	for _, pr := range probes {
		l, err := ex.Uprobe("", pr.prog, &link.UprobeOptions{Address: pr.off, Cookie: cookie})
		if err != nil {
			closeLinks(links)
			return nil, fmt.Errorf("uprobe on crypto/tls.(*Conn).%s at %s+%#x: %w", pr.fn, path, pr.off, err)
		}
		links = append(links, l)
	}
	return links, nil
}

// goCookie is what the Go probes learn about the binary (bpf/gotls.h):
// bit 0 set when they may compare goroutines through the FS base, and in
// the bits above it the offset of tls.Conn's vers field plus one, 0 when
// the layout is not known.
func goCookie(bin *gotls.Binary) uint64 {
	var c uint64
	if bin.GAtFSMinus8 {
		c = 1
	}
	if bin.VersOffset >= 0 {
		c |= uint64(bin.VersOffset+1) << 1
	}
	return c
}

// goWatcher attaches to Go programs as they appear. It owns one goroutine,
// which Source.Close stops.
type goWatcher struct {
	cancel context.CancelFunc
	done   chan struct{}
	// rescan asks for a scan now: the filter changed, so processes it
	// left out before may be selected now.
	rescan chan struct{}
}

func (w *goWatcher) stop() {
	if w != nil {
		w.cancel()
		<-w.done
	}
}

// filterChanged asks for a rescan without waiting for it.
func (w *goWatcher) filterChanged() {
	if w == nil {
		return
	}
	select {
	case w.rescan <- struct{}{}:
	default:
	}
}

// watchGo scans running processes for Go executables now and again
// whenever the filter changes, attaching to each new one. Programs that
// start later reach goDetector at their exec through the watcher (in
// exec-only mode when the libraries were named by hand), so there is no
// periodic walk of /proc. Files are judged once per inode; one that is not
// a capturable Go program is warned about once (or, when it is no Go
// program at all, silently skipped).
func (s *Source) watchGo() {
	ctx, cancel := context.WithCancel(context.Background())
	w := &goWatcher{cancel: cancel, done: make(chan struct{}), rescan: make(chan struct{}, 1)}
	seen := map[fileID]bool{}
	s.scanGo(seen)
	go func() {
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.rescan:
			}
			s.scanGo(seen)
		}
	}()
	s.goWatch = w
}

// scanGo looks at the executable of every process the filter selects, once
// per inode. Processes the filter leaves out are not probed (uprobes trap
// in every process running the file) and are looked at again after the
// filter changes.
func (s *Source) scanGo(seen map[fileID]bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	s.filterMu.Lock()
	f := s.filter
	s.filterMu.Unlock()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !selects(f, pid) {
			continue
		}
		// Through /proc/PID/exe itself, so executables inside containers
		// and deleted-but-running files are reached too.
		exe := filepath.Join("/proc", e.Name(), "exe")
		id, err := statID(exe)
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		if id == s.self {
			continue
		}
		name, _ := os.Readlink(exe)
		prog, err := s.AttachGo(exe)
		switch {
		case err == nil:
			s.log.Info("attached to Go program", "path", name, "pid", pid, "go", prog.GoVersion, "stripped", prog.Stripped)
		case errors.Is(err, gotls.ErrNotGo), errors.Is(err, gotls.ErrNoTLS), errors.Is(err, os.ErrNotExist):
			// Nothing to capture.
		default:
			s.log.Warn("Go program not captured", "path", name, "pid", pid, "err", err)
		}
	}
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileID{st.Dev, st.Ino}, nil
}

// selfID identifies tlstap's own executable.
func selfID() fileID {
	id, _ := statID("/proc/self/exe")
	return id
}

// selects reports whether f selects the running process pid, as the probes
// would judge it.
func selects(f Filter, pid int) bool {
	if len(f.PIDs) > 0 && !slices.Contains(f.PIDs, uint32(pid)) {
		return false
	}
	if len(f.Comms) > 0 {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err != nil || !slices.ContainsFunc(f.Comms, func(c string) bool {
			return commKey(c) == commKey(strings.TrimSuffix(string(b), "\n"))
		}) {
			return false
		}
	}
	if len(f.UIDs) > 0 {
		uid, ok := realUID(pid)
		if !ok || !slices.Contains(f.UIDs, uid) {
			return false
		}
	}
	return true
}

// realUID reads the real uid, the one the probes filter on, from
// /proc/PID/status.
func realUID(pid int) (uint32, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			uid, err := strconv.ParseUint(f[0], 10, 32)
			return uint32(uid), err == nil
		}
	}
	return 0, false
}

// goDetector offers the executables the watcher finds to Go capture, so a
// Go program is probed as it starts (sched_process_exec). A file it turns
// down because the filter leaves its process out is judged again after a
// filter change: SetFilter makes the watcher forget the files it saw, and
// rescans the running processes.
type goDetector struct{ s *Source }

// Detect implements watch.Detector.
func (d goDetector) Detect(f watch.File) (bool, error) {
	if f.How == watch.HowMmap {
		return false, nil // a library mapped later: not a Go program
	}
	d.s.filterMu.Lock()
	flt := d.s.filter
	d.s.filterMu.Unlock()
	if !selects(flt, f.PID) {
		return false, nil
	}
	prog, err := d.s.AttachGo(f.HostPath)
	switch {
	case err == nil:
		d.s.log.Info("attached to Go program", "path", f.Path, "pid", f.PID, "go", prog.GoVersion, "stripped", prog.Stripped, "how", f.How)
		return true, nil
	case errors.Is(err, gotls.ErrNotGo), errors.Is(err, gotls.ErrNoTLS), errors.Is(err, os.ErrNotExist),
		errors.Is(err, errSelf), errors.Is(err, ErrClosed):
		return false, nil
	default:
		// The same warning as the scan's, whichever found the program.
		d.s.log.Warn("Go program not captured", "path", f.Path, "pid", f.PID, "err", err)
		return false, nil
	}
}

package watch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a Detector that takes nothing and remembers what it saw.
type recorder struct {
	mu    sync.Mutex
	files []File
}

func (r *recorder) Detect(f File) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files = append(r.files, f)
	return false, nil
}

func (r *recorder) find(path string) (File, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.files, func(f File) bool { return f.Path == path })
	if i < 0 {
		return File{}, false
	}
	return r.files[i], true
}

func startWatcher(t *testing.T, d Detector) *Watcher {
	t.Helper()
	return startWatcherWith(t, Options{Detectors: []Detector{d}}, nil)
}

// pidLog records the processes whose maps the watcher read.
type pidLog struct {
	mu   sync.Mutex
	pids map[int]int
}

func (l *pidLog) add(pid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pids == nil {
		l.pids = map[int]int{}
	}
	l.pids[pid]++
}

func (l *pidLog) count(pid int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pids[pid]
}

// startWatcherWith starts a watcher with opts; inspected, when set, is
// told each pid whose maps it reads.
func startWatcherWith(t *testing.T, opts Options, inspected *pidLog) *Watcher {
	t.Helper()
	testenv.RequireRoot(t, "loading the watcher's BPF programs")
	opts.Logger = slog.New(slog.DiscardHandler)
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if inspected != nil {
		w.inspected = inspected.add
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-w.Scanned():
	case <-time.After(time.Minute):
		t.Fatal("the first scan of running processes did not end")
	}
	return w
}

// copyFile copies src to a new file (a new inode) in dir.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func waitFile(t *testing.T, r *recorder, path string) File {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if f, ok := r.find(path); ok {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher never reported %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchExec(t *testing.T) {
	r := &recorder{}
	startWatcher(t, r)
	prog := copyFile(t, "/bin/sleep", t.TempDir())
	// It lives long enough for a loaded machine's watcher to read its maps.
	cmd := exec.Command(prog, "2")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	f := waitFile(t, r, prog)
	if f.How != HowExec || f.PID != cmd.Process.Pid || f.Mapped.IsZero() {
		t.Errorf("got %+v, want found at the start of pid %d", f, cmd.Process.Pid)
	}
	if d := time.Since(f.Mapped); d < 0 || d > time.Hour {
		t.Errorf("mapping time %v is not now", f.Mapped)
	}
}

func TestWatchMmap(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	startWatcher(t, r)
	lib := copyFile(t, "/usr/lib/x86_64-linux-gnu/libz.so.1", t.TempDir())
	// The library is loaded well after the start, so it is an mmap.
	cmd := exec.Command(py, "-c", "import ctypes, time; time.sleep(0.3); ctypes.CDLL('"+lib+"'); time.sleep(2)")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	f := waitFile(t, r, lib)
	if f.How != HowMmap || f.PID != cmd.Process.Pid {
		t.Errorf("got %+v, want found mapped by pid %d", f, cmd.Process.Pid)
	}
	// The process is gone, and its /proc/PID/root with it: check the form.
	if want := filepath.Join("/proc", strconv.Itoa(f.PID), "root", lib); f.HostPath != want {
		t.Errorf("host path %s, want %s", f.HostPath, want)
	}
}

// TestShortLivedProcesses: 1,000 processes that start and exit leave no
// state behind: files are looked at once whatever the number of processes
// mapping them, the processes after the first send (almost) no notice, and
// no thread stays marked as inside an mmap.
func TestShortLivedProcesses(t *testing.T) {
	r := &recorder{}
	w := startWatcher(t, r)
	prog := copyFile(t, "/bin/true", t.TempDir())
	for range 1000 {
		if err := exec.Command(prog).Run(); err != nil {
			t.Fatal(err)
		}
	}
	waitFile(t, r, prog)
	// Let the watcher drain its queue: Notices stops growing.
	for prev := uint64(0); ; time.Sleep(200 * time.Millisecond) {
		st := w.Stats()
		if st.Notices == prev {
			break
		}
		prev = st.Notices
	}
	st := w.Stats()
	r.mu.Lock()
	n := 0
	for _, f := range r.files {
		if f.Path == prog {
			n++
		}
	}
	r.mu.Unlock()
	if n != 1 {
		t.Errorf("%s was handed to the detector %d times, want once", prog, n)
	}
	// Until one of them lives long enough for its maps to be read, each
	// sends a notice; the rest, and other users' processes, far fewer than
	// one each.
	if st.Notices >= 1000 {
		t.Errorf("%d notices for 1000 processes of one known file: %+v", st.Notices, st)
	}
	var k uint32
	var v uint8
	left := 0
	for it := w.objs.TlstapMmaps.Iterate(); it.Next(&k, &v); {
		left++
	}
	// Other processes on the machine may be inside an mmap right now; a
	// leak would leave about one entry per process started here.
	if left > 16 {
		t.Errorf("%d threads still marked inside mmap after the processes exited", left)
	}
}

// known reports whether the kernel side holds path's file as looked at.
func known(t *testing.T, w *Watcher, path string) bool {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	var k watchFileKey
	var v uint8
	for it := w.objs.TlstapKnown.Iterate(); it.Next(&k, &v); {
		if k.Ino == st.Ino && uint64(k.Dev) == uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)) {
			return true
		}
	}
	return false
}

// waitOffered waits until ok accepts the files r was offered so far, and
// fails with why and w's counters after 20 s.
func waitOffered(t *testing.T, r *recorder, w *Watcher, why string, ok func([]File) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		done := ok(r.files)
		r.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v", why, w.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitKnown(t *testing.T, w *Watcher, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !known(t, w, path) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never became known to the kernel side: %+v", path, w.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKnownFilesNoInspection: once a program and its libraries have been
// looked at, 50 more processes running it cost no /proc read, while a new
// copy of the program (a new inode) is read at once.
func TestKnownFilesNoInspection(t *testing.T) {
	r := &recorder{}
	var log pidLog
	w := startWatcherWith(t, Options{Detectors: []Detector{r}}, &log)
	dir := t.TempDir()
	prog := copyFile(t, "/bin/sleep", dir)
	// Long enough for a loaded machine's watcher to read its maps.
	if err := exec.Command(prog, "1").Run(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, prog)
	waitKnown(t, w, prog)
	before := w.Stats()
	var pids []int
	for range 50 {
		cmd := exec.Command(prog, "0.05")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	// A process of the new copy is read: its inspection also shows that
	// notices up to then were handled.
	other := copyFile(t, "/bin/sleep", t.TempDir())
	cmd := exec.Command(other, "1")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, other)
	if log.count(cmd.Process.Pid) == 0 {
		t.Errorf("the new copy's process %d was not inspected", cmd.Process.Pid)
	}
	after := w.Stats()
	for _, pid := range pids {
		if n := log.count(pid); n > 0 {
			t.Errorf("process %d of a known program was inspected %d times", pid, n)
		}
	}
	// Other users' processes may add some; the 50 add none.
	if after.Inspections <= before.Inspections {
		t.Errorf("inspections did not grow for a new file: before %+v, after %+v", before, after)
	}
	t.Logf("before %+v, after %+v", before, after)
}

// TestRewrittenFile: a file rewritten in place keeps its device and inode
// number but is another program, and is looked at again.
func TestRewrittenFile(t *testing.T) {
	r := &recorder{}
	w := startWatcher(t, r)
	prog := copyFile(t, "/bin/sleep", t.TempDir())
	if err := exec.Command(prog, "1").Run(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, prog)
	waitKnown(t, w, prog)
	var before unix.Stat_t
	if err := unix.Stat(prog, &before); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a coarse clock still moves the change time
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, b, 0o755); err != nil { // O_TRUNC: the same inode
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(prog, &st); err != nil {
		t.Fatal(err)
	}
	if st.Ino != before.Ino {
		t.Fatalf("rewriting changed the inode (%d, %d)", before.Ino, st.Ino)
	}
	if err := exec.Command(prog, "1").Run(); err != nil {
		t.Fatal(err)
	}
	waitOffered(t, r, w, "the rewritten "+prog+" was not looked at again", func(fs []File) bool {
		n := 0
		for _, f := range fs {
			if f.Path == prog {
				n++
			}
		}
		return n >= 2
	})
}

// TestForget: after Forget, a program looked at before is offered again
// when a process runs it.
func TestForget(t *testing.T) {
	r := &recorder{}
	w := startWatcher(t, r)
	prog := copyFile(t, "/bin/sleep", t.TempDir())
	if err := exec.Command(prog, "1").Run(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, prog)
	waitKnown(t, w, prog)
	w.Forget()
	cmd := exec.Command(prog, "1")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	waitOffered(t, r, w, prog+" was not offered again after Forget", func(fs []File) bool {
		return slices.ContainsFunc(fs, func(f File) bool { return f.Path == prog && f.PID == cmd.Process.Pid })
	})
}

// TestExecOnly: with ExecOnly a program started later is found, and a
// library it maps later sends no notice.
func TestExecOnly(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	w := startWatcherWith(t, Options{Detectors: []Detector{r}, ExecOnly: true}, nil)
	if len(w.links) != 1 {
		t.Errorf("%d tracepoints attached, want the exec one only", len(w.links))
	}
	prog := copyFile(t, "/bin/sleep", t.TempDir())
	if err := exec.Command(prog, "1").Run(); err != nil {
		t.Fatal(err)
	}
	if f := waitFile(t, r, prog); f.How != HowExec {
		t.Errorf("got %+v, want found at a process start", f)
	}
	lib := copyFile(t, "/usr/lib/x86_64-linux-gnu/libz.so.1", t.TempDir())
	cmd := exec.Command(py, "-c", "import ctypes, time; time.sleep(0.3); ctypes.CDLL('"+lib+"'); time.sleep(1)")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	// The new copy below is a process start after the library's mapping:
	// once it is seen, the mapping's notice, had there been one, would
	// have been handled.
	marker := copyFile(t, "/bin/sleep", t.TempDir())
	if err := exec.Command(marker, "1").Run(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, marker)
	if f, ok := r.find(lib); ok {
		t.Errorf("a library mapped later was reported in exec-only mode: %+v", f)
	}
}

func FuzzDecodeNotice(f *testing.F) {
	f.Add(make([]byte, noticeSize))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := decodeNotice(b)
		if ok != (len(b) >= noticeSize) {
			t.Fatalf("decodeNotice(%d bytes) ok=%v", len(b), ok)
		}
		if !ok && n != (notice{}) {
			t.Fatalf("rejected record decoded as %+v", n)
		}
	})
}

// TestForgetWhileClosing: the capture calls Forget from SetFilter, which
// may race with Run's end closing the watcher.
func TestForgetWhileClosing(t *testing.T) {
	testenv.RequireRoot(t, "loading the watcher's BPF programs")
	w, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(w.Forget)
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	w.Forget()
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

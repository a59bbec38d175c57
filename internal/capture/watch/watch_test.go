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
	testenv.RequireRoot(t, "loading the watcher's BPF programs")
	w, err := New(Options{Detectors: []Detector{d}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
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
// mapping them, and no thread stays marked as inside an mmap.
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
	if st.Notices < 1000 {
		t.Errorf("%d notices for 1000 processes: %+v", st.Notices, st)
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

func FuzzDecodeNotice(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := decodeNotice(b)
		if ok != (len(b) >= 16) {
			t.Fatalf("decodeNotice(%d bytes) ok=%v", len(b), ok)
		}
		if !ok && n != (notice{}) {
			t.Fatalf("rejected record decoded as %+v", n)
		}
	})
}

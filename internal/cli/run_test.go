package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/testenv"
)

// tlstapCmd runs this test binary as tlstap (see TestMain).
func tlstapCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TLSTAP_TEST_MAIN=1")
	return cmd
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoExitDeliversToWebhook: 'demo --exit' delivers every event to a
// webhook before exiting, and its summary says so.
func TestDemoExitDeliversToWebhook(t *testing.T) {
	var n atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	defer hook.Close()
	code, _, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "none", "--listen", "", "--forward-url", hook.URL+"/hook")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if got := n.Load(); got != 48 {
		t.Errorf("webhook received %d of the demo's 48 events", got)
	}
	want := fmt.Sprintf("forward webhook %s/hook: 48 delivered, 0 failed, 0 dropped", hook.URL)
	if !strings.Contains(stderr, "delivered at exit: 48 delivered, 0 failed, 0 dropped") || !strings.Contains(stderr, want) {
		t.Errorf("summary missing or wrong, want %q:\n%s", want, stderr)
	}
}

// TestInterruptSaysShuttingDown: SIGINT stops a running tlstap with a
// word about it and the delivery summary, and exit code 0.
func TestInterruptSaysShuttingDown(t *testing.T) {
	var n atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	defer hook.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "demo", "--loop", "-o", "none", "--listen", "", "--forward-url", hook.URL)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for n.Load() < 10 {
		if ctx.Err() != nil {
			t.Fatalf("no deliveries: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{"tlstap: shutting down: capture stopped", "delivered at exit: ", fmt.Sprintf("forward webhook %s: %d delivered, 0 failed, 0 dropped", hook.URL, n.Load())} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

// TestReplayTornTail: a recording cut mid-record (what kill -9 of the
// recorder leaves) replays every complete record and says its tail was
// cut.
func TestReplayTornTail(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "http1.rec"))
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "cut.rec", good[:len(good)-4])
	code, stdout, stderr := runMain(t, append([]string{"replay", path, "--exit", "--speed", "0", "-o", "text"}, noListen...)...)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "tail was cut") || strings.Contains(stderr, "not a tlstap recording") {
		t.Errorf("stderr %q, want a word about the cut tail", stderr)
	}
	if !strings.Contains(stdout, "GET /api/items") {
		t.Errorf("complete records were not replayed:\n%s", stdout)
	}
}

// TestRecordPathChecks: --record refuses an existing file unless told to,
// and a bad path fails before capture or the server start.
func TestRecordPathChecks(t *testing.T) {
	existing := writeFile(t, "old.rec", []byte("keep me"))
	code, _, stderr := runMain(t, "tls", "--listen", "", "--record", existing)
	if code != 1 || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--record-overwrite") {
		t.Errorf("existing file: code %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("existing recording was changed: %q", b)
	}
	code, _, stderr = runMain(t, "tls", "--record", filepath.Join(t.TempDir(), "no", "such", "dir.rec"))
	if code != 1 || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("bad path: code %d, stderr %q", code, stderr)
	}
	for _, early := range []string{"capturing", "serving events"} {
		if strings.Contains(stderr, early) {
			t.Errorf("bad path reported after %q:\n%s", early, stderr)
		}
	}
}

// TestRecordSurvivesKill9 runs 'tlstap tls --record' for real, makes HTTPS
// requests with curl, kills tlstap with SIGKILL, and replays the
// recording: every request that completed more than a second before the
// kill must be in it.
func TestRecordSurvivesKill9(t *testing.T) {
	testenv.RequireRoot(t, "live capture (CAP_BPF, CAP_PERFMON)")
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer srv.Close()

	rec := filepath.Join(t.TempDir(), "kill.rec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "tls", "--listen", "", "-o", "none", "--comm", "curl", "--record", rec)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	for !strings.Contains(stderr.String(), "msg=capturing") {
		if ctx.Err() != nil {
			t.Fatalf("tlstap did not start capturing: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Requests for three seconds, each on its own path; the kill comes
	// while they are still running.
	type done struct {
		path string
		at   time.Time
	}
	var completed []done
	start := time.Now()
	for i := 0; time.Since(start) < 3*time.Second; i++ {
		path := fmt.Sprintf("/kill9-%d", i)
		out, err := exec.CommandContext(ctx, "curl", "-sS", "-k", "--http1.1", srv.URL+path).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		completed = append(completed, done{path, time.Now()})
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	killed = true
	cmd.Wait()

	// Replay what the killed process left.
	if _, err := os.Stat(rec); err != nil {
		t.Fatal(err)
	}
	code, stdout, rstderr := runMain(t, append([]string{"replay", rec, "--exit", "--speed", "0", "-o", "text"}, noListen...)...)
	if code != 0 {
		t.Fatalf("replay: exit code %d: %s", code, rstderr)
	}
	checked := 0
	for _, d := range completed {
		if killedAt.Sub(d.at) <= time.Second {
			continue
		}
		checked++
		if !strings.Contains(stdout, "GET "+d.path+" HTTP/1.1") {
			t.Errorf("request %s completed %v before the kill is not in the recording", d.path, killedAt.Sub(d.at).Round(time.Millisecond))
		}
	}
	if checked == 0 {
		t.Fatal("no request completed more than a second before the kill")
	}
	t.Logf("%d requests checked; replay said: %s", checked, strings.TrimSpace(rstderr))
}

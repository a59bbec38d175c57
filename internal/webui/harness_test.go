package webui_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tlstap/tlstap/internal/cli"
)

// TestMain lets tests run this test binary as tlstap itself
// (TLSTAP_TEST_MAIN=1), in a process of its own: for a live capture it must
// be a process apart from the browser and the peers it captures.
func TestMain(m *testing.M) {
	if os.Getenv("TLSTAP_TEST_MAIN") == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
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

// tlstap is a running `tlstap ARGS --listen 127.0.0.1:0`.
type tlstap struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	page   string // the printed web UI URL, token in the fragment
	base   string // https://HOST:PORT
	token  string
}

var pageURLRE = regexp.MustCompile(`web UI: (https://([^/]+))/#token=([A-Za-z0-9_%.-]+)\n`)

// startTlstap runs tlstap with args, on a free port and a state directory
// of its own, and waits until it printed the page's URL.
func startTlstap(t testing.TB, args ...string) *tlstap {
	t.Helper()
	args = append(args, "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "-o", "none")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TLSTAP_TEST_MAIN=1")
	tl := &tlstap{cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr, cmd.Stdout = tl.stderr, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("tlstap %s:\n%s", strings.Join(args, " "), tl.stderr.String())
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m := pageURLRE.FindStringSubmatch(tl.stderr.String()); m != nil {
			tl.page, tl.base, tl.token = m[1]+"/#token="+m[3], m[1], m[3]
			return tl
		}
		select {
		case <-done:
			t.Fatalf("tlstap exited before printing the web UI URL:\n%s", tl.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no web UI URL printed:\n%s", tl.stderr.String())
		}
	}
}

// artifacts is where screenshots go: $TLSTAP_WEBUI_ARTIFACTS or a
// temporary directory (kept only for the test's life).
func artifacts(t testing.TB) string {
	dir := os.Getenv("TLSTAP_WEBUI_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Debian chromium (as root it needs --no-sandbox)
// and returns a tab's context. The listener's certificate is self-signed,
// so certificate errors are ignored.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed (scripts/install-deps.sh): %v", err)
	}
	home, err := os.MkdirTemp("", "tlstap-webui-home-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.IgnoreCertErrors,
		// No UserDataDir: chromedp makes one and removes it (retrying)
		// once Chromium has exited; its helpers may still write there
		// when a test's TempDir cleanup would run.
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Env("HOME=" + home),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp does not know every event a newer Chromium sends
	// (dom.topLayerElementsUpdated); those complaints are noise.
	ctx, cancelT := chromedp.NewContext(actx, chromedp.WithErrorf(func(f string, args ...any) {
		if msg := fmt.Sprintf(f, args...); !strings.Contains(msg, "unhandled") {
			t.Logf("chromedp: %s", msg)
		}
	}))
	ctx, cancelTO := context.WithTimeout(ctx, 15*time.Minute)
	var mu sync.Mutex
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			t.Logf("page exception: %s", ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value))
			}
			t.Logf("console.%s: %s", ev.Type, strings.Join(parts, " "))
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelTO()
		cancelT()
		cancelA()
		// Best effort, like chromedp's own profile directory: a helper
		// process may outlive the browser by a moment.
		for range 20 {
			if os.RemoveAll(home) == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return ctx
}

// run runs chromedp actions, failing the test on error.
func run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) into out.
func eval(t testing.TB, ctx context.Context, expr string, out any) {
	t.Helper()
	run(t, ctx, expr, chromedp.Evaluate(expr, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// pageRow is what tlstapUI.rows() reports for one visible row.
type pageRow struct {
	ID         int    `json:"id"`
	Kind       string `json:"kind"`
	Method     string `json:"method"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	Status     int    `json:"status"`
	Protocol   string `json:"protocol"`
	PID        int    `json:"pid"`
	Comm       string `json:"comm"`
	Req        uint64 `json:"req"`
	Resp       uint64 `json:"resp"`
	RequestSeq uint64 `json:"requestSeq"`
	WS         int    `json:"ws"`
}

// waitRows polls the page until ok accepts its visible rows.
func waitRows(t testing.TB, ctx context.Context, what string, ok func([]pageRow) bool) []pageRow {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var rows []pageRow
	for {
		rows = nil
		eval(t, ctx, `window.tlstapUI ? window.tlstapUI.rows() : []`, &rows)
		if ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			var conn string
			eval(t, ctx, `document.body.dataset.conn || ""`, &conn)
			t.Fatalf("%s: not there after 2 minutes (connection %q); rows: %+v", what, conn, rows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves the page as NAME.png among the artifacts.
func screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	run(t, ctx, "screenshot", chromedp.FullScreenshot(&png, 100))
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// text returns the text content of the first element matching sel.
func text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	eval(t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, sel), &s)
	return s
}

// setInput replaces an input's value as typing would (an input event),
// then presses Enter in it.
func setInput(t testing.TB, ctx context.Context, sel, value string) {
	t.Helper()
	var ok bool
	eval(t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.focus(); e.value = %q; e.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`, sel, value), &ok)
	if !ok {
		t.Fatalf("no input %s", sel)
	}
	run(t, ctx, "Enter in "+sel, chromedp.SendKeys(sel, "\r", chromedp.ByQuery))
}

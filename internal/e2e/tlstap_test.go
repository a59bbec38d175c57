package e2e

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/testenv"
)

// buildTlstap builds the tlstap binary into dir, as a user runs it.
func buildTlstap(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tlstap")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tlstap/tlstap/cmd/tlstap").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// tapProc is a tlstap binary a test runs, its standard error kept.
type tapProc struct {
	*exec.Cmd
	Stderr  testenv.Buffer
	done    chan error
	stopped bool
}

// startTap starts cmd, whose Stdout the caller set; a cleanup kills it if
// the test ends before stop.
func startTap(t *testing.T, cmd *exec.Cmd) *tapProc {
	t.Helper()
	p := &tapProc{Cmd: cmd, done: make(chan error, 1)}
	cmd.Stderr = &p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if !p.stopped {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop ends tlstap as a user does, with SIGINT, and reports an unclean
// exit; one that does not stop within a minute gets SIGQUIT, which prints
// its goroutines, and fails the test.
func (p *tapProc) stop(t *testing.T) {
	t.Helper()
	p.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		p.stopped = true
		if err != nil {
			t.Errorf("tlstap exited: %v\n%s", err, p.Stderr.String())
		}
	case <-time.After(60 * time.Second):
		p.Process.Signal(syscall.SIGQUIT)
		<-p.done
		p.stopped = true
		t.Fatalf("tlstap did not stop on SIGINT:\n%s", p.Stderr.String())
	}
}

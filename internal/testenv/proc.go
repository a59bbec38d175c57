package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartTimeout bounds how long helpers wait for a program to come up.
const StartTimeout = 15 * time.Second

// Proc is a program started by a helper. It is killed at test cleanup.
type Proc struct {
	Cmd *exec.Cmd
	// Stdin is the program's standard input.
	Stdin io.WriteCloser
	out   Buffer
	done  chan struct{}
	err   error
}

// Start runs name with args, collecting stdout and stderr together.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartCmd(t, exec.Command(name, args...))
}

// StartCmd starts cmd, whose Stdin, Stdout and Stderr must be unset, as
// Start does; use it to set credentials or the environment.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	var err error
	if p.Stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stdin.Close()
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// PID is the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Output is everything the program wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// WaitOutput waits until the program's output contains s.
func (p *Proc) WaitOutput(ctx context.Context, s string) error {
	for !strings.Contains(p.Output(), s) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in output %q: %w", s, p.Output(), ctx.Err())
		case <-p.done:
			if strings.Contains(p.Output(), s) {
				return nil
			}
			return fmt.Errorf("program exited (%v) before writing %q; output %q", p.err, s, p.Output())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Wait waits for the program to exit and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Run runs name with args to completion and returns its stdout; it fails
// the test, with stderr, if the program fails.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*StartTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testenv: %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

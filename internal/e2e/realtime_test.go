package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/sched"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestRealtimeLive: `tlstap tls --realtime` runs every one of its threads
// SCHED_FIFO at sched.Priority, those the runtime created while it
// captured included, and still captures: curl's request and response reach
// standard output.
func TestRealtimeLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	dir := t.TempDir()
	tlstap := filepath.Join(dir, "tlstap")
	if out, err := exec.Command("go", "build", "-o", tlstap, "github.com/tlstap/tlstap/cmd/tlstap").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var nonce [6]byte
	rand.Read(nonce[:])
	prefix := "/rt-" + hex.EncodeToString(nonce[:])
	nginx := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{prefix[1:] + "/f.txt": []byte("realtime body\n")}})

	listen := testenv.FreePort(t, testenv.IPv4)
	var stdout, stderr testenv.Buffer
	tap := exec.Command(tlstap, "tls", "--realtime", "-o", "json", "--listen", listen.String(), "--state-dir", filepath.Join(dir, "state"))
	tap.Stdout, tap.Stderr = &stdout, &stderr
	if err := tap.Start(); err != nil {
		t.Fatal(err)
	}
	tapDone := make(chan error, 1)
	go func() { tapDone <- tap.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			tap.Process.Kill()
			<-tapDone
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testenv.WaitListening(ctx, listen); err != nil {
		t.Fatalf("tlstap did not start: %v\n%s", err, stderr.String())
	}

	for i := range 3 {
		out, err := exec.CommandContext(ctx, "curl", "-sSk", nginx.URL(prefix+"/f.txt?i="+strconv.Itoa(i))).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
	}
	for ctx.Err() == nil && strings.Count(stdout.String(), prefix+"/f.txt?i=2") < 2 {
		time.Sleep(50 * time.Millisecond)
	}

	// Checked after the capture ran, so threads the runtime added for it
	// are among those listed.
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(tap.Process.Pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		policy, prio, err := sched.Policy(tid)
		if err != nil {
			t.Errorf("thread %d: %v", tid, err)
		} else if policy != unix.SCHED_FIFO || prio != sched.Priority {
			t.Errorf("thread %d: policy %d priority %d, want SCHED_FIFO (%d) at %d", tid, policy, prio, unix.SCHED_FIFO, sched.Priority)
		}
	}
	t.Logf("%d threads", len(ents))

	tap.Process.Signal(syscall.SIGINT)
	select {
	case err := <-tapDone:
		stopped = true
		if err != nil {
			t.Errorf("tlstap exited: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("tlstap did not stop on SIGINT:\n%s", stderr.String())
	}
	for i := range 3 {
		if n := strings.Count(stdout.String(), prefix+"/f.txt?i="+strconv.Itoa(i)); n < 2 {
			t.Errorf("request %d: on standard output %d times, want its request and response", i, n)
		}
	}
}

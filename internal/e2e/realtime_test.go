package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/sched"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestRealtimeLive: `tlstap tls` (run.realtime is on by default) runs every
// one of its threads SCHED_FIFO at sched.Priority while traffic is sparse,
// those the runtime created while it captured included, and still
// captures: curl's request and response reach standard output. Under load
// (h2load) its threads go back to the fair class, and once the load is
// over, to SCHED_FIFO again. With --realtime=false every thread stays in
// the fair class.
func TestRealtimeLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	t.Run("default", func(t *testing.T) { testRealtimeLive(t, true) })
	t.Run("off", func(t *testing.T) { testRealtimeLive(t, false, "--realtime=false") })
}

func testRealtimeLive(t *testing.T, realtime bool, flags ...string) {
	dir := t.TempDir()
	tlstap := buildTlstap(t, dir)
	var nonce [6]byte
	rand.Read(nonce[:])
	prefix := "/rt-" + hex.EncodeToString(nonce[:])
	nginx := testenv.StartNginx(t, testenv.NginxConfig{HTTP2: true, Files: map[string][]byte{prefix[1:] + "/f.txt": []byte("realtime body\n")}})

	listen := testenv.FreePort(t, testenv.IPv4)
	var stdout testenv.Buffer
	cmd := exec.Command(tlstap, append([]string{"tls", "-o", "json", "--listen", listen.String(), "--state-dir", filepath.Join(dir, "state"),
		"--tls=false", "--auth", "none"}, flags...)...) // loopback only: /metrics read below with a plain GET
	cmd.Stdout = &stdout
	tap := startTap(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := testenv.WaitListening(ctx, listen); err != nil {
		t.Fatalf("tlstap did not start: %v\n%s", err, tap.Stderr.String())
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
	wantPolicy, wantPrio, wantMetric := unix.SCHED_FIFO, sched.Priority, "1"
	if !realtime {
		wantPolicy, wantPrio, wantMetric = unix.SCHED_NORMAL, 0, "0"
	}
	allInClass := func() []string {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(tap.Process.Pid) + "/task")
		if err != nil {
			t.Fatal(err)
		}
		var wrong []string
		for _, e := range ents {
			tid, _ := strconv.Atoi(e.Name())
			policy, prio, err := sched.Policy(tid)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				wrong = append(wrong, fmt.Sprintf("thread %d: %v", tid, err))
			} else if err == nil && (policy != wantPolicy || prio != wantPrio) {
				wrong = append(wrong, fmt.Sprintf("thread %d: policy %d priority %d, want policy %d at %d",
					tid, policy, prio, wantPolicy, wantPrio))
			}
		}
		return wrong
	}
	metric := func(name string) string {
		t.Helper()
		resp, err := http.Get("http://" + listen.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no %s in /metrics", name)
		}
		return string(m[1])
	}
	// The governor may have seen the start-up or the first events as a
	// heavy quarter of a second: it comes back within one light one.
	var wrong []string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if wrong = allInClass(); len(wrong) == 0 && metric("tlstap_realtime") == wantMetric {
			break
		}
	}
	for _, w := range wrong {
		t.Errorf("sparse traffic: %s", w)
	}
	if v := metric("tlstap_realtime"); v != wantMetric {
		t.Errorf("sparse traffic: tlstap_realtime %s, want %s", v, wantMetric)
	}
	captured := func() {
		tap.stop(t)
		for i := range 3 {
			if n := strings.Count(stdout.String(), prefix+"/f.txt?i="+strconv.Itoa(i)); n < 2 {
				t.Errorf("request %d: on standard output %d times, want its request and response", i, n)
			}
		}
	}
	if !realtime {
		captured()
		return
	}

	// Load: the main thread leaves SCHED_FIFO while it lasts.
	load := exec.CommandContext(ctx, "h2load", "-n", "5000", "-c", "10", "-t", "1", nginx.URL(prefix+"/f.txt?load"))
	var loadOut testenv.Buffer
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- load.Wait() }()
	fair := false
	for waiting := true; waiting; {
		select {
		case err := <-loadDone:
			if err != nil {
				t.Fatalf("h2load: %v\n%s", err, loadOut.String())
			}
			waiting = false
		case <-time.After(5 * time.Millisecond):
			if p, _, err := sched.Policy(tap.Process.Pid); err == nil && p == unix.SCHED_NORMAL {
				fair = true
			}
		}
	}
	if !fair {
		t.Errorf("tlstap stayed SCHED_FIFO through h2load's 5,000 requests")
	}
	// And back once the ring is quiet.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if wrong = allInClass(); len(wrong) == 0 && metric("tlstap_realtime") == "1" {
			break
		}
	}
	for _, w := range wrong {
		t.Errorf("after the load: %s", w)
	}
	if v := metric("tlstap_realtime"); v != "1" {
		t.Errorf("after the load: tlstap_realtime %s, want 1", v)
	}
	if v, _ := strconv.Atoi(metric("tlstap_sched_switches_total")); v < 2 {
		t.Errorf("tlstap_sched_switches_total %d after a load came and went, want at least 2", v)
	}
	captured()
}

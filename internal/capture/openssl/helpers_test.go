package openssl

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// waitTimeout bounds how long a test waits for chunks that must come; it is
// a deadline for failure, not a timing assertion.
const waitTimeout = 20 * time.Second

// capturer runs a Source for one test and keeps every chunk it delivers.
type capturer struct {
	t      *testing.T
	src    *Source
	mu     sync.Mutex
	chunks []capture.Chunk
	done   chan error
	cancel context.CancelFunc
}

func newCapturer(t *testing.T, opts Options) *capturer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	src, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return &capturer{t: t, src: src}
}

func startCapture(t *testing.T, opts Options) *capturer {
	t.Helper()
	c := newCapturer(t, opts)
	c.run()
	return c
}

// run starts delivering chunks; tests that want the ring to fill call it late.
func (c *capturer) run() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan error, 1)
	out := make(chan capture.Chunk, 256)
	go func() { c.done <- c.src.Run(ctx, out) }()
	go func() {
		for {
			select {
			case ch := <-out:
				ch.Data = bytes.Clone(ch.Data)
				c.mu.Lock()
				c.chunks = append(c.chunks, ch)
				c.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	c.t.Cleanup(c.stop)
}

func (c *capturer) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("Run: %v", err)
	}
	c.cancel = nil
}

func (c *capturer) snapshot() []capture.Chunk {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capture.Chunk(nil), c.chunks...)
}

// waitFor waits until cond holds over the chunks of pid (all chunks if pid
// is -1).
func (c *capturer) waitFor(what string, pid int, cond func([]capture.Chunk) bool) []capture.Chunk {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := c.snapshot()
		if pid != -1 {
			got = ofPID(got, pid)
		}
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("pid %d: %s never happened; %d chunks:\n%s\nstats %+v", pid, what, len(got), summary(got), c.src.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitClosed waits until pid's connections have all been reported closed
// and returns pid's chunks.
func (c *capturer) waitClosed(pid int) []capture.Chunk {
	c.t.Helper()
	return c.waitFor("close of every connection", pid, func(cs []capture.Chunk) bool {
		open := map[uint64]bool{}
		for _, ch := range cs {
			open[ch.Conn] = ch.Kind != capture.Close
		}
		for _, o := range open {
			if o {
				return false
			}
		}
		return len(open) > 0
	})
}

func ofPID(cs []capture.Chunk, pid int) []capture.Chunk {
	var out []capture.Chunk
	for _, c := range cs {
		if int(c.PID) == pid {
			out = append(out, c)
		}
	}
	return out
}

func data(cs []capture.Chunk, dir capture.Direction) []capture.Chunk {
	var out []capture.Chunk
	for _, c := range cs {
		if c.Kind == capture.Data && c.Dir == dir {
			out = append(out, c)
		}
	}
	return out
}

func concat(cs []capture.Chunk, dir capture.Direction) []byte {
	var b []byte
	for _, c := range data(cs, dir) {
		b = append(b, c.Data...)
	}
	return b
}

func summary(cs []capture.Chunk) string {
	var b strings.Builder
	for i, c := range cs {
		if i == 40 {
			fmt.Fprintf(&b, "... %d more\n", len(cs)-i)
			break
		}
		d := c.Data
		if len(d) > 60 {
			d = d[:60]
		}
		fmt.Fprintf(&b, "  kind=%d dir=%s pid=%d tid=%d comm=%s fd=%d conn=%#x %s->%s v=%#x lost=%d len=%d %q\n",
			c.Kind, c.Dir, c.PID, c.TID, c.Comm, c.FD, c.Conn, c.Local, c.Remote, c.TLSVersion, c.LostBytes, len(c.Data), d)
	}
	return b.String()
}

// checkMeta checks what every data chunk of one side of a connection must
// carry: process identity, the tuple, the TLS version and the fd. An
// invalid local or remote is not checked.
func checkMeta(t *testing.T, cs []capture.Chunk, pid int, comm string, local, remote netip.AddrPort, version uint16) {
	t.Helper()
	if len(cs) == 0 {
		t.Fatalf("pid %d: no chunks", pid)
	}
	for _, c := range cs {
		if c.Kind != capture.Data {
			continue
		}
		if int(c.PID) != pid || c.Comm != comm || c.TID == 0 {
			t.Errorf("chunk pid=%d tid=%d comm=%q, want pid %d comm %q", c.PID, c.TID, c.Comm, pid, comm)
		}
		if local.IsValid() && c.Local != local || remote.IsValid() && c.Remote != remote {
			t.Errorf("pid %d (%s): tuple %s -> %s, want %s -> %s", pid, comm, c.Local, c.Remote, local, remote)
		}
		if c.FD < 0 {
			t.Errorf("pid %d (%s): fd unknown", pid, comm)
		}
		if c.TLSVersion != version {
			t.Errorf("pid %d (%s): TLS version %#x, want %#x", pid, comm, c.TLSVersion, version)
		}
		if d := time.Since(time.Unix(0, c.Time)); d < 0 || d > time.Hour {
			t.Errorf("chunk time %v is not now", time.Unix(0, c.Time))
		}
	}
}

// connectedOpenSSL starts an openssl s_server and s_client on loopback and
// returns once line, sent by the client, has reached the server: the
// connection is established before any capture starts.
func connectedOpenSSL(t *testing.T, line string) (*testenv.Server, *testenv.Proc) {
	t.Helper()
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	cli := testenv.StartOpenSSLClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cli.Stdin.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, line); err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// body returns n deterministic pseudo-random bytes.
func body(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// curl runs curl and returns its pid; args come before the URL.
func curl(t *testing.T, url string, args ...string) (pid int, out string) {
	t.Helper()
	return curlAs(t, nil, url, args...)
}

// curlAs is curl run with the given credentials (nil: tlstap's).
func curlAs(t *testing.T, cred *syscall.Credential, url string, args ...string) (pid int, out string) {
	t.Helper()
	cmd := exec.Command("curl", append([]string{"-sS", "-k", "-A", "tlstap-test", "-o", "/dev/null", "-w", "%{local_port} %{http_version} %{size_download}"}, append(args, url)...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	p := testenv.StartCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, p.Output())
	}
	return p.PID(), p.Output()
}

// clientPort parses the local port curl's -w printed first.
func clientPort(t *testing.T, out string) uint16 {
	t.Helper()
	var port uint16
	if _, err := fmt.Sscan(out, &port); err != nil {
		t.Fatalf("curl -w output %q: %v", out, err)
	}
	return port
}

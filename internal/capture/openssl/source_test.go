package openssl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/watch"
	"github.com/tlstap/tlstap/internal/testenv"
)

// privateCopy copies the system's libssl and libcrypto into a new
// directory: new inodes, which no probe is attached to yet.
func privateCopy(t *testing.T) (dir, libssl string) {
	t.Helper()
	dir = t.TempDir()
	sys := systemLibssl(t)
	for _, name := range []string{"libssl.so.3", "libcrypto.so.3"} {
		src, err := os.Open(filepath.Join(filepath.Dir(sys), name))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, "libssl.so.3")
}

// startWatching starts a capture with the watcher and waits until its
// first scan of running processes is done, so that what the test starts
// next is seen as it maps its libraries.
func startWatching(t *testing.T) *capturer {
	t.Helper()
	c := startCapture(t, Options{})
	select {
	case <-c.src.Watching():
	case <-time.After(2 * time.Minute):
		t.Fatal("the watcher's first scan did not end")
	}
	return c
}

// byWatcher reports whether the watcher found lib (a process start, a
// mapping, or the processes running when it started: a process start and
// its mappings are looked at together).
func byWatcher(lib Library) bool {
	return slices.ContainsFunc([]string{watch.HowExec, watch.HowMmap, watch.HowScan},
		func(how string) bool { return strings.HasPrefix(lib.Found, how) })
}

// attachedAs waits for the file at path (by inode) to be attached and
// returns it.
func attachedAs(t *testing.T, c *capturer, path string) Library {
	t.Helper()
	want, _, err := inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.src.Libraries() {
		if l.Dev == want.Dev && l.Inode == want.Inode {
			return l
		}
	}
	t.Fatalf("%s is not attached; attached: %+v", path, c.src.Libraries())
	return Library{}
}

// TestWatchLoadedLater: a Python process that loads a private libssl
// (LD_LIBRARY_PATH) after the capture started is captured, with no flags.
func TestWatchLoadedLater(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("private libssl body\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"p.txt": payload}})
	dir, lib := privateCopy(t)
	c := startWatching(t)

	// ssl is imported (libssl mapped) first; the request comes 300 ms later.
	script := `import ssl, time, urllib.request
time.sleep(0.3)
ctx = ssl._create_unverified_context()
print(urllib.request.urlopen("` + srv.URL("/p.txt") + `", context=ctx).read().decode(), end="")
`
	cmd := exec.Command(testenv.Python(t), "-c", script)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
	p := runGnuTLSProgram(t, cmd)
	if p.Output() != string(payload) {
		t.Fatalf("python printed %q, want %q", p.Output(), payload)
	}
	cs := c.waitFor("the response", p.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), payload)
	})
	if w := concat(cs, capture.Write); !bytes.HasPrefix(w, []byte("GET /p.txt HTTP/1.1\r\n")) {
		t.Errorf("python wrote %q, want its GET", w)
	}
	checkMeta(t, cs, p.PID(), "python3", netip.AddrPort{}, srv.Addr, 0x0304)
	if l := data(cs, capture.Write)[0].Local; !l.Addr().IsLoopback() {
		t.Errorf("python's local address %s, want loopback", l)
	}
	got := attachedAs(t, c, lib)
	if got.Kind != KindOpenSSL || !byWatcher(got) {
		t.Errorf("private libssl attached as %+v, want kind openssl found by the watcher", got)
	}
}

// TestAttachRunning: AttachRunning does the watcher's look at the running
// processes before Run (what lets tlstap tls say it is ready only once it
// is done), Run then starts without another, and a request that a program
// running since before the source makes before Run waits in the ring and
// is delivered once Run starts.
func TestAttachRunning(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("made before Run\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"r.txt": payload}})
	dir, lib := privateCopy(t)
	script := `import ssl, sys, urllib.request
ctx = ssl._create_unverified_context()
print("ready", flush=True)
sys.stdin.readline()
print(urllib.request.urlopen("` + srv.URL("/r.txt") + `", context=ctx).read().decode(), end="", flush=True)
sys.stdin.readline()
`
	cmd := exec.Command(testenv.Python(t), "-c", script)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
	stdin, stdout := startPiped(t, cmd)
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("python: %q, %v", line, err)
	}

	c := newCapturer(t, Options{})
	select {
	case <-c.src.Watching():
		t.Fatal("Watching closed before any scan")
	default:
	}
	c.src.AttachRunning()
	select {
	case <-c.src.Watching():
	default:
		t.Fatal("Watching still open after AttachRunning")
	}
	if _, ok := attachedFile(c, lib); !ok {
		t.Fatalf("private libssl not attached; attached: %+v", c.src.Libraries())
	}

	if _, err := io.WriteString(stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, len(payload))
	if _, err := io.ReadFull(out, body); err != nil || !bytes.Equal(body, payload) {
		t.Fatalf("python printed %q, %v; want %q", body, err, payload)
	}
	c.run()
	cs := c.waitFor("the response made before Run", cmd.Process.Pid, func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), payload)
	})
	if w := concat(cs, capture.Write); !bytes.HasPrefix(w, []byte("GET /r.txt HTTP/1.1\r\n")) {
		t.Errorf("python wrote %q, want its GET", w)
	}
	checkMeta(t, cs, cmd.Process.Pid, "python3", netip.AddrPort{}, srv.Addr, 0x0304)
}

// TestWatchMountNamespace: curl in its own mount namespace, with a private
// libssl bind-mounted over the system's, is captured once the watcher has
// attached to that file (through /proc/PID/root). curl makes its first
// request right after start, inside the attach window, so the test waits
// for the second, which --rate delays by 500 ms.
func TestWatchMountNamespace(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"a.txt": []byte("first\n"), "b.txt": []byte("second body\n")}})
	_, lib := privateCopy(t)
	sys, err := filepath.EvalSymlinks(systemLibssl(t))
	if err != nil {
		t.Fatal(err)
	}
	c := startWatching(t)

	script := `mount --bind "$1" "$2" && exec curl -sSk -A tlstap-test --rate 2/s -o /dev/null -o /dev/null "$3" "$4"`
	p := runGnuTLSProgram(t, exec.Command("unshare", "-m", "sh", "-c", script, "sh", lib, sys, srv.URL("/a.txt"), srv.URL("/b.txt")))
	cs := c.waitFor("the second response", p.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), []byte("second body\n"))
	})
	if w := concat(cs, capture.Write); !bytes.Contains(w, []byte("GET /b.txt HTTP/1.1\r\n")) {
		t.Errorf("curl wrote %q, want its GET /b.txt", w)
	}
	checkMeta(t, cs, p.PID(), "curl", netip.AddrPort{}, srv.Addr, 0x0304)
	if l := data(cs, capture.Write)[0].Local; !l.Addr().IsLoopback() {
		t.Errorf("curl's local address %s, want loopback", l)
	}
	if got := attachedAs(t, c, lib); !byWatcher(got) {
		t.Errorf("private libssl found as %q, want by the watcher", got.Found)
	}
}

// BenchmarkAttachWindow measures the window between a library's first
// mapping (the kernel's timestamp of the mmap) and its probes being live,
// for a fresh copy of libssl loaded with dlopen by Python. The baseline,
// measured in the same run, is attaching a fresh copy directly with
// AttachLib (ELF read + uprobes, no watcher). Reported as medians.
func BenchmarkAttachWindow(b *testing.B) {
	testenv.RequireRoot(b, "attaching uprobes")
	src, err := New(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan capture.Chunk, 1024)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	go func() {
		for {
			select {
			case <-out:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Fatal(err)
	}
	sys := "/usr/lib/x86_64-linux-gnu/libssl.so.3"
	var windows, direct []time.Duration
	for b.Loop() {
		lib := copyTo(b, sys, b.TempDir())
		cmd := exec.Command(py, "-c", "import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); time.sleep(30)", lib)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		want, _, err := inspect(lib)
		if err != nil {
			b.Fatal(err)
		}
		var w time.Duration
		for deadline := time.Now().Add(20 * time.Second); w == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("never attached")
			}
			src.mu.Lock()
			if a, ok := src.libs[fileID{want.Dev, want.Inode}]; ok {
				w = a.window
			}
			src.mu.Unlock()
		}
		cmd.Process.Kill()
		cmd.Wait()
		windows = append(windows, w)

		lib2 := copyTo(b, sys, b.TempDir())
		start := time.Now()
		if _, err := src.AttachLib(lib2); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
		if err := src.DetachLib(lib2); err != nil {
			b.Fatal(err)
		}
	}
	median := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(median(windows), "window-ms")
	b.ReportMetric(median(direct), "attach-ms")
	b.ReportMetric(median(windows)/median(direct), "window/attach")
	b.ReportMetric(float64(slices.Max(windows))/float64(time.Millisecond), "max-window-ms")
}

// copyTo copies src into dir: a new inode.
func copyTo(tb testing.TB, src, dir string) string {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// TestWatchNode: node carries OpenSSL statically and exports SSL_*; it is
// attached when it starts, without Options.Libs. node runs TLS over memory
// BIOs; its chunks still carry fd and addresses (see doc.go).
func TestWatchNode(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	c := startWatching(t)
	cert := testenv.NewCert(t, t.TempDir())
	server := `const https = require("https"), fs = require("fs");
https.createServer({cert: fs.readFileSync(process.argv[1]), key: fs.readFileSync(process.argv[2])}, (req, res) => {
	res.setHeader("content-type", "text/plain"); res.end("node says hello\n");
}).listen(0, "127.0.0.1", function () { console.log("port " + this.address().port); });`
	srv := testenv.Start(t, node, "-e", server, cert.CertFile, cert.KeyFile)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.WaitOutput(ctx, "\n"); err != nil {
		t.Fatal(err)
	}
	port := strings.TrimSpace(strings.TrimPrefix(srv.Output(), "port "))
	// The window for a 100 MB executable is longer than for a library:
	// wait for the attach rather than guess it.
	bin, err := filepath.EvalSymlinks(node)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		if l, ok := attachedFile(c, bin); ok {
			if !strings.HasPrefix(l.Found, watch.HowExec) && !strings.HasPrefix(l.Found, watch.HowScan) {
				t.Errorf("node found as %q, want at its start", l.Found)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node was never attached; attached: %+v", c.src.Libraries())
		}
	}
	client := `require("https").get("https://127.0.0.1:" + process.argv[1] + "/n", {rejectUnauthorized: false, headers: {"user-agent": "tlstap-test"}}, (res) => {
	res.on("data", (d) => process.stdout.write(d));
});`
	p := runGnuTLSProgram(t, exec.Command(node, "-e", client, port))
	if p.Output() != "node says hello\n" {
		t.Fatalf("node client printed %q", p.Output())
	}
	cs := c.waitFor("the client's request and response", p.PID(), func(cs []capture.Chunk) bool {
		return bytes.Contains(concat(cs, capture.Write), []byte("GET /n HTTP/1.1")) &&
			bytes.HasSuffix(concat(cs, capture.Read), []byte("node says hello\n"))
	})
	ss := c.waitFor("the server's view", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.Contains(concat(cs, capture.Read), []byte("GET /n HTTP/1.1")) &&
			bytes.Contains(concat(cs, capture.Write), []byte("node says hello\n"))
	})
	for _, side := range [][]capture.Chunk{cs, ss} {
		for _, ch := range data(side, capture.Write) {
			if ch.Library != KindOpenSSL || ch.Comm != "node" {
				t.Errorf("node chunk library %q comm %q", ch.Library, ch.Comm)
			}
		}
	}
	// Memory BIOs: fd and tuple come from the event loop's socket I/O
	// right after a handshake step or a write (see doc.go).
	local := data(cs, capture.Write)[0].Local
	if !local.Addr().IsLoopback() {
		t.Fatalf("node client's local address %s, want loopback:\n%s", local, summary(cs))
	}
	srvAddr := netip.MustParseAddrPort("127.0.0.1:" + port)
	checkMeta(t, cs, p.PID(), "node", local, srvAddr, 0x0304)
	checkMeta(t, ss, srv.PID(), "node", srvAddr, local, 0x0304)
}

// attachedFile reports whether the file at path (by inode) is attached.
func attachedFile(c *capturer, path string) (Library, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Library{}, false
	}
	for _, l := range c.src.Libraries() {
		if l.Dev == uint64(st.Dev) && l.Inode == st.Ino {
			return l, true
		}
	}
	return Library{}, false
}

// Cancelling Run detaches everything; the counters survive for reporting.
func TestRunCancel(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	src, err := New(Options{Libs: []string{systemLibssl(t)}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, make(chan capture.Chunk)) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	if libs := src.Libraries(); len(libs) != 0 {
		t.Errorf("still attached to %+v", libs)
	}
	if _, err := src.AttachLib(systemLibssl(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("AttachLib after Run ended: %v, want ErrClosed", err)
	}
	if err := src.Run(context.Background(), nil); err == nil {
		t.Error("second Run succeeded")
	}
	if err := src.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
}

// The reader has no poll timer: a record must wake it. One line each way
// over an otherwise silent connection is delivered, with nothing after it
// to push it out (no close, no more traffic).
func TestDeliveredWithoutFurtherTraffic(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv, cli := connectedOpenSSL(t, "hello before capture\n")

	c := startCapture(t, Options{})
	if _, err := cli.Stdin.Write([]byte("lonely line\n")); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the server's read of the line", srv.PID(), func(cs []capture.Chunk) bool {
		return string(concat(cs, capture.Read)) == "lonely line\n"
	})
	c.waitFor("the client's write of the line", cli.PID(), func(cs []capture.Chunk) bool {
		return string(concat(cs, capture.Write)) == "lonely line\n"
	})
}

// A burst is delivered whole: the records committed while the reader was
// busy (which do not wake it) are drained with the rest, the last ones
// included, though nothing follows them.
func TestBurstDeliveredWhole(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	cli := testenv.StartOpenSSLClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cli.Stdin.Write([]byte("warm up\n")); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "warm up\n"); err != nil {
		t.Fatal(err)
	}

	c := startCapture(t, Options{})
	var burst strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&burst, "burst line %04d %s\n", i, strings.Repeat("x", i%97))
	}
	if _, err := cli.Stdin.Write([]byte(burst.String())); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "burst line 2999"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the whole burst read by the server", srv.PID(), func(cs []capture.Chunk) bool {
		return len(concat(cs, capture.Read)) >= burst.Len()
	})
	cs := c.waitFor("the whole burst written by the client", cli.PID(), func(cs []capture.Chunk) bool {
		return len(concat(cs, capture.Write)) >= burst.Len()
	})
	if got := concat(cs, capture.Write); string(got) != burst.String() {
		t.Errorf("client wrote %d bytes, want the %d of the burst, in order", len(got), burst.Len())
	}
	if got := concat(ofPID(c.snapshot(), srv.PID()), capture.Read); string(got) != burst.String() {
		t.Errorf("server read %d bytes, want the %d of the burst, in order", len(got), burst.Len())
	}
}

// Writes are emitted at SSL_write's entry, before OpenSSL accepted them.
// A non-blocking writer whose peer does not read gets WANT_WRITE and must
// retry with the same bytes: each byte is still captured exactly once.
func TestWriteRetriedAfterWantWrite(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	cert := testenv.NewCert(t, t.TempDir())
	const script = `
import select, socket, ssl, sys, threading
cert, key = sys.argv[1], sys.argv[2]
payload = (bytes(range(251)) * ((8 << 20) // 251 + 1))[:8 << 20]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname, cctx.verify_mode = False, ssl.CERT_NONE
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
got, go = bytearray(), threading.Event()
def serve():
    s = sctx.wrap_socket(ls.accept()[0], server_side=True)
    go.wait()
    while len(got) < len(payload):
        b = s.recv(1 << 16)
        if not b:
            break
        got.extend(b)
    s.close()
t = threading.Thread(target=serve)
t.start()
c = cctx.wrap_socket(socket.create_connection(ls.getsockname()))
c.setblocking(False)
view, sent, retries = memoryview(payload), 0, 0
while sent < len(payload):
    try:
        sent += c.send(view[sent:sent + (1 << 20)])
    except ssl.SSLWantWriteError:
        retries += 1
        go.set()
        select.select([], [c], [])
go.set()
t.join()
c.close()
assert got == payload, "server got %d bytes" % len(got)
print(retries)
`
	c := startCapture(t, Options{})
	p := testenv.Start(t, testenv.Python(t), "-c", script, cert.CertFile, cert.KeyFile)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("python: %v\n%s", err, p.Output())
	}
	t.Logf("WANT_WRITE retries: %s", strings.TrimSpace(p.Output()))
	if strings.TrimSpace(p.Output()) == "0" {
		t.Fatal("the writer never got WANT_WRITE: the test proves nothing")
	}
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i % 251)
	}
	cs := c.waitFor("every byte written and read", p.PID(), func(cs []capture.Chunk) bool {
		return len(concat(cs, capture.Read)) >= len(want) && len(concat(cs, capture.Write)) >= len(want)
	})
	for _, ch := range cs {
		if ch.Kind == capture.Lost {
			t.Errorf("lost %d bytes (dir %s)", ch.LostBytes, ch.Dir)
		}
	}
	if got := concat(cs, capture.Write); !bytes.Equal(got, want) {
		t.Errorf("written: %d bytes captured for %d sent (retries: %s)", len(got), len(want), strings.TrimSpace(p.Output()))
	}
	if got := concat(cs, capture.Read); !bytes.Equal(got, want) {
		t.Errorf("read: %d bytes captured for %d received", len(got), len(want))
	}
}

// With a small ring and nobody reading it, most of a 1 MiB transfer cannot
// be delivered. Every byte must still be accounted for: delivered, or
// reported lost in a Lost chunk of the right connection and direction.
func TestLostWhenRingFull(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv, cli := connectedOpenSSL(t, "hello\n")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	c := newCapturer(t, Options{RingBytes: 64 << 10, Filter: Filter{PIDs: []uint32{uint32(cli.PID())}}})
	line := strings.Repeat("x", 1023) + "\n"
	bulk := strings.Repeat(line, 1024)
	if _, err := srv.Stdin.Write([]byte(bulk)); err != nil {
		t.Fatal(err)
	}
	if err := cli.WaitOutput(ctx, bulk); err != nil {
		t.Fatal(err)
	}

	c.run()
	const marker = "marker after the loss\n"
	if _, err := srv.Stdin.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	cs := c.waitFor("the marker", cli.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), []byte(marker))
	})

	var delivered, lost uint64
	for _, ch := range cs {
		switch {
		case ch.Kind == capture.Lost && ch.Dir == capture.Read:
			lost += ch.LostBytes
		case ch.Kind == capture.Data && ch.Dir == capture.Read:
			delivered += uint64(len(ch.Data))
		case ch.Kind == capture.Lost:
			t.Errorf("loss reported on the write side: %+v", ch)
		}
	}
	if want := uint64(len(bulk) + len(marker)); delivered+lost != want {
		t.Errorf("delivered %d + lost %d = %d bytes, want %d", delivered, lost, delivered+lost, want)
	}
	if lost == 0 {
		t.Error("nothing reported lost though the ring could not hold the transfer")
	}
	if st := c.src.Stats(); st.LostRingBytes != lost || st.LostRingRecords == 0 {
		t.Errorf("stats %+v, want LostRingBytes %d", st, lost)
	}
}

// One SSL_write larger than MaxCallBytes is captured up to the cap; the
// rest is reported lost, not dropped silently.
func TestCallCap(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	c := startCapture(t, Options{})
	const total = MaxCallBytes + 1<<20
	// Python's sendall hands the whole buffer to one SSL_write_ex.
	const script = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
tls.sendall(b"c" * int(sys.argv[3]))
tls.close()
`
	p := testenv.Start(t, testenv.Python(t), "-c", script, fmt.Sprint(srv.Addr.Port()), srv.Cert.CertFile, fmt.Sprint(total))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("%v: %s", err, p.Output())
	}
	cs := c.waitClosed(p.PID())
	var lost uint64
	for _, ch := range cs {
		if ch.Kind == capture.Lost {
			if ch.Dir != capture.Write {
				t.Errorf("loss on the %s side", ch.Dir)
			}
			lost += ch.LostBytes
		}
	}
	w := concat(cs, capture.Write)
	if len(w) != MaxCallBytes || lost != total-MaxCallBytes {
		t.Errorf("captured %d and lost %d bytes of a %d-byte call, want %d and %d", len(w), lost, total, MaxCallBytes, total-MaxCallBytes)
	}
	if strings.Trim(string(w), "c") != "" {
		t.Error("captured bytes are not the written ones")
	}
	if st := c.src.Stats(); st.LostCapBytes != total-MaxCallBytes {
		t.Errorf("Stats().LostCapBytes = %d, want %d", st.LostCapBytes, total-MaxCallBytes)
	}
}

func TestNewErrors(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	for _, tt := range []struct {
		name string
		opts Options
		want string
		is   error
	}{
		{"missing lib", Options{Libs: []string{"/nonexistent/libssl.so.3"}}, "", os.ErrNotExist},
		{"not openssl", Options{Libs: []string{"/bin/true"}}, "no OpenSSL SSL_write", nil},
		{"ring not a power of two", Options{RingBytes: 100000}, "power of two", nil},
		{"ring too small", Options{RingBytes: 1024}, "power of two", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one containing %q (is %v)", err, tt.want, tt.is)
			}
		})
	}
}

// Without privileges New must say what is missing rather than pass on a
// bare EPERM. The check runs in a child process of this test binary with
// the nobody user's credentials.
func TestNewNotRoot(t *testing.T) {
	if os.Getenv("TLSTAP_TEST_NOT_ROOT") == "1" {
		_, err := New(Options{Libs: []string{os.Getenv("TLSTAP_TEST_LIB")}})
		if err == nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(err.Error())
		os.Exit(0)
	}
	testenv.RequireRoot(t, "switching to an unprivileged user")
	// The go build cache is private to root; nobody needs its own copy.
	dir := t.TempDir()
	bin := filepath.Join(dir, "openssl.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestNewNotRoot$")
	cmd.Env = append(os.Environ(), "TLSTAP_TEST_NOT_ROOT=1", "TLSTAP_TEST_LIB="+systemLibssl(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v (%s)", err, out)
	}
	if !strings.Contains(string(out), "needs root") {
		t.Errorf("error %q does not say root is needed", out)
	}
}

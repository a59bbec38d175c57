package openssl

import (
	"bufio"
	"bytes"
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
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/gotls"
	"github.com/tlstap/tlstap/internal/testenv"
)

// goBuild is one way of building testdata/goprog. The name is the
// executable's, and so the comm its threads carry.
type goBuild struct {
	name  string
	src   string // under testdata; "" is goprog
	gocmd string
	env   []string
	args  []string
}

var goBuilds = []goBuild{
	{name: "gt-pie-stripped", gocmd: "go", args: []string{"-ldflags=-s -w", "-buildmode=pie"}},
	{name: "gt-default", gocmd: "go"},
	{name: "gt-external", gocmd: "go", env: []string{"CGO_ENABLED=1"}, args: []string{"-ldflags=-linkmode=external"}},
	{name: "gt-go1.19", gocmd: "/usr/lib/go-1.19/bin/go"},
}

// buildGoProg builds testdata/goprog (or b.src) into dir. The program is
// its own module, so Debian's Go 1.19 builds it as well as the current
// toolchain.
func buildGoProg(t testing.TB, dir string, b goBuild) string {
	t.Helper()
	if b.src == "" {
		b.src = "goprog"
	}
	src, err := filepath.Abs(filepath.Join("testdata", b.src))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, b.name)
	cmd := exec.Command(b.gocmd, append(append([]string{"build", "-o", out}, b.args...), ".")...)
	cmd.Dir = src
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOROOT=") || strings.HasPrefix(kv, "GOFLAGS=")
	})
	cmd.Env = append(append(env, "GOWORK=off", "GOTOOLCHAIN=local"), b.env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s build %v: %v\n%s", b.gocmd, b.args, err, msg)
	}
	return out
}

// startPiped starts cmd with pipes to its standard input and from its
// standard output; the caller ends it.
func startPiped(t *testing.T, cmd *exec.Cmd) (io.WriteCloser, io.ReadCloser) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout
}

// goServer runs `goprog serve` and returns its pid and address.
func goServer(t *testing.T, bin string) (int, netip.AddrPort) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Stderr = os.Stderr
	stdin, stdout := startPiped(t, cmd)
	t.Cleanup(func() {
		stdin.Close() // the server exits when its stdin closes
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	addr, err := netip.ParseAddrPort(strings.TrimSpace(strings.TrimPrefix(line, "listening ")))
	if err != nil {
		t.Fatalf("server said %q: %v", line, err)
	}
	return cmd.Process.Pid, addr
}

// goClient runs `goprog get` to completion and returns its pid and the
// local address of its one connection.
func goClient(t *testing.T, bin string, server netip.AddrPort, n int, proto string) (int, netip.AddrPort) {
	t.Helper()
	cmd := exec.Command(bin, "get", "https://"+server.String(), fmt.Sprint(n), proto)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client %s: %v\n%s", proto, err, out)
	}
	var local []netip.AddrPort
	for _, l := range strings.Split(string(out), "\n") {
		if a, ok := strings.CutPrefix(l, "conn "); ok {
			local = append(local, netip.MustParseAddrPort(a))
		}
	}
	if len(local) != 1 {
		t.Fatalf("client %s used %d connections, want 1:\n%s", proto, len(local), out)
	}
	return cmd.Process.Pid, local[0]
}

// h2Messages decodes one direction of an HTTP/2 connection: the :path of
// every HEADERS block that has one and the concatenated DATA. The client
// preface, if the stream starts with it, is skipped.
func h2Messages(b []byte) (paths []string, data string, err error) {
	b = bytes.TrimPrefix(b, []byte(http2.ClientPreface))
	fr := http2.NewFramer(io.Discard, bytes.NewReader(b))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var body strings.Builder
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return paths, body.String(), nil
		}
		if err != nil {
			return paths, body.String(), err
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if p := f.PseudoValue("path"); p != "" {
				paths = append(paths, p)
			}
		case *http2.DataFrame:
			body.Write(f.Data())
		}
	}
}

// checkGoMeta checks every data chunk of one side: process, fd, tuple, the
// library and the negotiated version (TLS 1.3, read from tls.Conn.vers; every
// toolchain the tests build with has a known layout).
// checkNoGoLearning checks that none of pid's connections is left learning
// its socket once all of them have carried data: bpf/gotls.h counts them
// in tlstap_go_pids, and a count left above zero would make every socket
// syscall of the process take the slow path in the tracepoints.
func checkNoGoLearning(t *testing.T, src *Source, pid int) {
	t.Helper()
	var n int64
	err := src.objs.TlstapGoPids.Lookup(uint32(pid), &n)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("tlstap_go_pids[%d]: %v", pid, err)
	}
	if n != 0 {
		t.Errorf("tlstap_go_pids[%d] = %d with every connection's socket known, want 0", pid, n)
	}
}

func checkGoMeta(t *testing.T, cs []capture.Chunk, pid int, comm string, local, remote netip.AddrPort) {
	t.Helper()
	checkMeta(t, cs, pid, comm, local, remote, 0x0304)
	for _, c := range data(cs, capture.Read) {
		if c.Library != "gotls" {
			t.Fatalf("pid %d: library %q, want gotls", pid, c.Library)
		}
	}
	for _, c := range data(cs, capture.Write) {
		if c.Library != "gotls" {
			t.Fatalf("pid %d: library %q, want gotls", pid, c.Library)
		}
	}
}

// TestGoPrograms captures a Go HTTPS server and Go clients, HTTP/1.1 and
// HTTP/2, in each of the four builds the issue names, on both sides.
func TestGoPrograms(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	const n = 5
	for _, b := range goBuilds {
		t.Run(b.name, func(t *testing.T) {
			bin := buildGoProg(t, t.TempDir(), b)
			comm := b.name[:min(len(b.name), 15)]
			c := startCapture(t, Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{comm}}})
			if got := c.src.GoPrograms(); len(got) != 1 {
				t.Fatalf("GoPrograms = %+v", got)
			}
			srvPID, addr := goServer(t, bin)

			for _, proto := range []string{"h1", "h2"} {
				cliPID, local := goClient(t, bin, addr, n, proto)
				cli := c.waitClosed(cliPID)
				checkGoMeta(t, cli, cliPID, comm, local, addr)

				var srv []capture.Chunk
				c.waitFor("server's responses", srvPID, func(cs []capture.Chunk) bool {
					srv = nil
					for _, ch := range cs {
						if ch.Local == addr && ch.Remote == local {
							srv = append(srv, ch)
						}
					}
					return bytes.Contains(concat(srv, capture.Write), fmt.Appendf(nil, "pong /req/%d", n-1))
				})
				checkGoMeta(t, srv, srvPID, comm, addr, local)
				checkNoGoLearning(t, c.src, srvPID)

				sent, got := concat(cli, capture.Write), concat(srv, capture.Read)
				replies, received := concat(srv, capture.Write), concat(cli, capture.Read)
				if proto == "h1" {
					for i := range n {
						req := fmt.Sprintf("GET /req/%d HTTP/1.1\r\n", i)
						resp := fmt.Sprintf("\r\n\r\npong /req/%d", i)
						if bytes.Count(sent, []byte(req)) != 1 || bytes.Count(got, []byte(req)) != 1 {
							t.Errorf("%s: request %d seen %d times by the client, %d by the server", proto, i,
								bytes.Count(sent, []byte(req)), bytes.Count(got, []byte(req)))
						}
						if bytes.Count(replies, []byte(resp)) != 1 || bytes.Count(received, []byte(resp)) != 1 {
							t.Errorf("%s: response %d seen %d times by the server, %d by the client", proto, i,
								bytes.Count(replies, []byte(resp)), bytes.Count(received, []byte(resp)))
						}
					}
					continue
				}
				var want []string
				var wantBody strings.Builder
				for i := range n {
					want = append(want, fmt.Sprintf("/req/%d", i))
					fmt.Fprintf(&wantBody, "pong /req/%d", i)
				}
				for _, side := range []struct {
					name        string
					reqs, resps []byte
				}{{"client", sent, received}, {"server", got, replies}} {
					paths, _, err := h2Messages(side.reqs)
					if err != nil || !slices.Equal(paths, want) {
						t.Errorf("h2 %s: request paths %q (%v), want %q", side.name, paths, err, want)
					}
					_, body, err := h2Messages(side.resps)
					if err != nil || body != wantBody.String() {
						t.Errorf("h2 %s: response bodies %q (%v), want %q", side.name, body, err, wantBody.String())
					}
				}
			}
		})
	}
}

// TestGoServerCurl captures curl's requests on the Go server's side.
func TestGoServerCurl(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	bin := buildGoProg(t, t.TempDir(), goBuilds[0])
	comm := goBuilds[0].name
	c := startCapture(t, Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{comm}}})
	srvPID, addr := goServer(t, bin)
	_, out := curl(t, "https://"+addr.String()+"/from-curl", "--http2")
	local := netip.AddrPortFrom(addr.Addr(), clientPort(t, out))
	srv := c.waitFor("the response to curl", srvPID, func(cs []capture.Chunk) bool {
		return bytes.Contains(concat(cs, capture.Write), []byte("pong /from-curl"))
	})
	checkGoMeta(t, srv, srvPID, comm, addr, local)
	paths, _, err := h2Messages(concat(srv, capture.Read))
	if err != nil || !slices.Equal(paths, []string{"/from-curl"}) {
		t.Errorf("server read paths %q (%v), want [/from-curl]", paths, err)
	}
}

// TestGoUnsupported: a Go executable tlstap does not understand (here one
// claiming a future toolchain) is refused with a clear error, and a watcher
// that meets it warns and leaves it running untouched.
func TestGoUnsupported(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	bin := buildGoProg(t, t.TempDir(), goBuilds[1])
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	// Same length, so nothing else in the file moves.
	if !bytes.Contains(raw, []byte("go1.26")) {
		t.Fatal("no version string to patch")
	}
	future := filepath.Join(t.TempDir(), "gt-future")
	if err := os.WriteFile(future, bytes.ReplaceAll(raw, []byte("go1.26"), []byte("go1.99")), 0o755); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	c := startCapture(t, Options{WatchGo: true, Filter: Filter{Comms: []string{"gt-future"}}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := c.src.AttachGo(future); !errors.Is(err, gotls.ErrUnsupported) || !strings.Contains(err.Error(), "go1.99") {
		t.Fatalf("AttachGo(go1.99 binary) = %v, want ErrUnsupported naming go1.99", err)
	}
	srvPID, addr := goServer(t, future)
	if log := c.waitForLog(&logs, "Go program not captured"); !strings.Contains(log, "gt-future") || !strings.Contains(log, "go1.99") {
		t.Errorf("the warning names neither the program nor its version:\n%s", log)
	}
	_, out := curl(t, "https://"+addr.String()+"/still-alive")
	if f := strings.Fields(out); len(f) != 3 || f[2] != fmt.Sprint(len("pong /still-alive")) {
		t.Fatalf("server answered %q (curl's port, version, size)", out)
	}
	if got := ofPID(c.snapshot(), srvPID); len(got) != 0 {
		t.Fatalf("captured %d chunks of an unsupported program", len(got))
	}
}

// syncBuffer is a log destination tests can read while the source writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitForLog waits until the source logged a line containing what.
func (c *capturer) waitForLog(logs *syncBuffer, what string) string {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(logs.String(), what) {
		if time.Now().After(deadline) {
			c.t.Fatalf("never logged %q; log:\n%s", what, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return logs.String()
}

// TestGoWatch: with WatchGo, a Go program started after tlstap is found at
// its exec by the watcher and captured, with no path given: whether the
// libraries are discovered (the library watcher) or named (--libssl: the
// watcher in exec-only mode; there is no periodic /proc scan).
func TestGoWatch(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	for _, tc := range []struct {
		name string
		libs []string
	}{
		{"discovered libraries", nil},
		{"named libraries", []string{systemLibssl(t)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := goBuilds[0]
			b.name = "gt-watched"
			bin := buildGoProg(t, t.TempDir(), b)
			var logs syncBuffer
			c := startCapture(t, Options{Libs: tc.libs, WatchGo: true, Filter: Filter{Comms: []string{b.name}}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			<-c.src.Watching()
			srvPID, addr := goServer(t, bin)
			log := c.waitForLog(&logs, fmt.Sprintf("pid=%d", srvPID))
			if !strings.Contains(log, `how="process start"`) {
				t.Errorf("not found at its exec:\n%s", log)
			}
			if got := c.src.GoPrograms(); len(got) != 1 || got[0].GoVersion == "" || !got[0].Stripped {
				t.Fatalf("GoPrograms = %+v, want the one stripped program", got)
			}
			// The source's own executable is refused before it is even inspected.
			if _, err := c.src.AttachGo("/proc/self/exe"); !errors.Is(err, errSelf) {
				t.Fatalf("AttachGo(own executable) = %v, want errSelf", err)
			}
			_, out := curl(t, "https://"+addr.String()+"/watched", "--http1.1")
			local := netip.AddrPortFrom(addr.Addr(), clientPort(t, out))
			srv := c.waitFor("the response", srvPID, func(cs []capture.Chunk) bool {
				return bytes.Contains(concat(cs, capture.Write), []byte("\r\n\r\npong /watched"))
			})
			checkGoMeta(t, srv, srvPID, b.name, addr, local)
			if !bytes.Contains(concat(srv, capture.Read), []byte("GET /watched HTTP/1.1\r\n")) {
				t.Errorf("request not captured:\n%s", summary(srv))
			}
		})
	}
}

// TestGoWatchFilterChange: a Go program whose first process the filter
// left out is attached when a process of it starts after the filter
// selects it, although the watcher had already judged the file.
func TestGoWatchFilterChange(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	b := goBuilds[0]
	b.name = "gt-refiltered"
	bin := buildGoProg(t, t.TempDir(), b)
	var logs syncBuffer
	c := startCapture(t, Options{Libs: []string{systemLibssl(t)}, WatchGo: true, Filter: Filter{Comms: []string{"gt-other"}},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	<-c.src.Watching()
	t.Run("left out", func(t *testing.T) {
		before := c.src.watcher.Stats().Inspections
		pid, _ := goServer(t, bin) // stopped when this subtest ends
		// Its exec was looked at: the watcher read some process's maps.
		deadline := time.Now().Add(waitTimeout)
		for c.src.watcher.Stats().Inspections == before {
			if time.Now().After(deadline) {
				t.Fatal("the watcher never looked at the process")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if strings.Contains(logs.String(), fmt.Sprintf("pid=%d", pid)) {
			t.Fatalf("attached to a process the filter leaves out:\n%s", logs.String())
		}
	})
	if err := c.src.SetFilter(Filter{Comms: []string{b.name}}); err != nil {
		t.Fatal(err)
	}
	// Let the rescan of running processes (none of this program) finish,
	// so the process below can only be found at its exec.
	time.Sleep(time.Second)
	srvPID, _ := goServer(t, bin)
	log := c.waitForLog(&logs, fmt.Sprintf("pid=%d", srvPID))
	if !strings.Contains(log, `how="process start"`) {
		t.Errorf("not found at its exec:\n%s", log)
	}
}

// TestGoStress: 100 goroutines make 10,000 requests, reading each response
// 16 bytes at a time into a buffer on a stack that deep recursion grows
// (and the runtime copies) between reads. Nothing may crash, and every
// request and response must be captured exactly once on both sides.
func TestGoStress(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	const goroutines, requests = 100, 10000
	b := goBuilds[1]
	b.name = "gt-stress"
	bin := buildGoProg(t, t.TempDir(), b)
	c := startCapture(t, Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{b.name}}})
	srvPID, addr := goServer(t, bin)
	cmd := exec.Command(bin, "stress", addr.String(), fmt.Sprint(goroutines), fmt.Sprint(requests))
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "done") {
		t.Fatalf("stress client: %v\n%s", err, out)
	}
	cliPID := cmd.Process.Pid
	cli := c.waitClosed(cliPID)
	srv := c.waitFor("every response", srvPID, func(cs []capture.Chunk) bool {
		return bytes.Count(concat(cs, capture.Write), []byte("\r\n\r\npong /s/")) >= requests
	})

	for _, side := range []struct {
		name      string
		cs        []capture.Chunk
		req, resp capture.Direction
	}{{"client", cli, capture.Write, capture.Read}, {"server", srv, capture.Read, capture.Write}} {
		reqs, resps := make([]int, requests), make([]int, requests)
		conns := map[uint64][]capture.Chunk{}
		for _, ch := range side.cs {
			if ch.Kind == capture.Lost {
				t.Fatalf("%s: %d bytes lost", side.name, ch.LostBytes)
			}
			conns[ch.Conn] = append(conns[ch.Conn], ch)
		}
		if len(conns) != goroutines {
			t.Errorf("%s: %d connections, want %d", side.name, len(conns), goroutines)
		}
		for _, cs := range conns {
			count(concat(cs, side.req), "GET /s/", " HTTP/1.1\r\n", reqs)
			count(concat(cs, side.resp), "\r\n\r\npong /s/", "", resps)
			for _, ch := range cs {
				if ch.Kind == capture.Data && (ch.FD < 0 || !ch.Local.IsValid() || ch.Local != cs[0].Local) {
					t.Fatalf("%s: connection %#x has chunks with fd %d, tuple %s, and %s:\n%s", side.name, ch.Conn, ch.FD, ch.Local, cs[0].Local, summary(cs))
				}
			}
		}
		for i := range requests {
			if reqs[i] != 1 || resps[i] != 1 {
				var dump []capture.Chunk
				for _, ch := range side.cs {
					if bytes.Contains(ch.Data, fmt.Appendf(nil, "/s/%d ", i)) || bytes.Contains(ch.Data, fmt.Appendf(nil, "pong /s/%d", i)) {
						dump = append(dump, ch)
					}
				}
				t.Fatalf("%s: request %d captured %d times, its response %d times:\n%s", side.name, i, reqs[i], resps[i], summary(dump))
			}
		}
	}
}

// count adds one to seen[N] for every prefix N suffix in b, N a decimal
// index. With an empty suffix N runs to the next non-digit.
func count(b []byte, prefix, suffix string, seen []int) {
	for {
		i := bytes.Index(b, []byte(prefix))
		if i < 0 {
			return
		}
		b = b[i+len(prefix):]
		n, j := 0, 0
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			n = n*10 + int(b[j]-'0')
			j++
		}
		if j > 0 && bytes.HasPrefix(b[j:], []byte(suffix)) && n < len(seen) {
			seen[n]++
		}
	}
}

// TestGoGRPC captures a google.golang.org/grpc client and server talking
// over TLS in one process: every call's HEADERS carry
// :path /grpc.health.v1.Health/Check on both sides.
func TestGoGRPC(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	const calls = 5
	bin := buildGoProg(t, t.TempDir(), goBuild{name: "gt-grpc", src: "grpcprog", gocmd: "go"})
	c := startCapture(t, Options{GoPrograms: []string{bin}, Filter: Filter{Comms: []string{"gt-grpc"}}})
	cmd := exec.Command(bin, fmt.Sprint(calls))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "done") {
		t.Fatalf("grpcprog: %v\n%s", err, out)
	}
	pid := cmd.Process.Pid
	cs := c.waitClosed(pid)
	want := slices.Repeat([]string{"/grpc.health.v1.Health/Check"}, calls)
	byConn := map[uint64][]capture.Chunk{}
	for _, ch := range cs {
		byConn[ch.Conn] = append(byConn[ch.Conn], ch)
	}
	var sides []string
	for _, conn := range byConn {
		for _, dir := range []capture.Direction{capture.Write, capture.Read} {
			paths, _, err := h2Messages(concat(conn, dir))
			if err != nil {
				t.Errorf("%s of connection %#x: %v", dir, conn[0].Conn, err)
			}
			if len(paths) > 0 {
				if !slices.Equal(paths, want) {
					t.Errorf("%s of connection %#x: paths %q, want %q", dir, conn[0].Conn, paths, want)
				}
				sides = append(sides, dir.String())
			}
		}
		checkGoMeta(t, conn, pid, "gt-grpc", netip.AddrPort{}, netip.AddrPort{})
	}
	slices.Sort(sides)
	if !slices.Equal(sides, []string{"read", "write"}) {
		t.Errorf("calls seen on %q, want the client's write and the server's read", sides)
	}
}

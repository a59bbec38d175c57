package openssl

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// checkNSSConn checks one side of an NSS connection: library, pid, comm,
// fd and both ends of the 4-tuple (remote as given, local on loopback).
func checkNSSConn(t *testing.T, cs []capture.Chunk, pid int, comm string, remote netip.AddrPort) netip.AddrPort {
	t.Helper()
	ds := append(data(cs, capture.Write), data(cs, capture.Read)...)
	if len(ds) == 0 {
		t.Fatalf("%s (pid %d): no data chunks", comm, pid)
	}
	local := ds[0].Local
	if !local.IsValid() || !local.Addr().IsLoopback() {
		t.Fatalf("%s: local address %s, want a loopback address:\n%s", comm, local, summary(cs))
	}
	for _, ch := range ds {
		if ch.Library != KindNSS {
			t.Errorf("%s: library %q, want %q", comm, ch.Library, KindNSS)
		}
	}
	checkMeta(t, cs, pid, comm, local, remote, 0)
	return local
}

// TestNSSAttached: with no options, NSPR's libnspr4 and NSS's libssl3 are
// found and probed.
func TestNSSAttached(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	c := startCapture(t, Options{NoWatch: true})
	want := map[string][]string{
		"libnspr4.so": {"PR_Write", "PR_Send", "PR_Read", "PR_Recv", "PR_Writev", "PR_Close"},
		"libssl3.so":  {"SSL_ImportFD", "DTLS_ImportFD"},
	}
	for _, l := range c.src.Libraries() {
		for name, syms := range want {
			if strings.HasSuffix(l.Path, "/"+name) {
				if l.Kind != KindNSS || !slices.Equal(l.Symbols, syms) {
					t.Errorf("%s attached as %s with %v, want %s with %v", l.Path, l.Kind, l.Symbols, KindNSS, syms)
				}
				delete(want, name)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("not attached: %v; attached: %+v", want, c.src.Libraries())
	}
}

// TestNSSTstclnt: NSS's tstclnt against nginx. Its request and nginx's
// response are captured once each, with pid, fd, both ends of the tuple
// and library nss; what tstclnt reads from its stdin pipe and writes to
// its stdout pipe, through the same PR_Read and PR_Write, is not.
func TestNSSTstclnt(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("nss tstclnt body\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"nss.txt": payload}})
	c := startWatching(t)

	// tstclnt reads the request from a file (-A) with PR_Read and writes
	// the response to its stdout, a pipe, with PR_Write: neither may show.
	req := "GET /nss.txt HTTP/1.1\r\nHost: tlstap\r\nUser-Agent: tlstap-nss\r\nConnection: close\r\n\r\n"
	reqFile := filepath.Join(t.TempDir(), "req")
	if err := os.WriteFile(reqFile, []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runGnuTLSProgram(t, exec.Command("tstclnt", "-D", "-o", "-V", "tls1.2:tls1.3", "-A", reqFile,
		"-h", srv.Addr.Addr().String(), "-p", strconv.Itoa(int(srv.Addr.Port()))))
	if !strings.Contains(p.Output(), string(payload)) {
		t.Fatalf("tstclnt printed %q, want the body %q", p.Output(), payload)
	}
	cs := c.waitClosed(p.PID())
	if got := string(concat(cs, capture.Write)); got != req {
		t.Errorf("tstclnt wrote %q, want exactly its request %q (its stdout must not be captured)", got, req)
	}
	resp := concat(cs, capture.Read)
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(resp, payload) {
		t.Errorf("tstclnt read %q, want exactly nginx's 200 response (its request file must not be captured)", resp)
	}
	if n := len(conns(cs)); n != 1 {
		t.Errorf("tstclnt has %d connections, want 1:\n%s", n, summary(cs))
	}
	local := checkNSSConn(t, cs, p.PID(), "tstclnt", srv.Addr)
	c.waitFor("nginx's side of the connection", srv.PID(), func(cs []capture.Chunk) bool {
		return slices.ContainsFunc(cs, func(ch capture.Chunk) bool { return ch.Remote == local && ch.Library == KindOpenSSL })
	})
}

// netns starts a process holding a new network namespace with loopback up
// and returns its pid, for nsenter: selfserv listens on every address, so
// it runs where only loopback exists.
func netns(t *testing.T) int {
	t.Helper()
	p := testenv.StartCmd(t, exec.Command("unshare", "-n", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"))
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	defer cancel()
	if err := p.WaitOutput(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	return p.PID()
}

// nssServerDB makes an NSS certificate database holding a self-signed
// certificate and key named "server".
func nssServerDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	noise := filepath.Join(dir, "noise")
	if err := os.WriteFile(noise, []byte(strings.Repeat("tlstap noise ", 8)), 0o600); err != nil {
		t.Fatal(err)
	}
	db := "sql:" + filepath.Join(dir, "db")
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", db, "--empty-password"},
		{"-S", "-d", db, "-n", "server", "-s", "CN=localhost", "-x", "-t", "CTu,,", "-k", "ec", "-q", "nistp256", "-z", noise},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return db
}

// TestNSSSelfserv: curl (OpenSSL) against NSS's selfserv. selfserv reads
// the request with PR_Read and answers with PR_Writev; both are captured
// with pid, fd, both ends of the tuple and library nss, and agree with
// curl's side of the same connection.
func TestNSSSelfserv(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	db := nssServerDB(t)
	ns := strconv.Itoa(netns(t))
	c := startWatching(t)

	srv := testenv.StartCmd(t, exec.Command("nsenter", "-t", ns, "-n",
		"selfserv", "-d", db, "-n", "server", "-p", "4433", "-V", "tls1.2:tls1.3"))
	cl := runGnuTLSProgram(t, exec.Command("nsenter", "-t", ns, "-n",
		"curl", "-sSk", "--retry", "30", "--retry-connrefused", "--retry-delay", "1",
		"-A", "tlstap-nss", "https://127.0.0.1:4433/selfserv"))
	if !strings.Contains(cl.Output(), "GET /selfserv HTTP/1.1") {
		t.Fatalf("curl printed %q, want selfserv's echo of the request", cl.Output())
	}

	server := c.waitFor("selfserv's response", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.Contains(concat(cs, capture.Write), []byte("GET /selfserv HTTP/1.1"))
	})
	client := c.waitClosed(cl.PID())
	req := concat(client, capture.Write)
	if !bytes.HasPrefix(req, []byte("GET /selfserv HTTP/1.1\r\n")) || !bytes.Contains(req, []byte("User-Agent: tlstap-nss\r\n")) {
		t.Fatalf("curl wrote %q, want its GET", req)
	}
	if got := concat(server, capture.Read); !bytes.HasPrefix(got, req) {
		t.Errorf("selfserv read %q, want curl's request %q", got, req)
	}
	resp := concat(server, capture.Write)
	if !bytes.HasPrefix(resp, []byte("HTTP/1.0 200 OK\r\n")) {
		t.Errorf("selfserv wrote %q, want a 200 response", resp)
	}
	if got := concat(client, capture.Read); !bytes.Equal(got, resp) {
		t.Errorf("curl read %q, selfserv wrote %q: want the same bytes", got, resp)
	}
	curlLocal := data(client, capture.Write)[0].Local
	ssLocal := checkNSSConn(t, server, srv.PID(), "selfserv", curlLocal)
	checkMeta(t, client, cl.PID(), "curl", curlLocal, ssLocal, 0x0304)
}

// TestNSSWatchPrivate: private copies of libnspr4 and libssl3 mapped after
// the capture started are recognised by the watcher by their symbols,
// whatever their path, and tstclnt using them (LD_LIBRARY_PATH) is captured.
func TestNSSWatchPrivate(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("private nss body\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"p.txt": payload}})
	dir := t.TempDir()
	for _, name := range []string{"libnspr4.so", "libssl3.so"} {
		b, err := os.ReadFile(filepath.Join("/usr/lib/x86_64-linux-gnu", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := startWatching(t)

	// A process loads both copies first (dlopen), and tstclnt starts once
	// the watcher attached them: what is tested here is that the files
	// are recognised by their symbols whatever their path, not the attach
	// window (docs/benchmarks.md), which tstclnt, creating its TLS socket
	// at once, would race on a loaded machine.
	holder := testenv.StartCmd(t, exec.Command(testenv.Python(t), "-c",
		`import ctypes, sys, time; [ctypes.CDLL(p) for p in sys.argv[1:]]; print("up", flush=True); time.sleep(600)`,
		filepath.Join(dir, "libnspr4.so"), filepath.Join(dir, "libssl3.so")))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := holder.WaitOutput(ctx, "up"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"libnspr4.so", "libssl3.so"} {
		for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
			if _, ok := attachedFile(c, filepath.Join(dir, name)); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("private %s never attached; attached: %+v", name, c.src.Libraries())
			}
		}
	}

	req := "GET /p.txt HTTP/1.1\r\nHost: tlstap\r\nConnection: close\r\n\r\n"
	reqFile := filepath.Join(t.TempDir(), "req")
	if err := os.WriteFile(reqFile, []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tstclnt", "-D", "-o", "-A", reqFile, "-h", srv.Addr.Addr().String(), "-p", strconv.Itoa(int(srv.Addr.Port())))
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
	p := runGnuTLSProgram(t, cmd)
	cs := c.waitClosed(p.PID())
	if got := string(concat(cs, capture.Write)); got != req {
		t.Errorf("tstclnt wrote %q, want %q", got, req)
	}
	if resp := concat(cs, capture.Read); !bytes.HasSuffix(resp, payload) {
		t.Errorf("tstclnt read %q, want the body", resp)
	}
	checkNSSConn(t, cs, p.PID(), "tstclnt", srv.Addr)
	for _, name := range []string{"libnspr4.so", "libssl3.so"} {
		if got := attachedAs(t, c, filepath.Join(dir, name)); !byWatcher(got) || got.Kind != KindNSS {
			t.Errorf("private %s attached as %s, found %q; want nss, by the watcher", name, got.Kind, got.Found)
		}
	}
}

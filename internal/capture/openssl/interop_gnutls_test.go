package openssl

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
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

// runGnuTLSProgram runs a GnuTLS client to completion.
func runGnuTLSProgram(t *testing.T, cmd *exec.Cmd) *testenv.Proc {
	t.Helper()
	p := testenv.StartCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, p.Output())
	}
	return p
}

// checkGnuTLSConn checks a GnuTLS client's side of one connection against
// nginx's side: both ends of the 4-tuple, the fd, pid, comm and library.
// It returns the client's chunks of that connection.
func checkGnuTLSConn(t *testing.T, c *capturer, srv *testenv.Server, client []capture.Chunk, pid int, comm string) {
	t.Helper()
	if len(client) == 0 {
		t.Fatalf("%s (pid %d): no chunks", comm, pid)
	}
	var local netip.AddrPort
	for _, ch := range client {
		if ch.Kind != capture.Data {
			continue
		}
		if ch.Library != KindGnuTLS {
			t.Errorf("%s: library %q, want %q", comm, ch.Library, KindGnuTLS)
		}
		if !local.IsValid() {
			local = ch.Local
		}
	}
	if !local.IsValid() || !local.Addr().IsLoopback() {
		t.Fatalf("%s: local address %s, want a loopback address:\n%s", comm, local, summary(client))
	}
	checkMeta(t, client, pid, comm, local, srv.Addr, 0x0304)
	// nginx saw the same connection from the other end.
	c.waitFor("nginx's side of the connection", srv.PID(), func(cs []capture.Chunk) bool {
		return slices.ContainsFunc(cs, func(ch capture.Chunk) bool { return ch.Remote == local && ch.Library == KindOpenSSL })
	})
}

// ofConn returns the chunks of one connection of one process.
func ofConn(cs []capture.Chunk, conn uint64) []capture.Chunk {
	var out []capture.Chunk
	for _, ch := range cs {
		if ch.Conn == conn {
			out = append(out, ch)
		}
	}
	return out
}

func TestGnuTLSWget(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	small := []byte("gnutls wget body\n")
	big := body(1<<20, 12)
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"small.txt": small, "big.bin": big}})
	c := startCapture(t, Options{})
	gnutls := slices.IndexFunc(c.src.Libraries(), func(l Library) bool { return l.Kind == KindGnuTLS })
	if gnutls < 0 {
		t.Fatalf("no GnuTLS library attached without options: %+v", c.src.Libraries())
	}
	if l := c.src.Libraries()[gnutls]; l.Found != FoundSearch || !slices.Contains(l.Symbols, "gnutls_record_send2") || slices.Contains(l.Symbols, "gnutls_record_send") {
		t.Errorf("GnuTLS attached as %+v, want found by search, with gnutls_record_send2 and without send (its tail call)", l)
	}

	for _, tt := range []struct {
		path string
		body []byte
	}{{"/small.txt", small}, {"/big.bin", big}} {
		t.Run(tt.path, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			pid := runGnuTLSProgram(t, exec.Command("wget", "-q", "--no-check-certificate", "-U", "tlstap-test", "-O", out, srv.URL(tt.path))).PID()
			got, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(got, tt.body) {
				t.Fatalf("wget downloaded %d bytes (%v), want %d", len(got), err, len(tt.body))
			}
			cs := c.waitClosed(pid)
			req := string(concat(cs, capture.Write))
			if !strings.HasPrefix(req, "GET "+tt.path+" HTTP/1.1\r\n") || !strings.Contains(req, "User-Agent: tlstap-test\r\n") {
				t.Errorf("wget wrote %q, want its GET %s", req, tt.path)
			}
			resp := concat(cs, capture.Read)
			head, payload, ok := bytes.Cut(resp, []byte("\r\n\r\n"))
			if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.Equal(payload, tt.body) {
				t.Errorf("wget read %d bytes; want a 200 response with exactly the %d-byte body (got %d body bytes)", len(resp), len(tt.body), len(payload))
			}
			checkGnuTLSConn(t, c, srv, cs, pid, "wget")
		})
	}
}

func TestGnuTLSCli(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("gnutls-cli body\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"cli.txt": payload}})
	c := startCapture(t, Options{})

	req := "GET /cli.txt HTTP/1.1\r\nHost: tlstap\r\nConnection: close\r\n\r\n"
	cmd := exec.Command("gnutls-cli", "--insecure", "--port", strconv.Itoa(int(srv.Addr.Port())), srv.Addr.Addr().String())
	// gnutls-cli stops reading the socket at its stdin's end; keep stdin
	// open until the response is in.
	p := testenv.StartCmd(t, cmd)
	if _, err := io.WriteString(p.Stdin, req); err != nil {
		t.Fatal(err)
	}
	cs := c.waitFor("the response", p.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), payload)
	})
	p.Stdin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p.Wait(ctx) // its exit status after the server closed is not the point
	if got := string(concat(cs, capture.Write)); got != req {
		t.Errorf("gnutls-cli wrote %q, want %q", got, req)
	}
	if !bytes.HasPrefix(concat(cs, capture.Read), []byte("HTTP/1.1 200 OK\r\n")) {
		t.Errorf("gnutls-cli read %q, want a 200 response", concat(cs, capture.Read))
	}
	checkGnuTLSConn(t, c, srv, cs, p.PID(), "gnutls-cli")
}

// gitRepo makes a bare repository served by nginx as static files (git's
// "dumb" HTTP protocol) and returns its files and the commit it holds.
func gitRepo(t *testing.T) (map[string][]byte, string) {
	t.Helper()
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, "repo.git")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("served over https by nginx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("-C", work, "add", "README")
	git("-C", work, "commit", "-q", "-m", "first")
	head := git("-C", work, "rev-parse", "HEAD")
	git("clone", "-q", "--bare", work, bare)
	git("-C", bare, "update-server-info")

	files := map[string][]byte{}
	err := filepath.WalkDir(bare, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, head
}

// gitComm is the comm of git's https helper, git-remote-https, which runs
// the TLS (through libcurl-gnutls): 15 bytes of its name.
const gitComm = "git-remote-http"

func TestGnuTLSGit(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	files, head := gitRepo(t)
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: files})
	c := startCapture(t, Options{})
	url := srv.URL("/repo.git")

	for _, tt := range []struct {
		name string
		args []string
		path string // a request the helper must make
	}{
		{"ls-remote", []string{"ls-remote", url}, "/repo.git/info/refs"},
		{"clone", []string{"clone", "-q", url, filepath.Join(t.TempDir(), "clone")}, "/repo.git/objects/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("git", tt.args...)
			cmd.Env = append(os.Environ(), "GIT_SSL_NO_VERIFY=1", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "GIT_TERMINAL_PROMPT=0")
			p := runGnuTLSProgram(t, cmd)
			if tt.name == "ls-remote" && !strings.Contains(p.Output(), head) {
				t.Errorf("git ls-remote printed %q, want commit %s", p.Output(), head)
			}
			// The helper is git's child: find it as the process that asked
			// this server for the path.
			var helper int
			c.waitFor("git-remote-https's request for "+tt.path, -1, func(cs []capture.Chunk) bool {
				for _, ch := range cs {
					if ch.Comm == gitComm && ch.Remote == srv.Addr && ch.Dir == capture.Write &&
						bytes.Contains(ch.Data, []byte("GET "+tt.path)) {
						helper = int(ch.PID)
						return true
					}
				}
				return false
			})
			cs := c.waitClosed(helper)
			resp := concat(cs, capture.Read)
			if !bytes.Contains(resp, []byte("HTTP/1.1 200 OK\r\n")) {
				t.Errorf("git-remote-https read %q, want a 200 response", resp[:min(len(resp), 200)])
			}
			if tt.name == "ls-remote" && !bytes.Contains(resp, []byte(head+"\trefs/heads/main")) {
				t.Errorf("git-remote-https's responses lack info/refs with %s", head)
			}
			for _, conn := range conns(cs) {
				checkGnuTLSConn(t, c, srv, ofConn(cs, conn), helper, gitComm)
			}
		})
	}
}

// conns lists the connections in cs in order of first appearance.
func conns(cs []capture.Chunk) []uint64 {
	var out []uint64
	for _, ch := range cs {
		if !slices.Contains(out, ch.Conn) {
			out = append(out, ch.Conn)
		}
	}
	return out
}

func TestGnuTLSAptHelper(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := body(5000, 13)
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"apt.bin": payload}})
	c := startCapture(t, Options{})

	// apt's methods drop to the _apt user: give it a directory it can write.
	dir, err := os.MkdirTemp("", "tlstap-apt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "apt.bin")
	runGnuTLSProgram(t, exec.Command("/usr/lib/apt/apt-helper",
		"-o", "Acquire::https::Verify-Peer=false", "-o", "Acquire::https::Verify-Host=false",
		"download-file", srv.URL("/apt.bin"), out))
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("apt-helper downloaded %d bytes (%v), want %d", len(got), err, len(payload))
	}
	// The https method is a child of apt-helper; its comm is "https".
	var method int
	c.waitFor("apt's https method to send its request", -1, func(cs []capture.Chunk) bool {
		for _, ch := range cs {
			if ch.Comm == "https" && ch.Dir == capture.Write && bytes.Contains(ch.Data, []byte("GET /apt.bin HTTP/1.1")) {
				method = int(ch.PID)
				return true
			}
		}
		return false
	})
	cs := c.waitFor("the response body", method, func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), payload)
	})
	checkGnuTLSConn(t, c, srv, cs, method, "https")
	if n := len(conns(cs)); n != 1 {
		t.Errorf("apt's https method used %d connections, want 1", n)
	}
}

// TestGnuTLSRetry: sends that fail with GNUTLS_E_AGAIN and are retried with
// a NULL buffer (testdata/gnutls_again) are captured exactly once each: the
// captured stream equals what the server read, byte for byte.
func TestGnuTLSRetry(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	const records, recSize = 64, 16384
	bin := filepath.Join(t.TempDir(), "again")
	if out, err := exec.Command("gcc", "-O2", "-o", bin, "testdata/gnutls_again/again.c", "-l:libgnutls.so.30").CombinedOutput(); err != nil {
		t.Fatalf("build the GnuTLS client: %v\n%s", err, out)
	}
	cert := testenv.NewCert(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The server reads late, so the client's small send buffer fills and
	// its sends fail with E_AGAIN. tlstap does not see this process.
	read := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			read <- nil
			return
		}
		defer conn.Close()
		if err := conn.(*tls.Conn).Handshake(); err != nil {
			read <- nil
			return
		}
		time.Sleep(300 * time.Millisecond)
		b, _ := io.ReadAll(conn)
		read <- b
	}()
	c := startCapture(t, Options{})

	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	p := runGnuTLSProgram(t, exec.Command(bin, port, strconv.Itoa(records)))
	var want []byte
	for i := range records {
		want = append(want, bytes.Repeat([]byte{byte('a' + i%26)}, recSize)...)
	}
	if got := <-read; !bytes.Equal(got, want) {
		t.Fatalf("the server read %d bytes, want the client's %d", len(got), len(want))
	}
	var again int
	if _, err := fmt.Sscanf(p.Output(), "again=%d", &again); err != nil || again == 0 {
		t.Fatalf("the client never hit E_AGAIN (output %q): the test proves nothing", p.Output())
	}
	cs := c.waitClosed(p.PID()) // a loss is reported by the close at the latest
	if got := concat(cs, capture.Write); !bytes.Equal(got, want) {
		t.Errorf("captured %d written bytes after %d E_AGAIN retries, want exactly the %d sent", len(got), again, len(want))
	}
	// A retry emitted again would read its NULL buffer and count a loss.
	if i := slices.IndexFunc(cs, func(ch capture.Chunk) bool { return ch.Kind == capture.Lost }); i >= 0 {
		t.Errorf("capture reported a loss: %+v", cs[i])
	}
	checkMeta(t, cs, p.PID(), "again", netip.AddrPort{}, netip.MustParseAddrPort(ln.Addr().String()), 0x0304)
}

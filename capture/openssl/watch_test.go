package openssl

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/capture"
	"github.com/tlstap/tlstap/capture/watch"
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
	payload := []byte("private libssl body\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"p.txt": payload}})
	dir, lib := privateCopy(t)
	c := startCapture(t, Options{})

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
	if got.Kind != KindOpenSSL || !strings.HasPrefix(got.Found, watch.HowMmap) {
		t.Errorf("private libssl attached as %+v, want kind openssl found by %q", got, watch.HowMmap)
	}
}

// TestWatchMountNamespace: curl in its own mount namespace, with a private
// libssl bind-mounted over the system's, is captured once the watcher has
// attached to that file (through /proc/PID/root). curl makes its first
// request right after start, inside the attach window, so the test waits
// for the second, which --rate delays by 500 ms.
func TestWatchMountNamespace(t *testing.T) {
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"a.txt": []byte("first\n"), "b.txt": []byte("second body\n")}})
	_, lib := privateCopy(t)
	sys, err := filepath.EvalSymlinks(systemLibssl(t))
	if err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, Options{})

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
	got := attachedAs(t, c, lib)
	if !strings.HasPrefix(got.Found, watch.HowExec) && !strings.HasPrefix(got.Found, watch.HowMmap) {
		t.Errorf("private libssl found as %q, want by the watcher", got.Found)
	}
}

package openssl

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// systemLibssl is the libssl curl and nginx use on this machine.
func systemLibssl(t *testing.T) string {
	t.Helper()
	for _, p := range ldconfigLibssl() {
		if lib, _, err := inspect(p); err == nil && lib.Kind == KindOpenSSL {
			return p
		}
	}
	t.Fatal("no OpenSSL libssl in ldconfig's cache: apt-get install libssl3")
	return ""
}

func TestInspectSystemLibssl(t *testing.T) {
	lib, off, err := inspect(systemLibssl(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_do_handshake", "SSL_free"}; !slices.Equal(lib.Symbols, want) {
		t.Errorf("symbols %v, want %v", lib.Symbols, want)
	}
	// The library's version must agree with what the openssl tool says.
	out := string(testenv.Run(t, "openssl", "version"))
	if !strings.HasPrefix(out, "OpenSSL "+lib.Version+".") {
		t.Errorf("version %q, openssl says %q", lib.Version, out)
	}
	if off == 0 {
		t.Errorf("no version offset for OpenSSL %s", lib.Version)
	}
}

func TestInspectRejects(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "libssl.so.3")
	if err := os.WriteFile(notELF, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/bin/true", // ELF without OpenSSL
		notELF,
		filepath.Join(dir, "missing.so"),
	} {
		if _, _, err := inspect(p); err == nil {
			t.Errorf("inspect(%s) accepted it", p)
		}
	}
}

func TestDiscoverFindsSystemLibssl(t *testing.T) {
	want, _, err := inspect(systemLibssl(t))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range discover() {
		if lib, _, err := inspect(p); err == nil && lib.Inode == want.Inode && lib.Dev == want.Dev {
			found = true
		}
	}
	if !found {
		t.Errorf("discover() misses %s", want.Path)
	}
}

func TestParseLdconfig(t *testing.T) {
	in := `1234 libs found in cache ` + "`/etc/ld.so.cache'" + `
	libssl3.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl3.so
	libssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3
	libssl.so.1.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libssl.so.1.1
	libssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so
	libsslfoo.so.3 (libc6,x86-64) => /lib/libsslfoo.so.3
	libcrypto.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcrypto.so.3
	libnspr4.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libnspr4.so
	libnss3.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libnss3.so
garbage line
 => 
`
	got := parseLdconfig(strings.NewReader(in))
	want := []string{
		"/lib/x86_64-linux-gnu/libssl3.so", // NSS's
		"/lib/x86_64-linux-gnu/libssl.so.3",
		"/usr/lib/x86_64-linux-gnu/libssl.so.1.1",
		"/lib/x86_64-linux-gnu/libssl.so",
		"/lib/x86_64-linux-gnu/libnspr4.so",
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseLdconfig = %q, want %q", got, want)
	}
}

func TestVersionFromSymbols(t *testing.T) {
	for _, tt := range []struct {
		versions     []string
		major, minor int
		ok           bool
		offset       uint64
	}{
		{[]string{"OPENSSL_1_1_0", "OPENSSL_1_1_1"}, 1, 1, true, 1},
		{[]string{"OPENSSL_3.0.0", "OPENSSL_3.0.9"}, 3, 0, true, 1},
		{[]string{"OPENSSL_3.0.0", "OPENSSL_3.2.0", "OPENSSL_3.1.0"}, 3, 2, true, 65},
		{[]string{"GLIBC_2.2.5"}, 0, 0, false, 0},
		{nil, 0, 0, false, 0},
	} {
		major, minor, ok := versionFromSymbols(tt.versions)
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("versionFromSymbols(%q) = %d.%d %v, want %d.%d %v", tt.versions, major, minor, ok, tt.major, tt.minor, tt.ok)
		}
		if off := versionOffset(major, minor); ok && off != tt.offset {
			t.Errorf("versionOffset(%d, %d) = %d, want %d", major, minor, off, tt.offset)
		}
	}
}

func FuzzParseLdconfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, p := range parseLdconfig(bytes.NewReader(in)) {
			if !strings.Contains(string(in), p) {
				t.Fatalf("path %q is not in the input", p)
			}
		}
	})
}

// A library replaced on disk (a package upgrade writes a new file and
// renames it over the old path) is re-attached by path: the new file is
// attached before the old one is detached, and programs loading the new
// file are captured.
func TestReplaceLib(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	sys := systemLibssl(t)
	content, err := os.ReadFile(sys)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, filepath.Base(sys))
	install := func() {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, content, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	install()
	c := startCapture(t, Options{Libs: []string{path}})
	old := c.src.Libraries()[0]

	install()
	lib, err := c.src.AttachLib(path)
	if err != nil {
		t.Fatal(err)
	}
	if lib.Inode == old.Inode {
		t.Fatal("the replaced file has the old inode")
	}
	if libs := c.src.Libraries(); len(libs) != 1 || libs[0].Inode != lib.Inode {
		t.Errorf("Libraries() = %+v, want only the new inode %d", libs, lib.Inode)
	}

	payload := []byte("through the new library\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"n.txt": payload}})
	cmd := exec.Command("curl", "-sSk", "-o", "/dev/null", srv.URL("/n.txt"))
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
	p := testenv.StartCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("curl: %v %s", err, p.Output())
	}
	cs := c.waitClosed(p.PID())
	if !bytes.HasSuffix(concat(cs, capture.Read), payload) {
		t.Errorf("curl on the new library read %q", concat(cs, capture.Read))
	}
	// nginx uses the system libssl, which is not attached.
	if n := len(ofPID(c.snapshot(), srv.PID())); n != 0 {
		t.Errorf("%d chunks from nginx, which does not use the attached file", n)
	}
}

// A program with OpenSSL linked in statically is attached by its own path.
func TestStaticBinary(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	dir := t.TempDir()
	bin := filepath.Join(dir, "sslpair")
	testenv.Run(t, "gcc", "-O2", "-o", bin, "../../../scripts/bench/ssl_bench.c",
		"-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic", "-ldl", "-pthread")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	needed, _ := f.ImportedLibraries()
	f.Close()
	if slices.ContainsFunc(needed, func(l string) bool { return strings.HasPrefix(l, "libssl") }) {
		t.Fatalf("test binary links libssl dynamically: %v", needed)
	}

	c := startCapture(t, Options{Libs: []string{bin}})
	libs := c.src.Libraries()
	if len(libs) != 1 || libs[0].Path != bin || !slices.Contains(libs[0].Symbols, "SSL_write") {
		t.Fatalf("Libraries() = %+v", libs)
	}

	cert := testenv.NewCert(t, dir)
	// The binary forks a server and its client writes 10 calls of 100 bytes.
	p := testenv.Start(t, bin, cert.CertFile, cert.KeyFile, "write", "10", "100")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("%v: %s", err, p.Output())
	}
	want := bytes.Repeat([]byte("w"), 1000)
	cs := c.waitFor("the client's writes", p.PID(), func(cs []capture.Chunk) bool {
		return bytes.Equal(concat(cs, capture.Write), want)
	})
	if n := len(data(cs, capture.Write)); n != 10 {
		t.Errorf("%d write chunks, want one per SSL_write (10)", n)
	}
	forked := func(all []capture.Chunk) []capture.Chunk {
		var server []capture.Chunk
		for _, ch := range all {
			if ch.Comm == "sslpair" && int(ch.PID) != p.PID() {
				server = append(server, ch)
			}
		}
		return server
	}
	server := forked(c.waitFor("the forked server's reads", -1, func(all []capture.Chunk) bool {
		return bytes.Equal(concat(forked(all), capture.Read), want)
	}))
	local := data(cs, capture.Write)[0].Local
	checkMeta(t, cs, p.PID(), "sslpair", local, data(server, capture.Read)[0].Local, 0x0304)
}

func TestVersionFromNumCode(t *testing.T) {
	for _, tt := range []struct {
		name         string
		code         []byte
		major, minor int
		ok           bool
	}{
		{"3.0.19 (node)", []byte{0xb8, 0x30, 0x01, 0x00, 0x30, 0xc3, 0x66, 0x2e}, 3, 0, true},
		{"3.2.1", []byte{0xb8, 0x10, 0x00, 0x20, 0x30, 0xc3}, 3, 2, true},
		{"1.1.1w", []byte{0xb8, 0x7f, 0x01, 0x10, 0x10, 0xc3}, 1, 1, true},
		{"no ret", []byte{0xb8, 0x30, 0x01, 0x00, 0x30, 0x90}, 0, 0, false},
		{"into another register", []byte{0xbb, 0x30, 0x01, 0x00, 0x30, 0xc3}, 0, 0, false},
		{"a load, not a constant", []byte{0x8b, 0x07, 0xc3}, 0, 0, false},
		{"zero", []byte{0xb8, 0, 0, 0, 0, 0xc3}, 0, 0, false},
		{"truncated", []byte{0xb8, 0x30}, 0, 0, false},
		{"empty", nil, 0, 0, false},
	} {
		major, minor, ok := versionFromNumCode(tt.code)
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("%s: versionFromNumCode(% x) = %d.%d %v, want %d.%d %v", tt.name, tt.code, major, minor, ok, tt.major, tt.minor, tt.ok)
		}
	}
}

// TestVersionFromCodeNode: node's OpenSSL version, read from the code of
// its OpenSSL_version_num, is the one its .rodata names.
func TestVersionFromCodeNode(t *testing.T) {
	path, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not installed (scripts/install-deps.sh): %v", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	var vaddr uint64
	for _, s := range syms {
		if s.Name == "OpenSSL_version_num" {
			vaddr = s.Value
		}
	}
	major, minor, ok := versionFromCode(f, vaddr)
	tmajor, tminor, tok := versionFromText(f)
	if !ok || !tok || major != tmajor || minor != tminor {
		t.Errorf("%s: version from code %d.%d (%v), from text %d.%d (%v); want both, equal", path, major, minor, ok, tmajor, tminor, tok)
	}
}

func FuzzVersionFromNumCode(f *testing.F) {
	f.Add([]byte{0xb8, 0x30, 0x01, 0x00, 0x30, 0xc3})
	f.Add([]byte{0x8b, 0x07, 0xc3})
	f.Fuzz(func(t *testing.T, code []byte) {
		if major, minor, ok := versionFromNumCode(code); ok && (major < 1 || major > 15 || minor < 0 || minor > 255) {
			t.Fatalf("version %d.%d out of OPENSSL_VERSION_NUMBER's range", major, minor)
		}
	})
}

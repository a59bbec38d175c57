package openssl

import (
	"bytes"
	"context"
	"debug/elf"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

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

package openssl

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

func TestAttachDetach(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	lib := systemLibssl(t)
	payload := []byte("attach detach\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"a.txt": payload}})
	c := startCapture(t, Options{Libs: []string{lib}})
	if got := c.src.Libraries(); len(got) != 1 || got[0].Path != lib {
		t.Fatalf("Libraries() = %+v, want just %s", got, lib)
	}

	// Another name for the same file is not attached twice: that would
	// report every call twice.
	alias := filepath.Join(t.TempDir(), "libssl-alias.so")
	if err := os.Symlink(lib, alias); err != nil {
		t.Fatal(err)
	}
	if _, err := c.src.AttachLib(alias); err != nil {
		t.Fatal(err)
	}
	if n := len(c.src.Libraries()); n != 1 {
		t.Errorf("%d libraries after attaching an alias, want 1", n)
	}

	if err := c.src.DetachLib(lib); err != nil {
		t.Fatal(err)
	}
	if err := c.src.DetachLib(lib); err == nil {
		t.Error("detaching twice succeeded")
	}
	unseen, _ := curl(t, srv.URL("/a.txt"))

	if _, err := c.src.AttachLib(lib); err != nil {
		t.Fatal(err)
	}
	seen, _ := curl(t, srv.URL("/a.txt"))
	cs := c.waitClosed(seen)
	if !bytes.HasSuffix(concat(cs, capture.Read), payload) {
		t.Errorf("after re-attaching, curl read %q", concat(cs, capture.Read))
	}
	// The ring is in order: the detached curl's chunks would be here by now.
	if n := len(ofPID(c.snapshot(), unseen)); n != 0 {
		t.Errorf("%d chunks from a curl run while detached", n)
	}
}

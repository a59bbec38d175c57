package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestRunStatusProcesses: the status lists each attached file with the
// number of processes that map it now. A private copy of libssl is mapped
// by exactly the two Python processes started here, then by one.
func TestRunStatusProcesses(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	dir := t.TempDir()
	for _, name := range []string{"libssl.so.3", "libcrypto.so.3"} {
		b, err := os.ReadFile(filepath.Join("/usr/lib/x86_64-linux-gnu", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lib := filepath.Join(dir, "libssl.so.3")
	src, err := openssl.New(openssl.Options{Libs: []string{lib}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("openssl.New: %v", err)
	}
	defer src.Close()
	cfg := config.Default()
	cfg.Output.Format = "none"
	ap := New(Options{Config: cfg, Stdout: io.Discard, Stderr: io.Discard}).NewApplier(src)

	var procs []*testenv.Proc
	for range 2 {
		cmd := exec.Command(testenv.Python(t), "-c", "import ssl, time; print('up', flush=True); time.sleep(600)")
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+dir)
		p := testenv.StartCmd(t, cmd)
		ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
		err := p.WaitOutput(ctx, "up")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	processes := func() int {
		st := ap.RunStatus()
		if len(st.Libraries) != 1 || st.Libraries[0].Path != lib || st.Libraries[0].Kind != openssl.KindOpenSSL {
			t.Fatalf("status libraries %+v, want only %s", st.Libraries, lib)
		}
		return st.Libraries[0].Processes
	}
	if n := processes(); n != 2 {
		t.Errorf("%s used by %d processes, want 2", lib, n)
	}
	procs[0].Cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	defer cancel()
	procs[0].Wait(ctx)
	if n := processes(); n != 1 {
		t.Errorf("%s used by %d processes after one exited, want 1", lib, n)
	}
}

package testenv

import (
	"os"
	"testing"
)

// RequireRoot skips t unless it runs as root, naming what needs root (the
// eBPF programs, a capture, nginx's port), so that `go test ./...` passes
// for an unprivileged user and says what it did not run. As root, as in
// CI and on the project's machines, it does nothing: there these tests
// run for real.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("%s needs root; run the tests as root to run it", what)
	}
}

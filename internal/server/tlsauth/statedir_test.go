package tlsauth

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultStateDir(t *testing.T) {
	want := "/var/lib/tlstap"
	if os.Geteuid() != 0 {
		d, _ := os.UserConfigDir()
		want = filepath.Join(d, "tlstap")
	}
	if got := DefaultStateDir(); got != want {
		t.Errorf("DefaultStateDir() = %q, want %q", got, want)
	}
}

package gotls

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestVersOffset checks the vers offset table against what each installed
// toolchain's reflect says about its own tls.Conn.
func TestVersOffset(t *testing.T) {
	for _, gocmd := range []string{"go", "/usr/lib/go-1.19/bin/go"} {
		t.Run(gocmd, func(t *testing.T) {
			bin := build(t, "tlsprog", gocmd, nil)
			out, err := exec.Command(bin, "vers").Output()
			if err != nil {
				t.Fatal(err)
			}
			want, err := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := Inspect(bin)
			if err != nil {
				t.Fatal(err)
			}
			if b.VersOffset != want {
				t.Errorf("%s: VersOffset = %d, reflect says %d", b.GoVersion, b.VersOffset, want)
			}
		})
	}
	for _, tc := range []struct {
		v    string
		want int
	}{{"go1.17.13", -1}, {"go1.20.14", -1}, {"go1.21.0", 72}, {"go1.26rc1", 72}, {"go1.27", -1}, {"devel", -1}} {
		if got := versOffset(tc.v); got != tc.want {
			t.Errorf("versOffset(%q) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

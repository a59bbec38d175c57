package cli

import (
	"regexp"
	"runtime"
	"testing"
)

func TestVersion(t *testing.T) {
	code, stdout, _ := runMain(t, "version")
	want := regexp.MustCompile(`^tlstap \S+ ` + regexp.QuoteMeta(runtime.Version()) + ` ` + runtime.GOOS + `/` + runtime.GOARCH + "\n$")
	if code != 0 || !want.MatchString(stdout) {
		t.Errorf("version: code %d, output %q", code, stdout)
	}
}

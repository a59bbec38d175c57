package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerFlagsJudgedFirst: a bad stream-server setting is a usage
// error from config.Validate (step 1 of run), before the recording is
// created, the capture attaches or anything listens; it used to surface
// from server.New, after the capture had started.
func TestServerFlagsJudgedFirst(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:28999", "--tls=false"}, "--tls: TLS can only be turned off on loopback, not on 0.0.0.0:28999 (--listen)"},
		{[]string{"--token", "short"}, "--token must be at least 16 characters"},
		{[]string{"--listen", "", "--ecaptureq", "ws://0.0.0.0:28998/"}, "--ecaptureq: non-loopback address 0.0.0.0:28998 needs a token"},
		{[]string{"--tls-cert", filepath.Join(t.TempDir(), "none.pem"), "--tls-key", filepath.Join(t.TempDir(), "none.pem")}, "--tls-cert with --tls-key: "},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "x.rec")
			args := append([]string{"tls", "--record", rec}, tt.args...)
			code, _, stderr := runMain(t, args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			if _, err := os.Stat(rec); !os.IsNotExist(err) {
				t.Errorf("the recording was created before the settings were judged (stat: %v)", err)
			}
			for _, early := range []string{"capturing", "serving events", "attach"} {
				if strings.Contains(stderr, early) {
					t.Errorf("reported after %q:\n%s", early, stderr)
				}
			}
		})
	}
}

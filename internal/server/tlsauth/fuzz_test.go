package tlsauth

import (
	"strings"
	"testing"
)

// FuzzParseFingerprint: user-supplied pins never panic, and whatever
// parses formats back to something that parses to the same value.
func FuzzParseFingerprint(f *testing.F) {
	f.Add("4F:73:F4:3E:0C:7C:95:8C:EE:3C:B0:14:AD:A4:C8:DD:C5:C0:99:62:8E:E1:54:2D:26:2D:99:6D:BE:C5:7B:3D")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		again, err := ParseFingerprint(fp.String())
		if err != nil || again != fp {
			t.Fatalf("%q -> %s does not round-trip: %v", s, fp, err)
		}
		if again, err := ParseFingerprint(strings.ToLower(strings.ReplaceAll(fp.String(), ":", ""))); err != nil || again != fp {
			t.Fatalf("plain form of %s: %v", fp, err)
		}
	})
}

package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/golden"
)

// TestDemoGolden plays the embedded demo through the whole command line.
// The demo shifts timestamps to now, so they are replaced by their offset
// from the earliest event before comparing.
func TestDemoGolden(t *testing.T) {
	code, stdout, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "json", "--listen", "", "--node=")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	got := normaliseDemo(t, stdout)
	golden.Check(t, filepath.Join("testdata", "demo.jsonl"), []byte(got))
}

// normaliseDemo replaces each event's time by its offset from the earliest
// event, leaving every other byte of the output as it was.
func normaliseDemo(t *testing.T, out string) string {
	t.Helper()
	first := int64(-1)
	for _, m := range stamp.FindAllStringSubmatch(out, -1) {
		ts, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if first < 0 || ts < first {
			first = ts
		}
	}
	if n, lines := len(stamp.FindAllString(out, -1)), strings.Count(out, "\n"); n != lines || n == 0 {
		t.Fatalf("%d time fields in %d lines", n, lines)
	}
	return stamp.ReplaceAllStringFunc(out, func(s string) string {
		ts, _ := strconv.ParseInt(stamp.FindStringSubmatch(s)[1], 10, 64)
		return fmt.Sprintf(`"timestamp":%d,"time":"+%s"`, ts-first, time.Duration(ts-first))
	})
}

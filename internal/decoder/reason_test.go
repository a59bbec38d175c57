package decoder

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestReasonsDocumented: doc.go lists every Reason, each once, and nothing
// else, so the documented list cannot drift from the code.
func TestReasonsDocumented(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^//\t(http1|http2|websocket|session|content|raw) +([a-z0-9_]+) +\S`)
	var documented []string
	for _, m := range line.FindAllSubmatch(src, -1) {
		documented = append(documented, string(m[1])+"/"+string(m[2]))
	}
	var declared []string
	for _, r := range Reasons() {
		declared = append(declared, r.Decoder()+"/"+r.String())
	}
	if !slices.Equal(documented, declared) {
		t.Errorf("doc.go lists (in this order)\n%q\nbut the Reason constants are\n%q", documented, declared)
	}
}

// TestReasonNames: every reason has a decoder label and a unique, label-safe
// name; out-of-range values do not panic.
func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	label := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for _, r := range Reasons() {
		d, n := r.Decoder(), r.String()
		if !label.MatchString(d) || !label.MatchString(n) {
			t.Errorf("reason %d: labels %q %q are not lower_snake_case", r, d, n)
		}
		if seen[d+"/"+n] {
			t.Errorf("reason %s/%s declared twice", d, n)
		}
		seen[d+"/"+n] = true
	}
	if len(seen) != int(numReasons)-1 {
		t.Errorf("%d reasons named, %d declared", len(seen), numReasons-1)
	}
	if r := Reason(255); r.String() != "unknown" || r.Decoder() != "" {
		t.Errorf("Reason(255) = %q/%q", r.Decoder(), r.String())
	}
}

// TestCounts: Limits.CountError reaches the counter, ignores NoReason, and
// costs nothing without one.
func TestCounts(t *testing.T) {
	var c Counts
	l := Limits{Errors: &c}
	l.CountError(HTTP2FrameDataStream0)
	l.CountError(HTTP2FrameDataStream0)
	l.CountError(NoReason)
	Limits{}.CountError(SessionNoProtocol)
	if got := c.Get(HTTP2FrameDataStream0); got != 2 {
		t.Errorf("frame_data_stream_0 counted %d times, want 2", got)
	}
	if got := c.Counted(); !slices.Equal(got, []Reason{HTTP2FrameDataStream0}) {
		t.Errorf("Counted() = %v", got)
	}
	if c.Get(Reason(255)) != 0 {
		t.Error("Get out of range")
	}
	if l != (Limits{Errors: &c}) {
		t.Error("Limits with a counter are not comparable")
	}
}

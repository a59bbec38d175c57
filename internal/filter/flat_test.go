package filter

import (
	"testing"
)

// TestFlatMeansTheTree: for every filter of the conformance table and its
// negation, the flattened steps (when the filter has them) select exactly
// the events the expression tree does.
func TestFlatMeansTheTree(t *testing.T) {
	tb, evs := loadTable(t)
	flat := 0
	for _, c := range tb.Cases {
		f, err := Parse(c.Filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.Filter, err)
		}
		for _, g := range []*Filter{f, Not(f), And(f, f)} {
			if !flattened(g) {
				continue
			}
			flat++
			for _, n := range names(evs) {
				want := g.root.match(evs[n])
				if got := matchSteps(nil, g.steps, evs[n]); got != want {
					t.Errorf("%q on %s: steps say %v, tree says %v", g.String(), n, got, want)
				}
				if got := g.Match(evs[n]); got != want {
					t.Errorf("%q on %s: prefix and rest say %v, tree says %v", g.String(), n, got, want)
				}
			}
		}
	}
	// The table is mostly conjunctions; if none flattened, the fast path
	// would be dead code and this test would prove nothing.
	if flat < len(tb.Cases)/2 {
		t.Errorf("only %d of %d filters flattened", flat, len(tb.Cases))
	}
}

// flattened: f's steps are its terms, not one walk of the tree.
func flattened(f *Filter) bool { return len(f.steps) > 0 && f.steps[0].op != opTree }

// TestFlatten: which shapes get steps, and in which order.
func TestFlatten(t *testing.T) {
	for _, c := range []struct {
		filter string
		ops    []op
	}{
		{"pid=41,42 & comm=curl & type=request & host=*.example.com & port=8443",
			[]op{opType, opPID, opPort, opExact, opHost}},
		{"host=a.com & !(status=404) & ~b x", []op{opStatus, opHost, opFunc}},
		{"!(host=a.com | port=1)", []op{opTree}},
		{"!(host=a.com & port=1)", []op{opTree}},
		{"host=a.com | port=1", []op{opTree}},
		{"pid>10 & method!=GET", []op{opText, opFunc}},
		{"~d example", []op{opHost}},
		{"host~=example", []op{opFunc}},
		{"!!port=443", []op{opPort}},
		{"", nil},
	} {
		f, err := Parse(c.filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.filter, err)
		}
		var got []op
		for _, s := range f.steps {
			got = append(got, s.op)
		}
		if len(got) != len(c.ops) {
			t.Errorf("%q: steps %v, want %v", c.filter, got, c.ops)
			continue
		}
		for i := range got {
			if got[i] != c.ops[i] {
				t.Errorf("%q: steps %v, want %v", c.filter, got, c.ops)
				break
			}
		}
	}
}

// TestFlatNegation: "!=" and "!" on each step kind, against the tree.
func TestFlatNegation(t *testing.T) {
	_, evs := loadTable(t)
	for _, s := range []string{
		"type!=request", "pid!=1-100000", "uid!=0", "port!=443", "status!=200",
		"comm!=curl", "host!=*.example.com", "method!=GET", "path!=/api/*",
		"!type=request", "!comm=curl", "!host=*.example.com", "!path=/api/*",
	} {
		f, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if !flattened(f) {
			t.Fatalf("%q: not flattened", s)
		}
		for _, n := range names(evs) {
			want := f.root.match(evs[n])
			if got := matchSteps(nil, f.steps, evs[n]); got != want {
				t.Errorf("%q on %s: steps say %v, tree says %v", s, n, got, want)
			}
			if got := f.Match(evs[n]); got != want {
				t.Errorf("%q on %s: prefix and rest say %v, tree says %v", s, n, got, want)
			}
		}
	}
}

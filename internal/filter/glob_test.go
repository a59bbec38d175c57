package filter

import (
	"strings"
	"testing"
)

// TestGlob and TestGlobFold came with the glob from internal/forward,
// unchanged.
func TestGlob(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"", "", true},
		{"*", "", true},
		{"*", "anything/at/all", true},
		{"text/*", "text/html", true},
		{"text/*", "application/json", false},
		{"/api/*", "/api/v1/users", true},
		{"/api/*", "/apix", false},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "example.com", false},
		{"a?c", "abc", true},
		{"a?c", "aéc", true},
		{"a?c", "ac", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c", "abcab", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, tt := range tests {
		if got := glob(tt.p, tt.s, false); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestGlobFold(t *testing.T) {
	// Patterns are lower-cased by ParseFilter; values keep their case.
	if !glob("application/json", "Application/JSON", true) {
		t.Error("fold did not match")
	}
	if glob("application/json", "Application/JSON", false) {
		t.Error("matched without fold")
	}
	if !glob("é*", "é", true) {
		t.Error("non-ASCII bytes must still match themselves")
	}
}

// TestHostOnly: forward's host-without-port cases, now what a host
// pattern without a port matches.
func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"example.com:8443": "example.com",
		"[::1]:8443":       "::1",
		"[::1]":            "::1",
		"::1":              "::1",
		"[broken":          "[broken",
	} {
		p := newPattern(lookupKey("host"), Eq, want)
		if !hostMatch(&p, in) {
			t.Errorf("host=%s does not match %q", want, in)
		}
	}
}

func TestIndex(t *testing.T) {
	for _, tt := range []struct {
		s, sub string
		fold   bool
		want   bool
	}{
		{"", "", false, true},
		{"abc", "", false, true},
		{"Hello", "ell", false, true},
		{"Hello", "hel", false, false},
		{"Hello", "hel", true, true},
		{"ab", "abc", false, false},
	} {
		if got := index(tt.s, tt.sub, tt.fold); got != tt.want {
			t.Errorf("index(%q, %q, %v) = %v", tt.s, tt.sub, tt.fold, got)
		}
	}
}

// FuzzShape: the shortcut shapes match exactly what glob matches.
func FuzzShape(f *testing.F) {
	for _, s := range [][2]string{{"*.example.com", "api.Example.com"}, {"text/*", "text/html"}, {"*json*", "application/json"}, {"exact", "EXACT"}, {"a?c", "abc"}, {"*", ""}, {"**", "x"}} {
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, p, s string, fold bool) {
		if fold {
			p = strings.ToLower(p) // patterns are lowered when compiled
		}
		sh, lit := shapeOf(p)
		if got, want := matchShape(sh, lit, p, s, fold), glob(p, s, fold); got != want {
			t.Fatalf("pattern %q (shape %d, %q) on %q fold %v: %v, glob says %v", p, sh, lit, s, fold, got, want)
		}
	})
}

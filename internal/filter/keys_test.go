package filter

import (
	"strings"
	"testing"
)

// TestHostName: the host a port-less host pattern is matched against,
// against the rule it is written out from: cutPort, then the brackets of
// a bare IPv6 address.
func TestHostName(t *testing.T) {
	ref := func(host string) string {
		if h, _, ok := cutPort(host); ok {
			return h
		}
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			return host[1 : len(host)-1]
		}
		return host
	}
	for _, c := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com:443", "example.com"},
		{"EXAMPLE.com:8443", "EXAMPLE.com"},
		{"[::1]:443", "::1"},
		{"[::1]", "::1"},
		{"::1", "::1"},
		{"fe80::1:2", "fe80::1:2"},
		{"[::1", "[::1"},
		{"[fe80::1]x:1", "[fe80::1]x:1"},
		{"[]:1", ""},
		{"[]", ""},
		{"[", "["},
		{":", ""},
		{"a:", "a"},
		{":1", ""},
		{"]", "]"},
		{"", ""},
	} {
		if got := hostName(c.in); got != c.want || got != ref(c.in) {
			t.Errorf("hostName(%q) = %q, want %q (rule: %q)", c.in, got, c.want, ref(c.in))
		}
	}
}

// FuzzHostName: hostName is the rule for every text, and never panics.
func FuzzHostName(f *testing.F) {
	for _, s := range []string{"a.b:1", "[::1]:2", "[::1]", "::1", "[", "[]:", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := s
		if h, _, ok := cutPort(s); ok {
			want = h
		} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") && len(s) >= 2 {
			want = s[1 : len(s)-1]
		}
		if got := hostName(s); got != want {
			t.Errorf("hostName(%q) = %q, want %q", s, got, want)
		}
	})
}

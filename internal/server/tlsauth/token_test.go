package tlsauth

import (
	"net/http"
	"strings"
	"testing"
)

func TestRequestToken(t *testing.T) {
	for _, tt := range []struct {
		auth, url, want string
	}{
		{"Bearer abc", "/ws", "abc"},
		{"bearer  abc ", "/ws", "abc"},
		{"", "/ws?token=q", "q"},
		{"Bearer h", "/ws?token=q", "h"},
		{"Basic abc", "/ws?token=q", "q"},
		{"Basic abc", "/ws", ""},
		{"", "/ws", ""},
	} {
		r, _ := http.NewRequest("GET", tt.url, nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		if got := RequestToken(r); got != tt.want {
			t.Errorf("RequestToken(%q, %q) = %q, want %q", tt.auth, tt.url, got, tt.want)
		}
	}
	c := NewChecker("secret-token-123456")
	for in, want := range map[string]bool{"secret-token-123456": true, "secret-token-12345": false, "": false, "secret-token-1234567": false} {
		if c.Valid(in) != want {
			t.Errorf("Valid(%q) = %v", in, !want)
		}
	}
}

func TestNewToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if len(a) != 43 || a == b || strings.ContainsAny(a, "+/=") {
		t.Errorf("NewToken: %q %q", a, b)
	}
	// Drawn plainly, one token in 32 begins with '-' or '_': in 2,000 the
	// chance of none is 1e-28.
	for range 2000 {
		if tok := NewToken(); strings.IndexAny(tok[:1], "-_") == 0 {
			t.Fatalf("NewToken() = %q: a token beginning with %q is taken for an option on a command line", tok, tok[0])
		}
	}
}

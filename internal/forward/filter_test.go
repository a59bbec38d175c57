package forward

import (
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

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

func TestFilter(t *testing.T) {
	ev := &eventpb.Event{
		Type: 1, Host: "API.example.com:8443", Method: "POST", Path: "/api/v1/items?id=7",
		ContentType: "application/json; charset=utf-8", Pname: "curl",
	}
	tests := []struct {
		filter string
		want   bool
	}{
		{"", true},
		{"application/json", true},
		{"text/*", false},
		{"text/*,application/json", true}, // same key: alternatives
		{"content-type=application/*", true},
		{"ct=APPLICATION/JSON", true},
		{"host=api.example.com", true}, // port ignored without ':'
		{"host=api.example.com:8443", true},
		{"host=api.example.com:443", false},
		{"host=*.example.com,path=/api/*", true},
		{"host=*.example.com,path=/static/*", false}, // different keys: all must match
		{"path=/api/v1/items", true},                 // query ignored
		{"method=get|post", true},
		{"method=GET", false},
		{"method!=POST", false},
		{"method!=GET|DELETE", true},
		{"host!=*.example.com", false},
		{"type=http1-request", true},
		{"type=1", true},
		{"type=http2-*", false},
		{"pname=curl", true},
		{"pname=CURL", false}, // process names are case-sensitive
		{" content-type = application/json , host = *example.com ", true},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.filter, err)
			continue
		}
		if got := f.Match(ev); got != tt.want {
			t.Errorf("%q matched %v, want %v", tt.filter, got, tt.want)
		}
	}
}

func TestFilterNoContentType(t *testing.T) {
	f, err := ParseFilter("text/*")
	if err != nil {
		t.Fatal(err)
	}
	if f.Match(&eventpb.Event{Type: 1, Method: "GET"}) {
		t.Error("an event without Content-Type matched a content-type pattern")
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, s := range []string{"colour=red", "host=", "host=a||b", "=x"} {
		if _, err := ParseFilter(s); err == nil {
			t.Errorf("ParseFilter(%q) accepted", s)
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

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"example.com:8443": "example.com",
		"[::1]:8443":       "::1",
		"[::1]":            "::1",
		"::1":              "::1",
		"[broken":          "[broken",
		"":                 "",
	} {
		if got := hostOnly(in); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzFilter: no filter text and no event field may panic parsing or
// matching; a parsed filter's text round-trips.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		"content-type=text/*,host=*.example.com,path=/api/*",
		"application/json,text/*",
		"method=GET|HEAD|OPTIONS",
		"host!=tracking.example.com,type=http1-request|2",
		"pname=curl,ct=application/*",
	} {
		f.Add(s, "api.example.com:8443", "/api/v1?x=1", "application/json; charset=utf-8", "POST")
	}
	f.Fuzz(func(t *testing.T, filter, host, path, ctype, method string) {
		flt, err := ParseFilter(filter)
		if err != nil {
			return
		}
		if flt.String() != filter {
			t.Fatalf("String() = %q, want %q", flt.String(), filter)
		}
		ev := &eventpb.Event{Type: 1, Host: host, Path: path, ContentType: ctype, Method: method, Pname: host}
		flt.Match(ev)
	})
}

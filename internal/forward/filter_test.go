package forward

import (
	"strings"
	"testing"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

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

// TestFilterSyntaxes: how a --forward-filter is read (docs/filters.md,
// "Older spellings"), shown as the model's canonical expression.
func TestFilterSyntaxes(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"", ""},
		// old syntax
		{"application/json,text/*", "content-type=application/json | content-type=text/*"},
		{"application/json,text/*,host=api.*,method!=DELETE", "(content-type=application/json | content-type=text/*) & host=api.* & !method=DELETE"},
		{"method=GET|HEAD", "method=GET,HEAD"},
		{"pname=curl,ct=*json*", "comm=curl & content-type=*json*"},
		{" content-type = application/json , host = *example.com ", "content-type=application/json & host=*example.com"},
		{"host=*.example.com", "host=*.example.com"},
		// expressions
		{"~m POST & ~c 5xx", "method=POST & status=5xx"},
		{"pid=1,2", "pid=1,2"},
		{"host=a.com,b.com", "host=a.com,b.com"},
		{"method=GET,POST", "method=GET,POST"},
		{"path=/a,/b", "path=/a,/b"},
		{"host=a.com | host=b.com", "host=a.com | host=b.com"},
		{"(host=a.com,*.b.com)", "host=a.com,*.b.com"},
		{"status>=500", "status>=500"},
		{"!method=GET", "!method=GET"},
	} {
		f, err := ParseFilter(tt.text)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.text, err)
			continue
		}
		if got := f.Expr(); got != tt.want {
			t.Errorf("ParseFilter(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	_, err := ParseFilter("~m POST & (")
	if err == nil || !strings.Contains(err.Error(), "at column 12") {
		t.Errorf("error %v, want the expression parser's, with its position", err)
	}
}

// TestProxySafeMethodsWithExpression: proxy mode's GET/HEAD/OPTIONS
// default applies to an expression too, and an expression naming methods
// (~m included) replaces it.
func TestProxySafeMethodsWithExpression(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"~d *.example.com", "host=*.example.com & method=GET,HEAD,OPTIONS"},
		{"", "method=GET,HEAD,OPTIONS"},
		{"~m POST & ~d *.example.com", "method=POST & host=*.example.com"},
		{"host=a.com,method=POST", "host=a.com & method=POST"}, // the old syntax
	} {
		f, err := ParseFilter(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Has("method") {
			if f, err = f.withMethods(safeMethods...); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.Expr(); got != tt.want {
			t.Errorf("%q in proxy mode = %q, want %q", tt.text, got, tt.want)
		}
	}
}

package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestPageURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"wss://127.0.0.1:28256/ws?token=abc", "https://127.0.0.1:28256/#token=abc"},
		{"ws://[::1]:9/ws?token=a+b/c", "http://[::1]:9/#token=a%2Bb%2Fc"},
		{"wss://127.0.0.1:28256/ws", "https://127.0.0.1:28256/"},
		{"ws://127.0.0.1:1/", "http://127.0.0.1:1/"},
		{"http://127.0.0.1:1/ws", ""},
		{"::", ""},
		{"", ""},
	} {
		if got := PageURL(tt.in); got != tt.want {
			t.Errorf("PageURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tt := range []struct {
		path   string
		status int
		ctype  string
	}{
		{"/", 200, "text/html"},
		{"/ui/app.js", 200, "text/javascript"},
		{"/ui/filter.js", 200, "text/javascript"},
		{"/ui/worker.js", 200, "text/javascript"},
		{"/ui/style.css", 200, "text/css"},
		{"/ui/", 404, ""},
		{"/ui/nope.js", 404, ""},
		{"/ui/../webui.go", 404, ""},
		{"/ui/./app.js", 404, ""},
		{"/other", 404, ""},
	} {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.path, resp.StatusCode, tt.status)
			continue
		}
		if tt.status != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", tt.path, ct, tt.ctype)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", tt.path, h, got, want)
			}
		}
		if len(body) == 0 {
			t.Errorf("%s: empty", tt.path)
		}
	}
}

// TestNoInlineScript: the page works under its CSP only if every script
// is a file of its own, no handler is an attribute and nothing loads from
// elsewhere.
func TestNoInlineScript(t *testing.T) {
	page, err := assets.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllSubmatch(page, -1) {
		if !regexp.MustCompile(`src="/ui/[a-z]+\.js"`).Match(m[1]) || len(strings.TrimSpace(string(m[2]))) > 0 {
			t.Errorf("inline or foreign script: %s", m[0])
		}
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=|javascript:|https?://`).Match(page) {
		t.Error("index.html has an inline handler, a javascript: URL or an absolute URL")
	}
	entries, err := assets.ReadDir("assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := assets.ReadFile("assets/" + e.Name())
		if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']https?://|@import|eval\(|new Function`).Match(b) {
			t.Errorf("%s loads from elsewhere or evaluates code", e.Name())
		}
	}
}

// TestFilterJS runs filter.js and model.js under node against their
// table of cases (and the Go filter's, once it is in the tree).
func TestFilterJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed (scripts/install-deps.sh): %v", err)
	}
	out, err := exec.Command(node, "--test", "testdata/filter_test.cjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^# fail 0$`).Match(out) || !regexp.MustCompile(`(?m)^# pass [1-9]`).Match(out) {
		t.Fatalf("node --test:\n%s", out)
	}
	t.Logf("%s", regexp.MustCompile(`(?m)^# (pass|fail) .*$`).FindAll(out, -1))
}

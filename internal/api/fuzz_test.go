package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/config"
)

type plainMux struct{ *http.ServeMux }

func (m plainMux) Handle(p string, h http.Handler, _ bool) { m.ServeMux.Handle(p, h) }

// FuzzRequests: no body sent to PATCH /api/v1/config or POST /tls makes
// the API panic or answer 5xx, and whatever it accepts is valid.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"pipeline":{"tsize":16}}`,
		`{"capture":{"pids":[42],"comms":["curl"]},"output":{"hex":true}}`,
		`{"pid": 0, "uid": 0, "debug": false, "hex": false, "btf": 0, "per_cpu_map_size": 1024, "truncate_size": 0}`,
		`{"pid": 12345, "is_hex": true, "truncate_size": 64, "model": "text"}`,
		`{"model": "pcap", "pcapfile": "/tmp/x.pcapng"}`,
		`{"sinks":[{"addr":"/etc/passwd"}]}`,
	} {
		f.Add("/api/v1/config", s)
		f.Add("/tls", s)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		method := "PATCH"
		if path != "/api/v1/config" {
			path, method = "/tls", "POST"
		}
		a := api.New(api.Options{Config: config.Default(), StateDir: t.TempDir()})
		m := plainMux{http.NewServeMux()}
		a.Mount(m)
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		c, _ := a.Config()
		if errs := config.Validate(c); len(errs) > 0 {
			t.Fatalf("accepted an invalid config: %v", errs)
		}
	})
}

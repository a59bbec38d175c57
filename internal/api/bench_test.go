package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/stats"
)

// BenchmarkPatch is one PATCH through the handler: decode, merge,
// validate, diff, commit, encode (no network, no-op applier).
func BenchmarkPatch(b *testing.B) {
	a := api.New(api.Options{Config: config.Default(), StateDir: b.TempDir()})
	m := plainMux{http.NewServeMux()}
	a.Mount(m)
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("PATCH", "/api/v1/config", strings.NewReader(fmt.Sprintf(`{"pipeline":{"tsize":%d}}`, i)))
		req.Header.Set("Content-Type", "application/merge-patch+json")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}

// BenchmarkMetrics is one /metrics scrape with 200 tlstap series.
func BenchmarkMetrics(b *testing.B) {
	st := stats.NewSet()
	for i := range 200 {
		st.Counter(stats.DropsTotal, "drops", "reason", fmt.Sprint("r", i)).Add(uint64(i))
	}
	a := api.New(api.Options{Config: config.Default(), Stats: st})
	m := plainMux{http.NewServeMux()}
	a.Mount(m)
	for b.Loop() {
		req := httptest.NewRequest("GET", "/metrics", nil)
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

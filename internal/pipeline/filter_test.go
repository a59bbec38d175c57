package pipeline_test

import (
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/filter"
	"github.com/tlstap/tlstap/internal/pipeline"
)

// TestResponseCarriesRequestForFilters: the filter model matches a
// response by its request's method, host and path (docs/filters.md), which
// works because the pipeline copies them onto the response (fields 28, 30
// and 31), for HTTP/1 and HTTP/2 alike.
func TestResponseCarriesRequestForFilters(t *testing.T) {
	h := newH2()
	h2req := h.preface().headers(1, true, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/submit?x=1").take()
	h2resp := h.settings().headers(1, true, ":status", "500").take()
	for _, tt := range []struct {
		name   string
		chunks []capture.Chunk
		filter string
	}{
		{"http1", []capture.Chunk{
			chunk(1*ms, 1, capture.Write, "POST /submit?x=1 HTTP/1.1\r\nHost: h1.test\r\nContent-Length: 0\r\n\r\n"),
			chunk(2*ms, 1, capture.Read, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"),
		}, "~m POST & ~c 500 & ~d h1.test & path=/submit"},
		{"http2", []capture.Chunk{
			chunk(1*ms, 2, capture.Write, string(h2req)),
			chunk(2*ms, 2, capture.Read, string(h2resp)),
		}, "~m POST & ~c 500 & ~d h2.test & path=/submit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, _ := run(t, pipeline.Options{}, tt.chunks...)
			f, err := filter.Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range evs {
				if f.Match(ev) {
					got = append(got, summary(ev))
				}
			}
			if len(got) != 1 || len(evs) != 2 {
				t.Fatalf("%q selects %q of %q, want the response alone", tt.filter, got, summaries(evs))
			}
		})
	}
}

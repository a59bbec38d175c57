package pipeline_test

import (
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
)

// TestTLSLibrary: the library a source names is on every event of the
// connection, and a connection whose source names none has none.
func TestTLSLibrary(t *testing.T) {
	req := chunk(1*ms, 7, capture.Write, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n")
	req.Library = "gotls"
	resp := chunk(2*ms, 7, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	resp.Library = "gotls"
	unknown := chunk(3*ms, 8, capture.Write, "GET /o HTTP/1.1\r\nHost: x.test\r\n\r\n")

	evs, _ := run(t, pipeline.Options{}, req, resp, unknown)
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3: %v", len(evs), summaries(evs))
	}
	for i, want := range []string{"gotls", "gotls", ""} {
		if got := evs[i].GetTlsLibrary(); got != want {
			t.Errorf("event %d: tls_library %q, want %q", i, got, want)
		}
	}
}

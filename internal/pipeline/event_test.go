package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/stats"
)

func TestPairing(t *testing.T) {
	h := newH2()
	h2req := h.preface().
		headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/one").
		headers(3, true, ":method", "GET", ":scheme", "https", ":authority", "h2.test", ":path", "/three").take()
	h2resp3 := h.settings().headers(3, false, ":status", "404").data(3, true, "no").take()
	h2resp1 := h.headers(1, false, ":status", "200").data(1, true, "yes").take()

	tests := []struct {
		name   string
		chunks []capture.Chunk
		want   []string
	}{
		{
			name: "http1 pipelined requests pair in order",
			chunks: []capture.Chunk{
				chunk(1*ms, 1, capture.Write, "GET /a HTTP/1.1\r\nHost: x.test\r\n\r\nGET /b HTTP/1.1\r\nHost: x.test\r\n\r\n"),
				chunk(5*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"),
				chunk(9*ms, 1, capture.Read, "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nB"),
			},
			want: []string{
				"#1 http1-request GET /a",
				"#2 http1-request GET /b",
				"#3 http1-response GET /a 200 request=#1 latency=4ms",
				"#4 http1-response GET /b 404 request=#2 latency=8ms",
			},
		},
		{
			name: "http1 interim 100 does not consume the request",
			chunks: []capture.Chunk{
				chunk(1*ms, 1, capture.Write, "POST /up HTTP/1.1\r\nHost: x.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"),
				chunk(2*ms, 1, capture.Read, "HTTP/1.1 100 Continue\r\n\r\n"),
				chunk(3*ms, 1, capture.Write, "hi"),
				chunk(7*ms, 1, capture.Read, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
				chunk(8*ms, 1, capture.Write, "GET /next HTTP/1.1\r\nHost: x.test\r\n\r\n"),
				chunk(10*ms, 1, capture.Read, "HTTP/1.1 204 No Content\r\n\r\n"),
			},
			// The 100 arrives before the request body, so before the request
			// is complete and emitted: it cannot pair, but it must not
			// shift the pairing of the responses after it.
			want: []string{
				"#1 http1-response 100",
				"#2 http1-request POST /up",
				"#3 http1-response POST /up 201 request=#2 latency=4ms",
				"#4 http1-request GET /next",
				"#5 http1-response GET /next 204 request=#4 latency=2ms",
			},
		},
		{
			name: "http1 interim 103 and the final response pair with the same request",
			chunks: []capture.Chunk{
				chunk(1*ms, 1, capture.Write, "GET /page HTTP/1.1\r\nHost: x.test\r\n\r\n"),
				chunk(2*ms, 1, capture.Read, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"),
				chunk(6*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			},
			want: []string{
				"#1 http1-request GET /page",
				"#2 http1-response GET /page 103 request=#1 latency=1ms",
				"#3 http1-response GET /page 200 request=#1 latency=5ms",
			},
		},
		{
			name: "http2 pairs by stream",
			chunks: []capture.Chunk{
				chunk(1*ms, 1, capture.Write, h2req),
				chunk(4*ms, 1, capture.Read, h2resp3),
				chunk(6*ms, 1, capture.Read, h2resp1),
			},
			want: []string{
				"#1 http2-request stream=1 GET /one",
				"#2 http2-request stream=3 GET /three",
				"#3 http2-response stream=3 GET /three 404 request=#2 latency=3ms",
				"#4 http2-response stream=1 GET /one 200 request=#1 latency=5ms",
			},
		},
		{
			name: "response without request is unpaired",
			chunks: []capture.Chunk{
				chunk(1*ms, 1, capture.Read, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			},
			want: []string{"#1 http1-response 200"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, _ := run(t, pipeline.Options{}, tt.chunks...)
			got := summaries(evs)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A complete message is published by the Handle call that completes it,
// not by a later tick, and its delay from capture is measured. Raw data
// is the exception: it waits for its idle flush.
func TestCompleteMessagePublishedAtOnce(t *testing.T) {
	set := stats.NewSet()
	lat := set.Histogram(stats.PublishLatency, "", stats.LatencyBuckets)
	sink := &collect{t: t}
	p := pipeline.New(pipeline.Options{Stats: set, Latency: lat, IdleFlush: time.Hour}, sink)

	now := time.Now().UnixNano()
	req := chunk(now, 1, capture.Write, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	p.Handle(&req)
	if n := len(sink.all()); n != 1 {
		t.Fatalf("%d events after the request's last byte, want 1", n)
	}
	raw := chunk(now, 2, capture.Write, "\x00\x01 not a protocol")
	p.Handle(&raw)
	if n := len(sink.all()); n != 1 {
		t.Fatalf("%d events after raw data, want it held for the idle flush", n)
	}

	h := set.Histograms()
	if len(h) != 1 || h[0].Count != 1 || h[0].Sum <= 0 || h[0].Sum > time.Hour.Seconds() {
		t.Errorf("latency histogram %+v, want one positive observation", h)
	}
}

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

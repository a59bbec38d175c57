package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// run feeds chunks to a fresh pipeline with a virtual clock, closes it and
// returns the events and the counters.
func run(t *testing.T, opts pipeline.Options, chunks ...capture.Chunk) ([]*eventpb.Event, *stats.Set) {
	t.Helper()
	opts.VirtualClock = true
	if opts.Stats == nil {
		opts.Stats = stats.NewSet()
	}
	sink := &collect{t: t}
	p := pipeline.New(opts, sink)
	for i := range chunks {
		p.Handle(&chunks[i])
	}
	p.Close()
	if n := p.Connections(); n != 0 {
		t.Errorf("Connections() after Close = %d, want 0", n)
	}
	return sink.all(), opts.Stats
}

// summary is the part of an event the pairing tests look at.
func summary(ev *eventpb.Event) string {
	s := fmt.Sprintf("#%d %s", ev.GetSeq(), decoder.Type(ev.GetType()))
	if ev.GetStreamId() != 0 {
		s += fmt.Sprintf(" stream=%d", ev.GetStreamId())
	}
	if ev.GetMethod() != "" || ev.GetPath() != "" {
		s += fmt.Sprintf(" %s %s", ev.GetMethod(), ev.GetPath())
	}
	if ev.GetStatus() != 0 {
		s += fmt.Sprintf(" %d", ev.GetStatus())
	}
	if ev.GetRequestSeq() != 0 {
		s += fmt.Sprintf(" request=#%d latency=%dms", ev.GetRequestSeq(), ev.GetLatencyNs()/ms)
	}
	return s
}

func summaries(evs []*eventpb.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = summary(ev)
	}
	return out
}

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

// TestDecoderErrors: a decoder failure inside the pipeline is counted as
// tlstap_decoder_errors_total{decoder, reason}; every reason is a series
// from the start, at zero, so /metrics names them before they happen.
func TestDecoderErrors(t *testing.T) {
	h := newH2().preface().headers(1, false, ":method", "GET", ":scheme", "https", ":authority", "a.test", ":path", "/")
	_ = h.fr.WriteRawFrame(0x0 /* DATA */, 0, 0, []byte("x"))
	bad := h.take()
	_, st := run(t, pipeline.Options{},
		chunk(1*ms, 1, capture.Write, bad),
		// TLS inside TLS: no protocol, in each direction.
		chunk(2*ms, 2, capture.Write, "\x16\x03\x01\x00\x05hello"),
		chunk(3*ms, 2, capture.Read, "\x16\x03\x01\x00\x05hello"),
		closeChunk(4*ms, 1), closeChunk(4*ms, 2))
	want := map[string]float64{"http2/frame_data_stream_0": 1, "session/no_protocol": 2}
	series := 0
	for _, s := range st.Snapshot() {
		if s.Name != stats.DecoderErrorsTotal {
			continue
		}
		series++
		var d, r string
		for _, l := range s.Labels {
			switch l.Name {
			case "decoder":
				d = l.Value
			case "reason":
				r = l.Value
			}
		}
		if s.Value != want[d+"/"+r] {
			t.Errorf("%s{decoder=%q,reason=%q} = %v, want %v", s.Name, d, r, s.Value, want[d+"/"+r])
		}
	}
	if series != len(decoder.Reasons()) {
		t.Errorf("%d %s series, want one per reason (%d)", series, stats.DecoderErrorsTotal, len(decoder.Reasons()))
	}

	// A counter of the caller's own replaces the registry's.
	var counts decoder.Counts
	_, st = run(t, pipeline.Options{Limits: decoder.Limits{Errors: &counts}}, chunk(1*ms, 1, capture.Write, bad), closeChunk(2*ms, 1))
	if counts.Get(decoder.HTTP2FrameDataStream0) != 1 || st.Value(stats.DecoderErrorsTotal, "decoder", "http2", "reason", "frame_data_stream_0") != 0 {
		t.Errorf("own counter: counted %v, registry %v", counts.Counted(), st.Value(stats.DecoderErrorsTotal, "decoder", "http2", "reason", "frame_data_stream_0"))
	}
}

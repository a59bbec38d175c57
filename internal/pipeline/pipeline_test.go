package pipeline_test

import (
	"fmt"
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

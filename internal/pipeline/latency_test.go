package pipeline_test

import (
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/stats"
)

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

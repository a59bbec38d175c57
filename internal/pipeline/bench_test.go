package pipeline_test

import (
	"math/rand/v2"
	"testing"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/pipeline"
)

// BenchmarkPipeline measures 1 KiB binary chunks through the pipeline, the
// raw decoder and the broker, which marshals every event to protobuf once
// (no subscribers, so nothing else is measured). Run it on one core:
//
//	go test -run '^$' -bench BenchmarkPipeline -benchmem -cpu 1 -count 5 ./pipeline/
func BenchmarkPipeline(b *testing.B) {
	perChunk := decoder.DefaultLimits()
	perChunk.RawFlushBytes = 1024
	for _, bc := range []struct {
		name   string
		limits decoder.Limits
	}{
		{"event-per-chunk", perChunk},
		{"default", decoder.DefaultLimits()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data := make([]byte, 1024)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			data[0] = 0 // no protocol starts with a NUL: raw from the first byte
			br := broker.New(broker.Options{}, nil)
			defer br.Close()
			p := pipeline.New(pipeline.Options{VirtualClock: true, Limits: bc.limits}, br)
			c := chunk(0, 1, capture.Read, "")
			c.Data = data
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Time = int64(i) * 1000
				p.Handle(&c)
			}
			p.Close()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
		})
	}
}

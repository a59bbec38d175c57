package stats

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// LatencyBuckets are the upper bounds, in seconds, of a latency histogram:
// fine below a millisecond, where a complete message should be published,
// and coarse up to the seconds an idle flush or a stalled reader can cost.
var LatencyBuckets = []float64{
	50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6,
	1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1, 5,
}

// Histogram is a distribution of durations. Observing is lock-free (it is
// a prometheus.Histogram underneath), so hot paths can record every event.
type Histogram struct {
	name, help string
	h          prometheus.Histogram
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) { h.h.Observe(d.Seconds()) }

// HistogramSample is a histogram's state at snapshot time.
type HistogramSample struct {
	Name, Help string
	Count      uint64
	Sum        float64 // seconds
	// Buckets are cumulative counts by upper bound (seconds), ascending;
	// observations above the last bound are only in Count.
	Buckets []Bucket
}

// Bucket is one cumulative bucket.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Quantile estimates the q-quantile (0 < q < 1) by linear interpolation
// within the bucket that holds it, as Prometheus' histogram_quantile does.
// It returns 0 without observations and the last bound when the quantile
// lies beyond it.
func (s HistogramSample) Quantile(q float64) float64 {
	if s.Count == 0 || len(s.Buckets) == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	lower, below := 0.0, uint64(0)
	for _, b := range s.Buckets {
		if float64(b.Count) >= rank {
			in := b.Count - below
			if in == 0 {
				return b.UpperBound
			}
			return lower + (b.UpperBound-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = b.UpperBound, b.Count
	}
	return s.Buckets[len(s.Buckets)-1].UpperBound
}

// Histogram returns the histogram name, creating it with buckets (upper
// bounds in seconds) on first use; later calls return the same one
// whatever their buckets.
func (s *Set) Histogram(name, help string, buckets []float64) *Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hists == nil {
		s.hists = make(map[string]*Histogram)
	}
	if h, ok := s.hists[name]; ok {
		return h
	}
	h := &Histogram{name: name, help: help, h: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: name, Help: help, Buckets: buckets,
	})}
	s.hists[name] = h
	return h
}

// Histograms returns every histogram's state, sorted by name.
func (s *Set) Histograms() []HistogramSample {
	s.mu.Lock()
	hs := make([]*Histogram, 0, len(s.hists))
	for _, h := range s.hists {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	out := make([]HistogramSample, 0, len(hs))
	for _, h := range hs {
		var m dto.Metric
		if err := h.h.Write(&m); err != nil {
			continue // only fails on invalid label values; there are none
		}
		hist := m.GetHistogram()
		smp := HistogramSample{Name: h.name, Help: h.help, Count: hist.GetSampleCount(), Sum: hist.GetSampleSum()}
		for _, b := range hist.GetBucket() {
			smp.Buckets = append(smp.Buckets, Bucket{UpperBound: b.GetUpperBound(), Count: b.GetCumulativeCount()})
		}
		out = append(out, smp)
	}
	slices.SortFunc(out, func(a, b HistogramSample) int { return strings.Compare(a.Name, b.Name) })
	return out
}

package stats

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantile(t *testing.T) {
	s := HistogramSample{Count: 10, Buckets: []Bucket{{1, 0}, {2, 4}, {4, 8}, {8, 9}}}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.1, 1.25}, // rank 1 of the 4 in (1, 2]
		{0.4, 2},
		{0.5, 2.5}, // rank 5: 1 of the 4 in (2, 4]
		{0.9, 8},   // rank 9, the last counted
		{0.99, 8},  // beyond every bound: the last bound
		{0.05, 1.125},
	} {
		if got := s.Quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Quantile(%g) = %g, want %g", tc.q, got, tc.want)
		}
	}
	if got := (HistogramSample{}).Quantile(0.5); got != 0 {
		t.Errorf("empty: %g", got)
	}
}

func TestSetHistogram(t *testing.T) {
	s := NewSet()
	h := s.Histogram("lat", "help", []float64{0.001, 0.01})
	if s.Histogram("lat", "other", nil) != h {
		t.Fatal("second registration returned a new histogram")
	}
	h.Observe(500 * time.Microsecond)
	h.Observe(5 * time.Millisecond)
	h.Observe(time.Second)
	got := s.Histograms()
	if len(got) != 1 {
		t.Fatalf("%d histograms", len(got))
	}
	g := got[0]
	if g.Name != "lat" || g.Help != "help" || g.Count != 3 || math.Abs(g.Sum-1.0055) > 1e-9 ||
		len(g.Buckets) != 2 || g.Buckets[0] != (Bucket{0.001, 1}) || g.Buckets[1] != (Bucket{0.01, 2}) {
		t.Errorf("sample %+v", g)
	}
}

package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlstap/tlstap/internal/stats"
)

// Latency is a latency histogram as the status reports it.
type Latency struct {
	Count      uint64  `json:"count"`
	SumSeconds float64 `json:"sum_seconds"`
	// P50 and P99 are estimated from the buckets, as Prometheus'
	// histogram_quantile would.
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
	// Buckets are cumulative counts by upper bound.
	Buckets []LatencyBucket `json:"buckets"`
}

// LatencyBucket is one cumulative bucket: Count observations took at most
// LE seconds.
type LatencyBucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// publishLatency reports stats.PublishLatency, or nil when the run does
// not measure it (replays and the demo, whose timestamps are not now).
func publishLatency(set *stats.Set) *Latency {
	for _, h := range set.Histograms() {
		if h.Name != stats.PublishLatency {
			continue
		}
		l := &Latency{Count: h.Count, SumSeconds: h.Sum, P50Seconds: h.Quantile(0.5), P99Seconds: h.Quantile(0.99),
			Buckets: make([]LatencyBucket, 0, len(h.Buckets))}
		for _, b := range h.Buckets {
			l.Buckets = append(l.Buckets, LatencyBucket{LE: b.UpperBound, Count: b.Count})
		}
		return l
	}
	return nil
}

// collectHistograms exports set's histograms to Prometheus.
func collectHistograms(set *stats.Set, ch chan<- prometheus.Metric) {
	for _, h := range set.Histograms() {
		buckets := make(map[float64]uint64, len(h.Buckets))
		for _, b := range h.Buckets {
			buckets[b.UpperBound] = b.Count
		}
		help := h.Help
		if help == "" {
			help = h.Name
		}
		desc := prometheus.NewDesc(h.Name, help, nil, nil)
		m, err := prometheus.NewConstHistogram(desc, h.Count, h.Sum, buckets)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}
}

package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tlstap/tlstap/internal/stats"
)

// Collector exports a stats.Set to Prometheus. The set's series are
// created lazily by the packages that count, so they are described
// unchecked and read anew on every scrape.
type Collector struct{ set *stats.Set }

// NewCollector returns a Collector over set.
func NewCollector(set *stats.Set) *Collector { return &Collector{set: set} }

// Describe implements prometheus.Collector; sending nothing makes the
// collector unchecked.
func (*Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.set.Snapshot() {
		names := make([]string, len(s.Labels))
		values := make([]string, len(s.Labels))
		for i, l := range s.Labels {
			names[i], values[i] = l.Name, l.Value
		}
		typ := prometheus.CounterValue
		if s.Gauge {
			typ = prometheus.GaugeValue
		}
		help := s.Help
		if help == "" {
			help = s.Name
		}
		m, err := prometheus.NewConstMetric(prometheus.NewDesc(s.Name, help, names, nil), typ, s.Value, values...)
		if err != nil {
			m = prometheus.NewInvalidMetric(prometheus.NewDesc(s.Name, help, names, nil), err)
		}
		ch <- m
	}
	collectHistograms(c.set, ch)
}

// NewRegistry returns a registry with set's series and the Go runtime and
// process collectors.
func NewRegistry(set *stats.Set) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(set),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

func (a *API) metricsHandler() http.Handler {
	return promhttp.HandlerFor(NewRegistry(a.opts.Stats), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

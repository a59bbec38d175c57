package api_test

import (
	"bytes"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/stats"
)

// The publish latency histogram is in the status (with quantiles) and in
// /metrics (as a Prometheus histogram), and absent from the status of a
// run that does not measure it.
func TestPublishLatency(t *testing.T) {
	e := newEnv(t, config.Default())
	res := e.do(request{method: "GET", path: "/api/v1/status", ctype: "-"})
	if st := decode[api.Status](t, res.body); st.PublishLatency != nil {
		t.Errorf("status reports a latency nobody measured: %+v", st.PublishLatency)
	}

	h := e.st.Histogram(stats.PublishLatency, "Capture to publication.", stats.LatencyBuckets)
	for range 98 {
		h.Observe(80 * time.Microsecond) // in (50µs, 100µs]
	}
	h.Observe(3 * time.Millisecond)
	h.Observe(30 * time.Second) // beyond every bound

	res = e.do(request{method: "GET", path: "/api/v1/status", ctype: "-"})
	l := decode[api.Status](t, res.body).PublishLatency
	if l == nil {
		t.Fatalf("no publish_latency in %s", res.body)
	}
	if l.Count != 100 || l.SumSeconds < 30 || len(l.Buckets) != len(stats.LatencyBuckets) {
		t.Errorf("latency %+v", l)
	}
	if l.P50Seconds <= 50e-6 || l.P50Seconds > 100e-6 {
		t.Errorf("p50 %g s, want within the (50µs, 100µs] bucket", l.P50Seconds)
	}
	if l.P99Seconds <= 2e-3 || l.P99Seconds > 5e-3 {
		t.Errorf("p99 %g s, want within the (2ms, 5ms] bucket", l.P99Seconds)
	}

	res = e.do(request{method: "GET", path: "/metrics", ctype: "-", header: map[string]string{"Accept": "text/plain"}})
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, res.body)
	}
	f := fams[stats.PublishLatency]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM || f.GetHelp() != "Capture to publication." {
		t.Fatalf("family %v", f)
	}
	ph := f.GetMetric()[0].GetHistogram()
	if ph.GetSampleCount() != 100 || len(ph.GetBucket()) != len(stats.LatencyBuckets)+1 || // and +Inf
		ph.GetBucket()[1].GetCumulativeCount() != 98 {
		t.Errorf("histogram %v", ph)
	}
}

package api_test

import (
	"bytes"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/api"
	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/pipeline"
	"github.com/tlstap/tlstap/internal/stats"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t, config.Default())
	res := e.do(request{method: "GET", path: "/healthz", ctype: "-", noToken: true})
	if res.status != 200 || string(res.body) != "ok" {
		t.Errorf("healthz: %d %q", res.status, res.body)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t, config.Default())
	e.st.Counter(stats.ChunksTotal, "chunks").Add(5)
	e.st.Counter(stats.BytesTotal, "bytes").Add(500)
	e.st.Counter(stats.EventsTotal, "events", "type", "http1_request").Add(3)
	e.st.Counter(stats.DropsTotal, "drops", "reason", "queue_full").Add(2)
	e.st.Counter(stats.TruncationsTotal, "truncations", "reason", "tsize").Add(1)
	e.patch(`{"pipeline":{"tsize":9}}`)
	res := e.do(request{method: "GET", path: "/api/v1/status", ctype: "-"})
	st := decode[api.Status](t, res.body)
	c := st.Counters
	if res.status != 200 || st.Version != "test" || st.Revision != 2 || st.UptimeSeconds < 0 ||
		c.Chunks != 5 || c.Bytes != 500 || c.Events["http1_request"] != 3 ||
		c.Drops["queue_full"] != 2 || c.Truncations["tsize"] != 1 || len(c.Series) == 0 {
		t.Errorf("status %d: %s", res.status, res.body)
	}
}

// /metrics is scraped and parsed as Prometheus would.
func TestMetrics(t *testing.T) {
	e := newEnv(t, config.Default())
	e.st.Counter(stats.DropsTotal, "Entries dropped, by reason.", "reason", "queue_full").Add(7)
	e.st.Gauge(stats.Connections, "Connections tracked.").Set(3)
	res := e.do(request{method: "GET", path: "/metrics", ctype: "-", header: map[string]string{"Accept": "text/plain"}})
	if res.status != 200 {
		t.Fatalf("metrics: %d %s", res.status, res.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, res.body)
	}
	drops := fams[stats.DropsTotal]
	if drops == nil || drops.GetType() != dto.MetricType_COUNTER || drops.GetHelp() != "Entries dropped, by reason." {
		t.Fatalf("drops family %v", drops)
	}
	m := drops.GetMetric()
	if len(m) != 1 || m[0].GetCounter().GetValue() != 7 || m[0].GetLabel()[0].GetName() != "reason" || m[0].GetLabel()[0].GetValue() != "queue_full" {
		t.Errorf("drops %v", m)
	}
	if g := fams[stats.Connections]; g == nil || g.GetType() != dto.MetricType_GAUGE || g.GetMetric()[0].GetGauge().GetValue() != 3 {
		t.Errorf("connections %v", g)
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "tlstap_server_rejected_total"} {
		if fams[name] == nil {
			var names []string
			for n := range fams {
				names = append(names, n)
			}
			t.Errorf("no %s among %s", name, strings.Join(names, " "))
		}
	}
}

type discard struct{}

func (discard) Publish(*eventpb.LogEntry) {}

// TestDecoderErrors: a decoder failure in the pipeline shows in /metrics as
// tlstap_decoder_errors_total{decoder,reason} (every reason listed, at
// zero until it happens) and in /api/v1/status as totals.
func TestDecoderErrors(t *testing.T) {
	e := newEnv(t, config.Default())
	p := pipeline.New(pipeline.Options{Stats: e.st, VirtualClock: true}, discard{})
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	b.WriteString(http2.ClientPreface)
	_ = fr.WriteSettings()
	_ = fr.WriteRawFrame(http2.FrameData, 0, 0, []byte("x")) // DATA on stream 0
	in := capture.Chunk{Time: 1, PID: 1, Conn: 1, Dir: capture.Write, Data: b.Bytes()}
	p.Handle(&in)
	p.Close()

	res := e.do(request{method: "GET", path: "/metrics", ctype: "-", header: map[string]string{"Accept": "text/plain"}})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(res.body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, res.body)
	}
	fam := fams[stats.DecoderErrorsTotal]
	if fam == nil || fam.GetType() != dto.MetricType_COUNTER || len(fam.GetMetric()) != len(decoder.Reasons()) {
		t.Fatalf("%s family: %v", stats.DecoderErrorsTotal, fam)
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		want := 0.0
		if labels["decoder"] == "http2" && labels["reason"] == "frame_data_stream_0" {
			want = 1
		}
		if m.GetCounter().GetValue() != want {
			t.Errorf("%v = %v, want %v", labels, m.GetCounter().GetValue(), want)
		}
	}

	res = e.do(request{method: "GET", path: "/api/v1/status", ctype: "-"})
	c := decode[api.Status](t, res.body).Counters
	if c.DecoderErrors["http2"] != 1 || c.DecoderErrors["http1"] != 0 || len(c.DecoderErrors) != 5 ||
		len(c.DecoderErrorReasons) != 1 || c.DecoderErrorReasons["http2/frame_data_stream_0"] != 1 {
		t.Errorf("status counters: decoder errors %v, by reason %v", c.DecoderErrors, c.DecoderErrorReasons)
	}
}

package forward

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/stats"
)

// TestDialContextUsed: every connection a forwarder makes, in both modes,
// goes through Options.DialContext, which is how tlstap registers its own
// endpoints so that the capture leaves them alone.
func TestDialContextUsed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	for _, mode := range []Mode{Webhook, Proxy} {
		t.Run(string(mode), func(t *testing.T) {
			var dials atomic.Int64
			b, _ := newBroker()
			f, err := New(Options{URLs: []string{srv.URL}, Mode: mode, Scheme: "http",
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}}, b, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, f)
			defer stop()
			b.Publish(entry(httpRequest(0, "GET", "a.example", "/", "", nil, "")))
			waitFor(t, "a dial through DialContext", func() bool { return dials.Load() > 0 })
		})
	}
}

// A proxy that is not there must cost capture nothing: Publish returns at
// once, and what the queue cannot hold is dropped and counted.
func TestProxyModeDeadProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	b, st := newBroker()
	const queue, n = 16, 1000
	f, err := New(Options{Mode: Proxy, URLs: []string{"http://" + dead}, Queue: queue, Workers: 2,
		Retries: 1, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, b, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, f)
	defer stop()
	for seq := uint64(1); seq <= n; seq++ {
		b.Publish(entry(httpRequest(seq, "GET", "127.0.0.1:1", "/", "", nil, "")))
	}
	if f.Dropped() == 0 {
		t.Errorf("nothing dropped: %d requests through a dead proxy fitted a queue of %d?", n, queue)
	}
	if got := st.Value(stats.DropsTotal, "reason", "queue_full_forward_proxy"); got != float64(f.Dropped()) {
		t.Errorf("drop counter %v != Dropped() %d", got, f.Dropped())
	}
	// Every event is accounted for: dropped, or tried and given up on.
	waitFor(t, "every event dropped or abandoned", func() bool {
		return st.Value("tlstap_forward_failed_total", "mode", "proxy")+float64(f.Dropped()) == n
	})
	if got := st.Value("tlstap_forward_retries_total", "mode", "proxy"); got == 0 {
		t.Error("connection errors to the proxy were not retried")
	}
}

func TestProxyModeDefaultsToSafeMethods(t *testing.T) {
	tests := []struct {
		filter string
		method string
		typ    uint32
		want   bool
	}{
		{"", "GET", 1, true},
		{"", "HEAD", 2, true},
		{"", "OPTIONS", 1, true},
		{"", "POST", 1, false},
		{"", "DELETE", 2, false},
		{"", "GET", 3, false}, // responses are never replayed
		{"", "GET", 0, false},
		{"method=*", "POST", 1, true},
		{"method=POST", "GET", 1, false},
		{"path=/x", "GET", 1, true},
		{"path=/x", "PUT", 1, false},
	}
	b, _ := newBroker()
	for _, tt := range tests {
		f, err := New(Options{Mode: Proxy, URLs: []string{"http://127.0.0.1:8080"}, Filter: tt.filter}, b, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev := httpRequest(1, tt.method, "a.example.test", "/x", "", nil, "")
		ev.Type = tt.typ
		if got := f.wants(&broker.Entry{Msg: entry(ev)}); got != tt.want {
			t.Errorf("filter %q: %s type %d forwarded=%v, want %v", tt.filter, tt.method, tt.typ, got, tt.want)
		}
		for _, d := range f.dests {
			d.sub.Close()
		}
	}
}

func TestNewRejects(t *testing.T) {
	b, _ := newBroker()
	for _, o := range []Options{
		{},
		{URLs: []string{"ftp://x"}},
		{URLs: []string{"http://"}},
		{URLs: []string{"http://x"}, Mode: "mirror"},
		{URLs: []string{"http://x"}, Format: "xml"},
		{URLs: []string{"http://x"}, Scheme: "gopher"},
		{URLs: []string{"http://x"}, Filter: "colour=red"},
	} {
		if _, err := New(o, b, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

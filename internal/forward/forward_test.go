package forward

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
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

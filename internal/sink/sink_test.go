package sink

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDialContextUsed: every connection a sink makes goes through
// Options.DialContext, which is how tlstap registers its own endpoints
// so that the capture leaves them alone.
func TestDialContextUsed(t *testing.T) {
	tcp := listenTCP(t, "127.0.0.1:0")
	defer tcp.kill()
	ws := httptest.NewServer(&wsReader{})
	defer ws.Close()
	for _, addr := range []string{
		"tcp://" + tcp.ln.Addr().String(),
		"ws://" + strings.TrimPrefix(ws.URL, "http://") + "/events",
	} {
		t.Run(strings.SplitN(addr, ":", 2)[0], func(t *testing.T) {
			var dials atomic.Int64
			opts := fastOpts(Protobuf)
			opts.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
				dials.Add(1)
				var d net.Dialer
				return d.DialContext(ctx, network, a)
			}
			b, st := newBroker()
			s, err := New(addr, opts, b, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, s)
			defer stop()
			b.Publish(request(1))
			waitFor(t, "a dial through DialContext", func() bool { return dials.Load() > 0 })
		})
	}
}

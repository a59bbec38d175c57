package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestExchangeOrder captures both ends of one exchange on loopback and
// requires the causal order in seq and in timestamp: client sent the
// request < server received it < server sent the response < client
// received it. It holds because a write is emitted at SSL_write's entry,
// ahead in the ring of any read of its bytes (bpf/tlstap.bpf.c).
func TestExchangeOrder(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	nginx := testenv.StartNginx(t, testenv.NginxConfig{HTTP2: true, Files: map[string][]byte{"o.txt": []byte("order body\n")}})
	pysrv := testenv.StartPythonHTTPS(t, testenv.IPv4, map[string][]byte{"o.txt": []byte("order body\n")})
	py := testenv.Python(t)

	src, err := openssl.New(openssl.Options{Filter: openssl.Filter{Comms: []string{"curl", "nginx", filepath.Base(py)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	e := newEngine(t, "", false)
	events := collect(e)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, src) }()
	stopped := sync.OnceFunc(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	})
	defer stopped()

	// Each client prints its local port, which names the connection on
	// both ends among whatever else the filter lets through.
	const pyClient = `
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
c = http.client.HTTPSConnection(sys.argv[1], int(sys.argv[2]), context=ctx)
c.connect()
print(c.sock.getsockname()[1], flush=True)
c.request("GET", "/o.txt")
c.getresponse().read()
`
	exchanges := []struct {
		name        string
		server      *testenv.Server
		cmd         *exec.Cmd
		req, resp   uint32 // event types
		client, srv int    // filled in as they run
		port        int
	}{
		{name: "curl-nginx-http1.1", server: nginx, req: 1, resp: 3,
			cmd: exec.Command("curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", "-w", "%{local_port}\n", nginx.URL("/o.txt"))},
		{name: "curl-nginx-http2", server: nginx, req: 2, resp: 4,
			cmd: exec.Command("curl", "-sS", "-k", "--http2", "-o", "/dev/null", "-w", "%{local_port}\n", nginx.URL("/o.txt"))},
		{name: "python-python", server: pysrv, req: 1, resp: 3,
			cmd: exec.Command(py, "-c", pyClient, pysrv.Addr.Addr().String(), fmt.Sprint(pysrv.Addr.Port()), pysrv.Cert.CertFile)},
	}
	for i := range exchanges {
		x := &exchanges[i]
		out, err := x.cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", x.name, err, out)
		}
		if x.port, err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
			t.Fatalf("%s: client printed %q, want its local port", x.name, out)
		}
		x.client = x.cmd.Process.Pid
	}

	// find returns, per exchange, the client's and the server's request
	// and response events, in causal order.
	find := func(evs []*eventpb.Event) [][4]*eventpb.Event {
		got := make([][4]*eventpb.Event, len(exchanges))
		for _, ev := range evs {
			for i, x := range exchanges {
				srvPort := uint32(x.server.Addr.Port())
				client := int(ev.GetPid()) == x.client
				switch {
				case client && ev.GetType() == x.req && ev.GetSrcPort() == uint32(x.port) && ev.GetDstPort() == srvPort:
					got[i][0] = ev
				case !client && ev.GetType() == x.req && ev.GetSrcPort() == uint32(x.port) && ev.GetDstPort() == srvPort:
					got[i][1] = ev
				case !client && ev.GetType() == x.resp && ev.GetDstPort() == uint32(x.port) && ev.GetSrcPort() == srvPort:
					got[i][2] = ev
				case client && ev.GetType() == x.resp && ev.GetDstPort() == uint32(x.port) && ev.GetSrcPort() == srvPort:
					got[i][3] = ev
				}
			}
		}
		return got
	}
	complete := func(got [][4]*eventpb.Event) bool {
		for _, g := range got {
			for _, ev := range g {
				if ev == nil {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !complete(find(events.snapshot())) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for both ends of every exchange; events: %v", summary(events.snapshot()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped()

	steps := [4]string{"client sent request", "server received request", "server sent response", "client received response"}
	for i, g := range find(events.all()) {
		x := exchanges[i]
		for j := 1; j < len(g); j++ {
			a, b := g[j-1], g[j]
			if a.GetSeq() >= b.GetSeq() {
				t.Errorf("%s: %s has seq %d, not before %s's %d", x.name, steps[j-1], a.GetSeq(), steps[j], b.GetSeq())
			}
			if a.GetTimestamp() >= b.GetTimestamp() {
				t.Errorf("%s: %s at %d, not before %s at %d (%v later)", x.name, steps[j-1], a.GetTimestamp(), steps[j], b.GetTimestamp(),
					time.Duration(a.GetTimestamp()-b.GetTimestamp()))
			}
		}
		if t.Failed() {
			t.Logf("%s events: %v", x.name, summary(g[:]))
		}
	}
}

// snapshot returns the events collected so far.
func (c *collector) snapshot() []*eventpb.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*eventpb.Event(nil), c.evs...)
}

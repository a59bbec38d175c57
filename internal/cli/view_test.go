package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	xws "golang.org/x/net/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/fleet/fleettest"
	"github.com/tlstap/tlstap/internal/output"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

const demoEvents = 48 // events in the demo (testdata/demo.jsonl)

// publishDemo plays the demo as node into the fleet stream at url.
func publishDemo(t *testing.T, url, node string) {
	t.Helper()
	code, _, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "none", "--listen", "", "--node", node, "--eventaddr", url)
	if code != 0 {
		t.Fatalf("demo --node %s: exit code %d: %s", node, code, stderr)
	}
}

// demoOrder is the demo's events as uuid and payload, in order.
func demoOrder(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		var ev output.JSONEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.UUID+"|"+ev.Payload)
	}
	if len(out) != demoEvents {
		t.Fatalf("demo has %d events, the test expects %d", len(out), demoEvents)
	}
	return out
}

// viewer runs 'tlstap view' in a process of its own until stop.
type viewer struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
}

func startViewer(t *testing.T, ctx context.Context, args ...string) *viewer {
	t.Helper()
	v := &viewer{stderr: &lockedBuffer{}}
	v.cmd = tlstapCmd(ctx, append([]string{"view"}, args...)...)
	v.cmd.Stdout, v.cmd.Stderr = io.Discard, v.stderr
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.stop)
	return v
}

func (v *viewer) stop() {
	if v.cmd.ProcessState != nil {
		return
	}
	v.cmd.Process.Signal(os.Interrupt)
	v.cmd.Wait()
}

// waitHealthy polls the viewer's /healthz.
func (v *viewer) waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer not serving: %v\n%s", err, v.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// watchJSON runs 'tlstap watch URL --json' with args and decodes its events.
func watchJSON(t *testing.T, url string, args ...string) []output.JSONEvent {
	t.Helper()
	code, stdout, stderr := runMain(t, append([]string{"watch", url, "--json", "--no-reconnect"}, args...)...)
	if code != 0 {
		t.Fatalf("watch %s %v: exit code %d: %s", url, args, code, stderr)
	}
	var evs []output.JSONEvent
	for line := range strings.Lines(stdout) {
		var ev output.JSONEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestViewFleet: three nodes publish the demo into NATS JetStream; 'tlstap
// view' serves the fleet: 'tlstap watch' gets every node's events exactly
// once, tagged with the node, in each node's order; an eCaptureQ-style
// client (the GUI's Origin, one LogEntry per binary frame) gets a fourth
// node's events live; the status lists every node; and after the viewer
// is restarted (a fifth node publishing meanwhile) a client resumes after
// the last seq it saw with no gap and no duplicate.
func TestViewFleet(t *testing.T) {
	s := fleettest.Server(t, 0, t.TempDir())
	url := fleettest.URL(s, "max_age=1h")
	want := demoOrder(t)
	nodes := []string{"node-a", "node-b", "node-c"}
	for _, node := range nodes {
		publishDemo(t, url, node)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mainAddr := testenv.FreePort(t, testenv.IPv4)
	ecq := testenv.FreePort(t, testenv.IPv4)
	args := []string{"--nats", url, "--listen", mainAddr.String(), "--tls=false", "--auth", "none",
		"--ecaptureq", "ws://" + ecq.String(), "--state-dir", t.TempDir()}
	base := "http://" + mainAddr.String()
	v := startViewer(t, ctx, args...)
	v.waitHealthy(t, base)

	// Every event once, with its node, in each node's order.
	all := watchJSON(t, "ws://"+mainAddr.String()+"/ws", "--since", "0", "--count", strconv.Itoa(demoEvents*len(nodes)))
	perNode := map[string][]string{}
	var prev uint64
	for _, ev := range all {
		if ev.Seq <= prev {
			t.Fatalf("seq %d after %d", ev.Seq, prev)
		}
		prev = ev.Seq
		perNode[ev.Node] = append(perNode[ev.Node], ev.UUID+"|"+ev.Payload)
	}
	for _, node := range nodes {
		if got := perNode[node]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("node %s: %d events, not the demo's %d in order", node, len(got), len(want))
		}
	}

	// The eCaptureQ GUI's way in, live.
	cfg, err := xws.NewConfig("ws://"+ecq.String()+"/", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := xws.DialConfig(cfg)
	if err != nil {
		t.Fatalf("eCaptureQ listener: %v\n%s", err, v.stderr.String())
	}
	defer ws.Close()
	got := make(chan error, 1)
	subscribed := make(chan struct{})
	go func() {
		n := 0
		first := true
		for n < demoEvents {
			var b []byte
			ws.SetReadDeadline(time.Now().Add(time.Minute))
			if err := xws.Message.Receive(ws, &b); err != nil {
				got <- fmt.Errorf("after %d events: %w", n, err)
				return
			}
			var m eventpb.LogEntry
			if err := proto.Unmarshal(b, &m); err != nil {
				got <- fmt.Errorf("a frame is not one LogEntry: %w", err)
				return
			}
			if first {
				// The server subscribes the client before its first
				// heartbeat: from here nothing published is missed.
				first = false
				close(subscribed)
			}
			if ev := m.GetEventPayload(); ev != nil {
				if ev.GetNode() != "node-d" {
					got <- fmt.Errorf("live event of node %q, want node-d", ev.GetNode())
					return
				}
				n++
			}
		}
		got <- nil
	}()
	select {
	case <-subscribed:
	case err := <-got:
		t.Fatalf("eCaptureQ client: %v\n%s", err, v.stderr.String())
	}
	publishDemo(t, url, "node-d")
	if err := <-got; err != nil {
		t.Fatalf("eCaptureQ client: %v\n%s", err, v.stderr.String())
	}

	// Read-only status, per node.
	resp, err := http.Get(base + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Capture struct{ Source string }
		Fleet   struct {
			Connected bool
			Nodes     []struct {
				Node   string
				Events uint64
			}
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Capture.Source != "nats" || !st.Fleet.Connected || len(st.Fleet.Nodes) != 4 {
		t.Fatalf("status: %+v", st)
	}
	for _, n := range st.Fleet.Nodes {
		if n.Events != demoEvents {
			t.Errorf("status: node %s has %d events, want %d", n.Node, n.Events, demoEvents)
		}
	}
	for _, m := range []string{http.MethodPut, http.MethodPatch} {
		req, _ := http.NewRequest(m, base+"/api/v1/config", strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/v1/config on a viewer: %s, want 405", m, resp.Status)
		}
	}

	// A client reads part of the stream; the viewer restarts while a node
	// publishes; the client resumes after the last seq it saw.
	first := watchJSON(t, "ws://"+mainAddr.String()+"/ws", "--since", "0", "--count", "66")
	v.stop()
	publishDemo(t, url, "node-e")
	v = startViewer(t, ctx, args...)
	v.waitHealthy(t, base)
	total := demoEvents * 5
	rest := watchJSON(t, "ws://"+mainAddr.String()+"/ws", "--since", strconv.FormatUint(first[len(first)-1].Seq, 10), "--count", strconv.Itoa(total-len(first)))
	full := watchJSON(t, "ws://"+mainAddr.String()+"/ws", "--since", "0", "--count", strconv.Itoa(total))
	joined := append(first, rest...)
	for i := range full {
		if joined[i].Seq != full[i].Seq || joined[i].Node != full[i].Node || joined[i].Payload != full[i].Payload {
			t.Fatalf("resumed stream differs at %d: seq %d node %s, want seq %d node %s", i, joined[i].Seq, joined[i].Node, full[i].Seq, full[i].Node)
		}
	}
	n := map[string]int{}
	for _, ev := range full {
		n[ev.Node]++
	}
	for _, node := range append(nodes, "node-d", "node-e") {
		if n[node] != demoEvents {
			t.Errorf("after the restart: node %s has %d events, want %d", node, n[node], demoEvents)
		}
	}
}

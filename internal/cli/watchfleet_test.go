package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/fleet/fleettest"
	"github.com/tlstap/tlstap/internal/output"
)

// TestFleetDemoToWatch: three 'tlstap demo' runs, each its own node,
// publish through the real pipeline into NATS JetStream; 'tlstap watch
// nats://' then prints every node's events once, in each node's order,
// and --node narrows it to one node.
func TestFleetDemoToWatch(t *testing.T) {
	s := fleettest.Server(t, 0, t.TempDir())
	url := fleettest.URL(s, "max_age=1h")
	nodes := []string{"node-a", "node-b", "node-c"}
	for _, node := range nodes {
		code, _, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "none", "--listen", "", "--node", node, "--eventaddr", url)
		if code != 0 {
			t.Fatalf("demo --node %s: exit code %d: %s", node, code, stderr)
		}
	}
	const perNode = 48 // events in the demo (testdata/demo.jsonl)

	code, stdout, stderr := runMain(t, "watch", url, "--since", "0", "--json", "--count", strconv.Itoa(perNode*len(nodes)))
	if code != 0 {
		t.Fatalf("watch: exit code %d: %s", code, stderr)
	}
	next := map[string]uint64{}
	requestsB := 0
	for line := range strings.Lines(stdout) {
		var ev output.JSONEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if want := next[ev.Node] + 1; ev.Seq != want {
			t.Fatalf("node %q: seq %d, want %d", ev.Node, ev.Seq, want)
		}
		next[ev.Node] = ev.Seq
		if ev.Node == "node-b" && (ev.Type == 1 || ev.Type == 2) {
			requestsB++
		}
	}
	for _, node := range nodes {
		if next[node] != perNode {
			t.Errorf("node %s: %d events, want %d", node, next[node], perNode)
		}
	}

	code, stdout, stderr = runMain(t, "watch", url, "--since", "0", "--json", "--count", strconv.Itoa(requestsB), "--node", "node-b", "--type", "request")
	if code != 0 {
		t.Fatalf("watch --node: exit code %d: %s", code, stderr)
	}
	n := 0
	for line := range strings.Lines(stdout) {
		var ev output.JSONEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if ev.Node != "node-b" || (ev.Type != 1 && ev.Type != 2) {
			t.Fatalf("--node node-b --type request printed node %q type %d", ev.Node, ev.Type)
		}
		n++
	}
	if n != requestsB || n == 0 {
		t.Fatalf("%d requests of node-b, want %d", n, requestsB)
	}
}

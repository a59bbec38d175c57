package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestWatchNATSNoReconnect: 'tlstap watch nats://... --no-reconnect' exits
// with an error when the server goes away, instead of waiting for it; and
// its text output names each event's node.
func TestWatchNATSNoReconnect(t *testing.T) {
	s := fleettest.Server(t, 0, t.TempDir())
	url := fleettest.URL(s, "")
	publishDemo(t, url, "node-a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := tlstapCmd(ctx, "watch", url, "--since", "0", "--no-reconnect")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("no output: %s", stderr.String())
	}
	if !strings.Contains(sc.Text(), " node=node-a") {
		t.Errorf("text header without the node: %q", sc.Text())
	}
	go io.Copy(io.Discard, out)
	s.Shutdown()
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("watch --no-reconnect after the server went: %v (want exit code 1)\n%s", err, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatal("watch --no-reconnect did not exit when the server went away")
	}
}

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	xws "golang.org/x/net/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/fleet/fleettest"
	"github.com/tlstap/tlstap/internal/kube/kubetest"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestTLSToNATS: a live 'tlstap tls --eventaddr nats://' captures curl,
// started inside a cgroup named like a docker container's, talking to
// nginx; the events arrive in JetStream with the node, the cgroup id and
// the container id, and the response paired with its request.
func TestTLSToNATS(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF and creating cgroups")
	s := fleettest.Server(t, 0, t.TempDir())
	url := fleettest.URL(s, "")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"live.txt": []byte("from a container\n")}})
	cg := testenv.NewContainerCgroup(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "tls", "--comm", "curl", "--listen", "", "-o", "none", "--node", "live-1", "--eventaddr", url)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()

	c, err := fleet.Subscribe(ctx, url, fleet.ConsumerOptions{From: fleet.FromAll})
	for err != nil && ctx.Err() == nil {
		// The stream exists once tlstap has connected.
		time.Sleep(100 * time.Millisecond)
		c, err = fleet.Subscribe(ctx, url, fleet.ConsumerOptions{From: fleet.FromAll})
	}
	if err != nil {
		t.Fatalf("subscribe: %v\n%s", err, stderr.String())
	}
	defer c.Close()
	got := make(chan []*eventpb.Event, 1)
	path := fmt.Sprintf("/live.txt?n=%d", time.Now().UnixNano())
	go func() {
		var req, resp *eventpb.Event
		for req == nil || resp == nil {
			m, err := c.Next(ctx)
			if err != nil {
				got <- nil
				return
			}
			ev := m.Entry.GetEventPayload()
			if ev.GetPath() != path {
				continue
			}
			if m.Node != "live-1" {
				t.Errorf("header node %q", m.Node)
			}
			switch ev.GetType() {
			case 1:
				req = ev
			case 3:
				resp = ev
			}
		}
		got <- []*eventpb.Event{req, resp}
	}()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		// Again until seen: the first may come before the probes attach.
		curl := exec.CommandContext(ctx, "curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", srv.URL(path))
		cg.Place(curl)
		if out, err := curl.CombinedOutput(); err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		select {
		case evs := <-got:
			if evs == nil {
				t.Fatalf("stream ended\n%s", stderr.String())
			}
			req, resp := evs[0], evs[1]
			for _, ev := range evs {
				if ev.GetNode() != "live-1" || ev.GetCgroupId() != cg.ID || ev.GetContainerId() != cg.Container || ev.GetPname() != "curl" {
					t.Errorf("event #%d: node %q cgroup %d container %q pname %q; want live-1 %d %q curl",
						ev.GetSeq(), ev.GetNode(), ev.GetCgroupId(), ev.GetContainerId(), ev.GetPname(), cg.ID, cg.Container)
				}
			}
			if resp.GetRequestSeq() != req.GetSeq() || !strings.Contains(string(resp.GetPayload()), "from a container") {
				t.Errorf("response: request_seq %d (request #%d), payload %q", resp.GetRequestSeq(), req.GetSeq(), resp.GetPayload())
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no event for %s in NATS\n%s", path, stderr.String())
		}
	}
}

// TestECaptureQIntegratedMode starts tlstap with exactly the command line
// eCaptureQ's GUI uses in integrated mode (another port), connects the
// way the GUI does (Origin http://localhost/, binary frames, one LogEntry
// each) and receives the events of a curl request captured for real.
func TestECaptureQIntegratedMode(t *testing.T) {
	testenv.RequireRoot(t, "live capture (CAP_BPF, CAP_PERFMON)")
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "tls", "--ecaptureq", "ws://"+addr)
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var ws *xws.Conn
	for {
		cfg, err := xws.NewConfig("ws://"+addr+"/", "http://localhost/")
		if err != nil {
			t.Fatal(err)
		}
		if ws, err = xws.DialConfig(cfg); err == nil {
			break
		}
		if ctx.Err() != nil || cmd.ProcessState != nil {
			t.Fatalf("no eCaptureQ listener: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer ws.Close()

	path := fmt.Sprintf("/ecaptureq-gui-%d", time.Now().UnixNano())
	got := make(chan error, 1)
	go func() {
		for {
			var b []byte
			ws.SetReadDeadline(time.Now().Add(time.Minute))
			if err := xws.Message.Receive(ws, &b); err != nil {
				got <- err
				return
			}
			var m eventpb.LogEntry
			if err := proto.Unmarshal(b, &m); err != nil {
				got <- fmt.Errorf("a frame is not one LogEntry: %w", err)
				return
			}
			if strings.Contains(string(m.GetEventPayload().GetPayload()), "GET "+path+" ") {
				got <- nil
				return
			}
		}
	}()
	// Requests until the GUI-style client has seen one: the first may
	// come before the probes are attached.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if out, err := exec.CommandContext(ctx, "curl", "-sS", "-k", "--http1.1", srv.URL+path).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("eCaptureQ client: %v\n%s", err, stderr.String())
			}
			return
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no event for %s\n%s", path, stderr.String())
		}
	}
}

// TestPodsLive: a live 'tlstap tls --pods URL' pointed at a fake
// Kubernetes API (TLS, bearer token, list + watch), and one pointed at a
// fake docker socket (the kubelet's labels), names the pod of curl
// run in a cgroup named like a docker container's, whose id the fake API
// lists as a pod's container on this node: curl's events carry the pod
// and namespace, nginx's (outside) none; the pod is learned from the
// watch, and a broken watch is resumed while capture runs. tlstap's own
// connection to the API, a Go crypto/tls client, is never captured:
// --comm selects tlstap's own process name too, and no event has
// tlstap's pid. (The Go capture never probes tlstap's own executable,
// and the API connection's local end is registered as tlstap's; the fake
// API runs in this test binary, the same file, so its side is not
// probed either.)
func TestPodsLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF and creating cgroups")
	t.Run("api", func(t *testing.T) {
		api := kubetest.New(t)
		api.AddPod("kube-system", "coredns-5d78c9869d-x7k2p", "node-a", "containerd://"+hexOf('0'))
		api.AddPod("shop", "elsewhere", "node-b", "containerd://"+hexOf('1'))
		podsLive(t, podSource{
			args:  []string{"--pods", api.URL, "--pods-token", api.TokenFile, "--pods-ca", api.CAFile, "--pods-node", "node-a"},
			ready: func() bool { _, watches := api.Counts(); return watches > 0 },
			add:   func(id string) { api.AddPod("shop", "web-7d9f8b6c5-abcde", "node-a", "containerd://"+id) },
			// API traffic while the capture surely runs (curl's events
			// are out): the watch breaks, tlstap connects again and reads
			// a new pod.
			churn: func(ctx context.Context) {
				_, watches := api.Counts()
				api.Break()
				api.AddPod("shop", "later", "node-a", "containerd://"+hexOf('2'))
				for _, w := api.Counts(); w <= watches && ctx.Err() == nil; _, w = api.Counts() {
					time.Sleep(50 * time.Millisecond)
				}
			},
			check: func(t *testing.T) {
				if lists, watches := api.Counts(); lists < 1 || watches < 2 {
					t.Errorf("the fake API served %d lists and %d watches, want a resumed watch", lists, watches)
				}
			},
		})
	})
	t.Run("docker socket", func(t *testing.T) {
		rt := kubetest.NewRuntime(t, "docker")
		podsLive(t, podSource{
			args:  []string{"--pods", rt.Spec},
			ready: func() bool { return true },
			add:   func(id string) { rt.Add(id, "shop", "web-7d9f8b6c5-abcde") },
			churn: func(context.Context) {},
			check: func(t *testing.T) {
				if rt.Requests() < 1 {
					t.Error("the fake runtime was never asked")
				}
			},
		})
	})
}

// podSource is where TestPodsLive's tlstap learns pods from.
type podSource struct {
	args  []string
	ready func() bool           // tlstap is connected to the source
	add   func(id string)       // the curl container's pod appears
	churn func(context.Context) // source traffic while capture runs
	check func(t *testing.T)    // what the source saw
}

func podsLive(t *testing.T, source podSource) {
	cg := testenv.NewContainerCgroup(t)
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"pod.txt": []byte("from a pod\n")}})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	self := filepath.Base(os.Args[0])
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, append([]string{"tls", "--comm", "curl", "--comm", "nginx", "--comm", self[:min(len(self), 15)],
		"--listen", "", "-o", "json", "--node", "host-1"}, source.args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type event struct {
		Seq          uint64 `json:"seq"`
		PID          int64  `json:"pid"`
		Pname        string `json:"pname"`
		Type         uint32 `json:"type"`
		DstPort      uint32 `json:"dst_port"`
		SrcPort      uint32 `json:"src_port"`
		Path         string `json:"path"`
		Container    string `json:"container_id"`
		PodName      string `json:"pod_name"`
		PodNamespace string `json:"pod_namespace"`
	}
	var (
		mu     sync.Mutex
		events []event
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
			}
		}
		io.Copy(io.Discard, out)
	})
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		wg.Wait()
	}()

	// The curl pod starts once tlstap is connected: with the API, it is
	// learned from the watch.
	for !source.ready() {
		if ctx.Err() != nil {
			t.Fatalf("tlstap never connected to the pod source\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	source.add(cg.Container)

	// Until a request and its response from curl in the cgroup carry the
	// pod: the first curls may run before the probes attach or before the
	// watch has listed the pods (those events go out without the pod).
	path := fmt.Sprintf("/pod.txt?n=%d", time.Now().UnixNano())
	var curls []int
	named := func() (req, resp bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.Path == path && ev.PodName != "" {
				req = req || ev.Type == 1
				resp = resp || ev.Type == 3
			}
		}
		return req, resp
	}
	for {
		curl := exec.CommandContext(ctx, "curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", srv.URL(path))
		cg.Place(curl)
		if b, err := curl.CombinedOutput(); err != nil {
			t.Fatalf("curl: %v: %s", err, b)
		}
		curls = append(curls, curl.Process.Pid)
		if req, resp := named(); req && resp {
			break
		}
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("no curl event with its pod\n%s", stderr.String())
		}
	}
	source.churn(ctx)

	// Once more, now that the pod is known: every event of this curl has it.
	last := exec.CommandContext(ctx, "curl", "-sS", "-k", "--http1.1", "-o", "/dev/null", srv.URL(path+"&last"))
	cg.Place(last)
	if b, err := last.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v: %s", err, b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		mu.Lock()
		for _, ev := range events {
			if int(ev.PID) == last.Process.Pid && (ev.Type == 1 || ev.Type == 3) {
				n++
			}
		}
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	wg.Wait()

	var inPod, lastN, host, fromAPI int
	for _, ev := range events {
		switch {
		case int(ev.PID) == cmd.Process.Pid:
			t.Errorf("tlstap captured itself: event #%d %s %d -> %d", ev.Seq, ev.Pname, ev.SrcPort, ev.DstPort)
		case ev.Pname == "nginx":
			host++
			if ev.PodName != "" || ev.PodNamespace != "" || ev.Container != "" {
				t.Errorf("nginx event #%d: container %q pod %s/%s, want none", ev.Seq, ev.Container, ev.PodNamespace, ev.PodName)
			}
		case ev.Pname == "curl":
			if ev.Container != cg.Container {
				t.Errorf("curl event #%d: container %q, want %q", ev.Seq, ev.Container, cg.Container)
			}
			if ev.PodName != "" {
				inPod++
				if ev.PodName != "web-7d9f8b6c5-abcde" || ev.PodNamespace != "shop" {
					t.Errorf("curl event #%d: pod %s/%s, want shop/web-7d9f8b6c5-abcde", ev.Seq, ev.PodNamespace, ev.PodName)
				}
			}
			if int(ev.PID) == last.Process.Pid {
				lastN++
				if ev.PodName == "" {
					t.Errorf("curl event #%d after the pod was known has none", ev.Seq)
				}
			}
		default:
			fromAPI++
			t.Errorf("event #%d of %s (pid %d): want only curl and nginx", ev.Seq, ev.Pname, ev.PID)
		}
	}
	if inPod < 2 || lastN < 2 || host < 2 {
		t.Errorf("%d curl events with the pod (%d of the last curl), %d nginx events; want 2 or more each\n%s", inPod, lastN, host, stderr.String())
	}
	source.check(t)
	t.Logf("%d curls; %d events with the pod; %d nginx events; %d others; none of tlstap's (pid %d)",
		len(curls)+1, inPod, host, fromAPI, cmd.Process.Pid)
}

func hexOf(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

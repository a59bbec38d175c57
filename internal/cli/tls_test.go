package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	xws "golang.org/x/net/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/fleet"
	"github.com/tlstap/tlstap/internal/fleet/fleettest"
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

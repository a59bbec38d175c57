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

	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

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

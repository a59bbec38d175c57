package cli

import (
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
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/client"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestFilterLive: against a live 'tlstap tls' capturing curl for real, one
// filter text selects the same events from the stream (client.Filters)
// and for the webhook forwarder (--forward-filter), and --comm (the
// capture-side filter, pushed into the BPF maps through the filter model)
// keeps every other process out.
func TestFilterLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture (CAP_BPF, CAP_PERFMON)")
	const expr = "~m POST & ~c 5xx"
	dir := t.TempDir()
	curlPath, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	curl := filepath.Join(dir, "tlstapf-curl") // its comm selects this test's curls
	if err := os.Symlink(curlPath, curl); err != nil {
		t.Fatal(err)
	}
	app := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "done")
	}))
	defer app.Close()

	var (
		hookMu sync.Mutex
		hooked []map[string]any
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			hookMu.Lock()
			hooked = append(hooked, ev)
			hookMu.Unlock()
		}
	}))
	defer hook.Close()

	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	const token = "filter-live-test-token-0123456789"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "tls", "--listen", addr, "--tls=false", "--token", token, "--state-dir", dir, "-o", "none",
		"--comm", "tlstapf-curl", "--forward-url", hook.URL, "--forward-filter", expr)
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	var c *client.Client
	for {
		c, err = client.Dial(ctx, client.Options{URL: "ws://" + addr + "/ws", Token: token, Filters: client.Filters{Filter: expr}})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no stream: %v\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Close()

	// Unfiltered, the stream would carry a GET and its 200, a POST and its
	// 500, per round, and plain curl's (not selected by --comm) too.
	got := make(chan *eventpb.Event, 64)
	go func() {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				close(got)
				return
			}
			if ev := m.GetEventPayload(); ev != nil {
				got <- ev
			}
		}
	}()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	var streamed []*eventpb.Event
	for round := 0; len(streamed) == 0; round++ {
		for _, args := range [][]string{
			{curl, "-sk", "--http1.1", app.URL + fmt.Sprintf("/get-%d", round)},
			{curl, "-sk", "--http1.1", "-d", "x=1", app.URL + fmt.Sprintf("/post-%d", round)},
			{"curl", "-sk", "--http1.1", "-d", "x=1", app.URL + "/other-process"},
		} {
			if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", args, err, out)
			}
		}
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("stream ended: %v\n%s", c.Err(), stderr.String())
			}
			streamed = append(streamed, ev)
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no event selected by %q\n%s", expr, stderr.String())
		}
	}
	for _, ev := range streamed {
		if ev.GetMethod() != "POST" || ev.GetStatus() != 500 || ev.GetPname() != "tlstapf-curl" {
			t.Errorf("stream with %q delivered %s %s %d from %s", expr, ev.GetMethod(), ev.GetPath(), ev.GetStatus(), ev.GetPname())
		}
	}
	// The webhook gets the same selection; wait until it has one.
	for {
		hookMu.Lock()
		n := len(hooked)
		hookMu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the webhook got nothing for %q\n%s", expr, stderr.String())
		case <-tick.C:
		}
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	for _, ev := range hooked {
		if ev["method"] != "POST" || ev["status"] != float64(500) || ev["pname"] != "tlstapf-curl" {
			t.Errorf("webhook with %q got method %v status %v path %v from %v", expr, ev["method"], ev["status"], ev["path"], ev["pname"])
		}
	}
}

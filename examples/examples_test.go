package examples

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/server"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

const token = "examples-test-token-0123456789"

// events are what the server retains when the examples connect: a log
// line, then an HTTP/1.1 exchange, an HTTP/2 request over IPv6 and a
// WebSocket message from three processes.
func events() []*eventpb.LogEntry {
	req := "GET /api/products HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
	h2 := "POST /v1/orders HTTP/2\r\nhost: api.example.com\r\ncontent-type: application/json\r\n\r\n{\"sku\":42}"
	ev := func(e *eventpb.Event) *eventpb.LogEntry {
		e.Length = uint32(len(e.Payload))
		return &eventpb.LogEntry{LogType: eventpb.LogType_LOG_TYPE_EVENT, Payload: &eventpb.LogEntry_EventPayload{EventPayload: e}}
	}
	return []*eventpb.LogEntry{
		{LogType: eventpb.LogType_LOG_TYPE_PROCESS_LOG, Payload: &eventpb.LogEntry_RunLog{RunLog: "level=INFO msg=\"capture started\""}},
		ev(&eventpb.Event{Seq: 1, Type: 1, Pid: 4242, Pname: "curl", SrcIp: "127.0.0.1", SrcPort: 40000, DstIp: "127.0.0.1", DstPort: 443,
			Host: "shop.example.com", Method: "GET", Path: "/api/products", Payload: []byte(req)}),
		ev(&eventpb.Event{Seq: 2, Type: 3, Pid: 4242, Pname: "curl", SrcIp: "127.0.0.1", SrcPort: 443, DstIp: "127.0.0.1", DstPort: 40000,
			Host: "shop.example.com", Status: 200, RequestSeq: 1, ContentType: "application/json", Payload: []byte(resp)}),
		ev(&eventpb.Event{Seq: 3, Type: 2, Pid: 5150, Pname: "python3", SrcIp: "::1", SrcPort: 50000, DstIp: "::1", DstPort: 8443, StreamId: 1,
			Host: "api.example.com", Method: "POST", Path: "/v1/orders", Payload: []byte(h2)}),
		ev(&eventpb.Event{Seq: 4, Type: 5, Pid: 6000, Pname: "chat", SrcIp: "127.0.0.1", SrcPort: 41000, DstIp: "127.0.0.1", DstPort: 443,
			WsOpcode: 2, Payload: []byte{0x00, 0x01, 0xfe}}),
	}
}

// clients returns the command line of each example.
func clients(t *testing.T) map[string][]string {
	t.Helper()
	py := python(t)
	if _, err := os.Stat(filepath.Join("node", "node_modules", "ws")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = "node"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in examples/node: %v\n%s", err, out)
		}
	}
	goBin := filepath.Join(t.TempDir(), "watch")
	if out, err := exec.Command("go", "build", "-o", goBin, "./go").CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/go: %v\n%s", err, out)
	}
	return map[string][]string{
		"python": {py, filepath.Join("python", "watch.py")},
		"node":   {"node", filepath.Join("node", "watch.js")},
		"go":     {goBin},
	}
}

func TestExamples(t *testing.T) {
	b := broker.New(broker.Options{}, nil)
	srv, err := server.New(server.Options{Listen: "127.0.0.1:0", StateDir: t.TempDir(), Token: token}, b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	for _, e := range events() {
		b.Publish(e)
	}
	url := "wss://" + srv.Addr().String() + "/ws"
	fp := srv.Fingerprint().String()
	wrongFP := strings.Repeat("00:", 31) + "00"

	tests := []struct {
		name   string
		args   []string
		golden string // expected stdout; "" for none
		fail   bool   // must exit non-zero
		stderr string // must appear on stderr
	}{
		{name: "all", args: []string{"--fingerprint", fp, "--replay", "--count", "4"}, golden: "all.golden"},
		{name: "host and type", args: []string{"--fingerprint", fp, "--replay", "--host", "shop.example.com", "--type", "request", "--no-logs", "--count", "1"}, golden: "shop-request.golden"},
		{name: "pid", args: []string{"--fingerprint", fp, "--replay", "--pid", "5150", "--pid", "6000", "--no-logs", "--count", "2"}, golden: "pids.golden"},
		{name: "port and pname", args: []string{"--fingerprint", fp, "--replay", "--port", "40000", "--pname", "curl", "--type", "response", "--no-logs", "--count", "1"}, golden: "response.golden"},
		{name: "since", args: []string{"--fingerprint", "sha256:" + strings.ReplaceAll(strings.ToLower(fp), ":", ""), "--since", "2", "--no-logs", "--count", "2", "--payload"}, golden: "since-payload.golden"},
		{name: "insecure", args: []string{"--insecure", "--replay", "--no-logs", "--count", "1", "--type", "websocket"}, golden: "websocket.golden", stderr: "NOT verified"},
		{name: "wrong fingerprint", args: []string{"--fingerprint", wrongFP, "--replay", "--count", "1"}, fail: true, stderr: "mismatch"},
		{name: "no pin", args: []string{"--replay", "--count", "1"}, fail: true, stderr: "fingerprint"},
		{name: "bad token", args: []string{"--fingerprint", fp, "--token", "not-the-token-0123456789", "--replay", "--count", "1"}, fail: true, stderr: "401"},
	}
	for lang, cmdline := range clients(t) {
		for _, tt := range tests {
			t.Run(lang+"/"+tt.name, func(t *testing.T) {
				args := append(append([]string{}, cmdline[1:]...), "--url", url, "--timeout", "20")
				if !contains(tt.args, "--token") {
					args = append(args, "--token", token)
				}
				args = append(args, tt.args...)
				cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer ccancel()
				cmd := exec.CommandContext(cctx, cmdline[0], args...)
				cmd.Env = append(os.Environ(), "TLSTAP_TOKEN=", "TLSTAP_FINGERPRINT=")
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if tt.fail != (err != nil) {
					t.Fatalf("exit error %v, want failure=%v\nstdout:\n%s\nstderr:\n%s", err, tt.fail, stdout.String(), stderr.String())
				}
				if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
					t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
				}
				if tt.fail {
					if stdout.Len() > 0 {
						t.Errorf("printed despite failing:\n%s", stdout.String())
					}
					return
				}
				checkGolden(t, tt.golden, stdout.Bytes())
			})
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// firstOutput holds, per golden file, the output of the first client that
// checked it in this run: with -update, every client must still agree
// (without it, each is compared with the file).
var firstOutput sync.Map

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	if first, loaded := firstOutput.LoadOrStore(name, got); *golden.Update && loaded && !bytes.Equal(first.([]byte), got) {
		t.Errorf("clients disagree on %s:\n%s", name, golden.FirstDiff(first.([]byte), got))
	}
	golden.Check(t, filepath.Join("testdata", name), got)
}

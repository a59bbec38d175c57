package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
	"github.com/tlstap/tlstap/internal/exporttest"
	"github.com/tlstap/tlstap/internal/output/har"
	"github.com/tlstap/tlstap/internal/output/pcapng"
	"github.com/tlstap/tlstap/internal/testenv"
)

// alias links name to the program at target in dir: a process started
// through the link has name as its comm, so the capture filter selects
// this test's processes and no other test's.
func alias(t *testing.T, dir, target, name string) string {
	t.Helper()
	path, err := exec.LookPath(target)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, name)
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// chunkLog is a ChunkWriter that keeps what it is given.
type chunkLog struct {
	mu sync.Mutex
	cs []capture.Chunk
}

func (l *chunkLog) Write(c *capture.Chunk) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cs = append(l.cs, *c)
	return nil
}
func (l *chunkLog) Flush() error { return nil }
func (l *chunkLog) Close() error { return nil }

func (l *chunkLog) chunks() []capture.Chunk {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.cs)
}

const wsClient = `
import ssl, sys, websocket
ws = websocket.create_connection(sys.argv[1], sslopt={"cert_reqs": ssl.CERT_NONE})
for m in ["hello", "tlstap"]:
    ws.send(m)
    ws.recv()
ws.send_binary(b"\x00\x01\x02\xff")
ws.recv()
ws.close()
`

// TestExportLive captures curl (HTTP/1.1 and HTTP/2 against nginx) and a
// Python WebSocket session, writes the pcapng as 'tlstap tls --pcapng'
// does and a HAR from the same events, and checks both with tshark and
// the HAR 1.2 validator.
func TestExportLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	dir := t.TempDir()
	curl := alias(t, dir, "curl", "tlstapx-curl")
	py := alias(t, dir, "/usr/bin/python3", "tlstapx-py")
	srv := testenv.StartNginx(t, testenv.NginxConfig{HTTP2: true, Files: map[string][]byte{
		"a.txt": []byte("first body\n"), "b.json": []byte(`{"b":2}`),
	}})
	// The WebSocket server is Go's crypto/tls, which tlstap does not see:
	// only the Python client (OpenSSL) is captured.
	ws := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	ws.StartTLS()
	defer ws.Close()

	pcap := filepath.Join(dir, "live.pcapng")
	pf, err := pcapng.Create(pcap, 0, pcapng.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := openssl.New(openssl.Options{Filter: openssl.Filter{Comms: []string{"tlstapx-curl", "tlstapx-py"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cfg := config.Default()
	cfg.Output.Format = "none"
	e := engine.New(engine.Options{Config: cfg, Taps: []engine.ChunkWriter{pf}, Stdout: testWriter{t}, Stderr: testWriter{t}})
	events := collect(e)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(ctx, src) }()

	var pids []int
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
		}
		pids = append(pids, cmd.Process.Pid)
	}
	run(curl, "-sS", "-k", "--http1.1", "-o", "/dev/null", "-o", "/dev/null", srv.URL("/a.txt"), srv.URL("/b.json"))
	run(curl, "-sS", "-k", "--http2", "-o", "/dev/null", "-o", "/dev/null", srv.URL("/a.txt"), srv.URL("/b.json"))
	run(py, "-c", wsClient, "wss://"+strings.TrimPrefix(ws.URL, "https://")+"/chat")

	// 4 curl responses, the 101, and 8 WebSocket messages (3 sent, 3
	// echoed, the close and its reply).
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, msgs := 0, 0
		events.mu.Lock()
		for _, ev := range events.evs {
			if !slices.Contains(pids, int(ev.GetPid())) {
				continue
			}
			switch ev.GetType() {
			case 3, 4:
				resp++
			case 5:
				msgs++
			}
		}
		events.mu.Unlock()
		if resp == 5 && msgs == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out with %d responses and %d WebSocket messages", resp, msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	evs := events.all()

	exporttest.CheckPcapng(t, pcap, evs, exporttest.PcapngWant{})

	harPath := filepath.Join(dir, "live.har")
	fh, err := os.Create(harPath)
	if err != nil {
		t.Fatal(err)
	}
	hw := har.NewWriter(fh, har.Options{})
	for _, ev := range evs {
		if err := hw.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := hw.Close(); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	exporttest.ValidateHAR(t, harPath)
	h := exporttest.ReadHAR(t, harPath)
	exporttest.CheckHAR(t, h, evs)
	var h2, wsEntries int
	for _, e := range h.Log.Entries {
		if e.Request.HTTPVersion == "http/2.0" {
			h2++
		}
		if e.ResourceType == "websocket" {
			wsEntries++
		}
	}
	if h2 != 2 || wsEntries != 1 {
		t.Errorf("%d HTTP/2 entries and %d WebSocket sessions, want 2 and 1", h2, wsEntries)
	}
}

// TestPcapngRingLoss forces a ring-buffer loss, as the capture tests do
// (a small ring nobody reads during a bulk transfer), and requires the
// pcapng to show the gap where the loss was recorded, and only there.
func TestPcapngRingLoss(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	cli := testenv.StartOpenSSLClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.Stdin.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "hello\n"); err != nil {
		t.Fatal(err)
	}
	src, err := openssl.New(openssl.Options{RingBytes: 64 << 10, Filter: openssl.Filter{PIDs: []uint32{uint32(cli.PID())}}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Nothing reads the ring yet: most of this cannot be delivered.
	bulk := strings.Repeat(strings.Repeat("x", 1023)+"\n", 1024)
	if _, err := srv.Stdin.Write([]byte(bulk)); err != nil {
		t.Fatal(err)
	}
	if err := cli.WaitOutput(ctx, bulk); err != nil {
		t.Fatal(err)
	}

	pcap := filepath.Join(t.TempDir(), "loss.pcapng")
	pf, err := pcapng.Create(pcap, 0, pcapng.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := &chunkLog{}
	cfg := config.Default()
	cfg.Output.Format = "none"
	e := engine.New(engine.Options{Config: cfg, Taps: []engine.ChunkWriter{pf, log}, Stdout: testWriter{t}, Stderr: testWriter{t}})
	events := collect(e)
	runCtx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(runCtx, src) }()
	const marker = "marker after the loss\n"
	if _, err := srv.Stdin.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	for !bytes.Contains(readBytes(log.chunks()), []byte(marker)) {
		if ctx.Err() != nil {
			t.Fatal("timed out waiting for the marker")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}

	// One gap per run of losses that more data of the same direction
	// follows.
	gaps := 0
	lost := map[capture.Direction]bool{}
	for _, c := range log.chunks() {
		switch c.Kind {
		case capture.Lost:
			lost[c.Dir] = true
		case capture.Data:
			if lost[c.Dir] {
				gaps++
				lost[c.Dir] = false
			}
		}
	}
	if gaps == 0 {
		t.Fatal("no loss was recorded; the test could not force one")
	}
	exporttest.CheckPcapng(t, pcap, events.all(), exporttest.PcapngWant{Gaps: gaps, GapComments: gaps})
}

func readBytes(cs []capture.Chunk) []byte {
	var b []byte
	for _, c := range cs {
		if c.Kind == capture.Data && c.Dir == capture.Read {
			b = append(b, c.Data...)
		}
	}
	return b
}

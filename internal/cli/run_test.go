package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/exporttest"
	"github.com/tlstap/tlstap/internal/testenv"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TestDemoExitDeliversToWebhook: 'demo --exit' delivers every event to a
// webhook before exiting, and its summary says so.
func TestDemoExitDeliversToWebhook(t *testing.T) {
	var n atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	defer hook.Close()
	code, _, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "none", "--listen", "", "--forward-url", hook.URL+"/hook")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if got := n.Load(); got != 48 {
		t.Errorf("webhook received %d of the demo's 48 events", got)
	}
	want := fmt.Sprintf("forward webhook %s/hook: 48 delivered, 0 failed, 0 dropped", hook.URL)
	if !strings.Contains(stderr, "delivered at exit: 48 delivered, 0 failed, 0 dropped") || !strings.Contains(stderr, want) {
		t.Errorf("summary missing or wrong, want %q:\n%s", want, stderr)
	}
}

// TestInterruptSaysShuttingDown: SIGINT stops a running tlstap with a
// word about it and the delivery summary, and exit code 0.
func TestInterruptSaysShuttingDown(t *testing.T) {
	var n atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	defer hook.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "demo", "--loop", "-o", "none", "--listen", "", "--forward-url", hook.URL)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for n.Load() < 10 {
		if ctx.Err() != nil {
			t.Fatalf("no deliveries: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{"tlstap: shutting down: capture stopped", "delivered at exit: ", fmt.Sprintf("forward webhook %s: %d delivered, 0 failed, 0 dropped", hook.URL, n.Load())} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

// TestRecordPathChecks: --record refuses an existing file unless told to,
// and a bad path fails before capture or the server start.
func TestRecordPathChecks(t *testing.T) {
	existing := writeFile(t, "old.rec", []byte("keep me"))
	code, _, stderr := runMain(t, "tls", "--listen", "", "--record", existing)
	if code != 1 || !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "--record-overwrite") {
		t.Errorf("existing file: code %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("existing recording was changed: %q", b)
	}
	code, _, stderr = runMain(t, "tls", "--record", filepath.Join(t.TempDir(), "no", "such", "dir.rec"))
	if code != 1 || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("bad path: code %d, stderr %q", code, stderr)
	}
	for _, early := range []string{"capturing", "serving events"} {
		if strings.Contains(stderr, early) {
			t.Errorf("bad path reported after %q:\n%s", early, stderr)
		}
	}
}

// TestRecordSurvivesKill9 runs 'tlstap tls --record' for real, makes HTTPS
// requests with curl, kills tlstap with SIGKILL, and replays the
// recording: every request that completed more than a second before the
// kill must be in it.
func TestRecordSurvivesKill9(t *testing.T) {
	testenv.RequireRoot(t, "live capture (CAP_BPF, CAP_PERFMON)")
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer srv.Close()

	rec := filepath.Join(t.TempDir(), "kill.rec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr lockedBuffer
	cmd := tlstapCmd(ctx, "tls", "--listen", "", "-o", "none", "--comm", "curl", "--record", rec)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	for !strings.Contains(stderr.String(), "msg=capturing") {
		if ctx.Err() != nil {
			t.Fatalf("tlstap did not start capturing: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Requests for three seconds, each on its own path; the kill comes
	// while they are still running.
	type done struct {
		path string
		at   time.Time
	}
	var completed []done
	start := time.Now()
	for i := 0; time.Since(start) < 3*time.Second; i++ {
		path := fmt.Sprintf("/kill9-%d", i)
		out, err := exec.CommandContext(ctx, "curl", "-sS", "-k", "--http1.1", srv.URL+path).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		completed = append(completed, done{path, time.Now()})
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	killed = true
	cmd.Wait()

	// Replay what the killed process left.
	if _, err := os.Stat(rec); err != nil {
		t.Fatal(err)
	}
	code, stdout, rstderr := runMain(t, append([]string{"replay", rec, "--exit", "--speed", "0", "-o", "text"}, noListen...)...)
	if code != 0 {
		t.Fatalf("replay: exit code %d: %s", code, rstderr)
	}
	checked := 0
	for _, d := range completed {
		if killedAt.Sub(d.at) <= time.Second {
			continue
		}
		checked++
		if !strings.Contains(stdout, "GET "+d.path+" HTTP/1.1") {
			t.Errorf("request %s completed %v before the kill is not in the recording", d.path, killedAt.Sub(d.at).Round(time.Millisecond))
		}
	}
	if checked == 0 {
		t.Fatal("no request completed more than a second before the kill")
	}
	t.Logf("%d requests checked; replay said: %s", checked, strings.TrimSpace(rstderr))
}

// jsonEvents reads the events of -o json output back.
func jsonEvents(t *testing.T, out string) []*eventpb.Event {
	t.Helper()
	var evs []*eventpb.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var j struct {
			Timestamp           int64
			Seq                 uint64
			RequestSeq          uint64 `json:"request_seq"`
			ConnID              uint64 `json:"conn_id"`
			Type, Status        uint32
			WSOpcode            uint32 `json:"ws_opcode"`
			Pid                 int64
			Pname, Method, Path string
			SrcIP               string `json:"src_ip"`
			DstIP               string `json:"dst_ip"`
			SrcPort             uint32 `json:"src_port"`
			DstPort             uint32 `json:"dst_port"`
			Payload             string
			PayloadEncoding     string `json:"payload_encoding"`
			Part                string
			MessageSeq          uint64 `json:"message_seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		payload := []byte(j.Payload)
		if j.PayloadEncoding == "base64" {
			var err error
			if payload, err = base64.StdEncoding.DecodeString(j.Payload); err != nil {
				t.Fatal(err)
			}
		}
		evs = append(evs, &eventpb.Event{Timestamp: j.Timestamp, Seq: j.Seq, RequestSeq: j.RequestSeq, ConnId: j.ConnID,
			Type: j.Type, Status: j.Status, WsOpcode: j.WSOpcode, Pid: j.Pid, Pname: j.Pname, Method: j.Method, Path: j.Path,
			SrcIp: j.SrcIP, DstIp: j.DstIP, SrcPort: j.SrcPort, DstPort: j.DstPort, Payload: payload,
			Part: eventpb.PartKind(eventpb.PartKind_value["PART_KIND_"+strings.ToUpper(j.Part)]), MessageSeq: j.MessageSeq})
	}
	return evs
}

// The demo exported as pcapng dissects in tshark and as HAR validates,
// both matching the events of the same run.
func TestDemoExports(t *testing.T) {
	dir := t.TempDir()
	pcap, har := filepath.Join(dir, "demo.pcapng"), filepath.Join(dir, "demo.har")
	code, stdout, stderr := runMain(t, "demo", "--exit", "--speed", "0", "-o", "json", "--listen", "", "--pcapng", pcap, "--har", har)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	evs := jsonEvents(t, stdout)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	exporttest.CheckPcapng(t, pcap, evs, exporttest.PcapngWant{})
	exporttest.ValidateHAR(t, har)
	exporttest.CheckHAR(t, exporttest.ReadHAR(t, har), evs)
}

// A recording rebuilds the HAR of its capture, as docs/export.md tells
// users to do after a crash.
func TestReplayRebuildsHAR(t *testing.T) {
	har := filepath.Join(t.TempDir(), "out.har")
	rec := filepath.Join("..", "engine", "testdata", "http1.rec")
	code, stdout, stderr := runMain(t, "replay", rec, "--speed", "0", "--exit", "-o", "json", "--listen", "", "--har", har)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	evs := jsonEvents(t, stdout)
	exporttest.ValidateHAR(t, har)
	h := exporttest.ReadHAR(t, har)
	if len(h.Log.Entries) == 0 {
		t.Fatal("no entries")
	}
	exporttest.CheckHAR(t, h, evs)
}

func TestExportUsageErrors(t *testing.T) {
	code, _, stderr := runMain(t, "demo", "--exit", "--listen", "", "--pcapng", filepath.Join(t.TempDir(), "x.pcapng"), "--pcapng-rotate-size", "-1")
	if code != 2 || !strings.Contains(stderr, "--pcapng-rotate-size must be >= 0") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	code, _, stderr = runMain(t, "demo", "--exit", "--listen", "", "--pcapng", filepath.Join(t.TempDir(), "no", "such", "dir.pcapng"))
	if code == 0 || !strings.Contains(stderr, "pcapng") {
		t.Errorf("unwritable --pcapng: exit %d: %s", code, stderr)
	}
}

// TestServerFlagsJudgedFirst: a bad stream-server setting is a usage
// error from config.Validate (step 1 of run), before the recording is
// created, the capture attaches or anything listens; it used to surface
// from server.New, after the capture had started.
func TestServerFlagsJudgedFirst(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:28999", "--tls=false"}, "--tls: TLS can only be turned off on loopback, not on 0.0.0.0:28999 (--listen)"},
		{[]string{"--token", "short"}, "--token must be at least 16 characters"},
		{[]string{"--listen", "", "--ecaptureq", "ws://0.0.0.0:28998/"}, "--ecaptureq: non-loopback address 0.0.0.0:28998 needs a token"},
		{[]string{"--tls-cert", filepath.Join(t.TempDir(), "none.pem"), "--tls-key", filepath.Join(t.TempDir(), "none.pem")}, "--tls-cert with --tls-key: "},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			rec := filepath.Join(t.TempDir(), "x.rec")
			args := append([]string{"tls", "--record", rec}, tt.args...)
			code, _, stderr := runMain(t, args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			if _, err := os.Stat(rec); !os.IsNotExist(err) {
				t.Errorf("the recording was created before the settings were judged (stat: %v)", err)
			}
			for _, early := range []string{"capturing", "serving events", "attach"} {
				if strings.Contains(stderr, early) {
					t.Errorf("reported after %q:\n%s", early, stderr)
				}
			}
		})
	}
}

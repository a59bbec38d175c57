package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/testenv"
)

// TestSelfSafe is issue 10's acceptance test, capturing for real with the
// tlstap binary: stream clients on OpenSSL (Python websocket-client and
// Node), curl calling the API with the token, a proxy-mode forwarder
// through mitmdump to nginx, a webhook forwarder to a Python HTTPS
// server, a file sink and a recording. Nothing of tlstap's own may come
// back: no event of its listeners' or forwarders' connections, no token
// anywhere, and each original request re-sent exactly once.
func TestSelfSafe(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	python := "/usr/bin/python3"
	for _, bin := range []string{python, "node", "mitmdump", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (scripts/install-deps.sh): %v", bin, err)
		}
	}
	dir := t.TempDir()
	tlstap := buildTlstap(t, dir)
	testdata, _ := filepath.Abs("testdata")
	nodeScript, _ := filepath.Abs("../../examples/node/watch.js")

	// Only requests under this prefix are re-sent: other tests' traffic
	// on this machine is captured too and must not be replayed.
	var nonce [6]byte
	rand.Read(nonce[:])
	prefix := "/selfsafe-" + hex.EncodeToString(nonce[:])
	accessLog := filepath.Join(dir, "access.log")
	nginx := testenv.StartNginx(t, testenv.NginxConfig{AccessLog: accessLog,
		Files: map[string][]byte{prefix[1:] + "/a.txt": []byte("third-party body\n")}})

	mitmAddr := testenv.FreePort(t, testenv.IPv4)
	flowLog := filepath.Join(dir, "flows.jsonl")
	mitm := exec.Command("mitmdump", "--listen-host", mitmAddr.Addr().String(), "--listen-port", strconv.Itoa(int(mitmAddr.Port())),
		"--ssl-insecure", "--set", "confdir="+filepath.Join(dir, "mitm"), "-s", filepath.Join("..", "forward", "testdata", "flowlog.py")) // the forward tests' mitmdump addon
	mitm.Env = append(os.Environ(), "FLOWLOG="+flowLog)
	testenv.StartCmd(t, mitm)

	hookCert := testenv.NewCert(t, t.TempDir())
	hookAddr := testenv.FreePort(t, testenv.IPv4)
	hookLog := filepath.Join(dir, "hook.jsonl")
	testenv.Start(t, python, filepath.Join(testdata, "hook.py"), hookAddr.Addr().String(), strconv.Itoa(int(hookAddr.Port())),
		hookCert.CertFile, hookCert.KeyFile, hookLog)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, a := range []netip.AddrPort{mitmAddr, hookAddr} {
		if err := testenv.WaitListening(ctx, a); err != nil {
			t.Fatalf("%v did not come up: %v", a, err)
		}
	}

	// tlstap itself.
	listen := testenv.FreePort(t, testenv.IPv4)
	ecq := testenv.FreePort(t, testenv.IPv4)
	sinkFile := filepath.Join(dir, "sink.jsonl")
	recording := filepath.Join(dir, "capture.rec")
	cfg, _ := json.Marshal(map[string]any{
		"output": map[string]any{"format": "json"},
		"forward": []map[string]any{
			{"url": "http://" + mitmAddr.String(), "mode": "proxy", "filter": "path=" + prefix + "/*"},
			// Our exchanges, and anything that would be tlstap's own API
			// and stream traffic; not the rest of the machine's.
			{"url": "https://" + hookAddr.String() + "/hook", "mode": "webhook", "filter": "path=" + prefix + "/*|/api/*|/ws|/metrics|/"},
		},
		"sinks": []map[string]any{{"addr": sinkFile, "format": "json"}},
	})
	cfgFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, err := os.Create(filepath.Join(dir, "stdout.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	state := filepath.Join(dir, "state")
	cmd := exec.Command(tlstap, "tls", "--config", cfgFile, "--listen", listen.String(), "--state-dir", state,
		"--ecaptureq", "ws://"+ecq.String(), "--record", recording,
		// The capture is machine-wide; these are the programs of this test
		// (other tests' programs of the same names are captured too).
		"--comm", "curl", "--comm", "nginx", "--comm", "python3", "--comm", "node", "--comm", "mitmdump")
	// The webhook's certificate is the test's own CA.
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+hookCert.CertFile)
	cmd.Stdout = stdout
	tap := startTap(t, cmd)
	stderr := &tap.Stderr
	if err := testenv.WaitListening(ctx, listen); err != nil {
		t.Fatalf("tlstap did not start: %v\n%s", err, stderr.String())
	}
	tokenBytes, err := os.ReadFile(filepath.Join(state, "token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	// The banner follows the bind: wait for it.
	fpRE := regexp.MustCompile(`fingerprint: ([0-9a-fA-F:]+)\n`) // a whole line, not one being written
	var fp []string
	for fp == nil && ctx.Err() == nil {
		fp = fpRE.FindStringSubmatch(stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	if fp == nil {
		t.Fatalf("no fingerprint in tlstap's output:\n%s", stderr.String())
	}

	// The stream clients, on OpenSSL.
	pyClient := testenv.Start(t, python, filepath.Join(testdata, "stream_client.py"), "wss://"+listen.String()+"/ws?token="+token)
	nodeClient := testenv.Start(t, "node", nodeScript, "--url", "wss://"+listen.String()+"/ws", "--token", token,
		"--fingerprint", fp[1], "--payload")
	if err := pyClient.WaitOutput(ctx, `"connected"`); err != nil {
		t.Fatalf("python stream client: %v\n%s", err, pyClient.Output())
	}
	clientPIDs := map[int64]string{int64(pyClient.PID()): "python stream client", int64(nodeClient.PID()): "node stream client"}

	curl := func(args ...string) int {
		t.Helper()
		cmd := exec.Command("curl", append([]string{"-sS", "-k", "-o", "/dev/null", "--fail"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return cmd.Process.Pid
	}
	api := func(path string) int {
		pid := curl("-H", "Authorization: Bearer "+token, "https://"+listen.String()+path)
		clientPIDs[int64(pid)] = "curl " + path
		return pid
	}

	// Over 10 s: three original requests, API calls in between.
	start := time.Now()
	var originals []int
	for i := range 3 {
		originals = append(originals, curl("--http1.1", nginx.URL(fmt.Sprintf("%s/a.txt?n=%d", prefix, i))))
		api("/api/v1/status")
		api("/metrics")
		time.Sleep(2 * time.Second)
	}
	time.Sleep(time.Until(start.Add(10 * time.Second)))

	hits := func() int {
		b, _ := os.ReadFile(accessLog)
		return strings.Count(string(b), prefix+"/a.txt")
	}
	flows := func() int { // one line per flow; the path is in two of its fields
		b, _ := os.ReadFile(flowLog)
		return len(grepLines(b, prefix+"/a.txt"))
	}
	// Each re-send is one request through mitmproxy: wait for all three,
	// then make sure nothing more comes.
	deadline := time.Now().Add(20 * time.Second)
	for hits() < 6 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	h1, f1 := hits(), flows()
	time.Sleep(3 * time.Second)
	h2, f2 := hits(), flows()
	if h1 != 6 || h2 != 6 {
		t.Errorf("nginx saw %d, then %d requests for %d originals, want 2 each (the original and one re-send)", h1, h2, len(originals))
	}
	if f1 != 3 || f2 != 3 {
		t.Errorf("mitmproxy saw %d, then %d requests, want one re-send per original (3)", f1, f2)
	}

	// The kernel counted what it kept out.
	metricsOut, err := exec.Command("curl", "-sS", "-k", "-H", "Authorization: Bearer "+token, "https://"+listen.String()+"/metrics").Output()
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^tlstap_self_excluded_connections_total (\d+)`).FindSubmatch(metricsOut); m == nil || string(m[1]) == "0" {
		t.Errorf("tlstap_self_excluded_connections_total missing or 0 in /metrics:\n%s", grepLines(metricsOut, "self_excluded"))
	}
	// The watcher's work is counted: at least its first look at every
	// running process.
	if m := regexp.MustCompile(`(?m)^tlstap_watch_inspections_total (\d+)`).FindSubmatch(metricsOut); m == nil || string(m[1]) == "0" {
		t.Errorf("tlstap_watch_inspections_total missing or 0 in /metrics:\n%s", grepLines(metricsOut, "watch_"))
	}

	// Stop tlstap: the recording and sink are complete after a clean exit.
	tap.stop(t)

	// No event of tlstap's connections, or of its stream and API clients.
	ours := map[uint32]string{uint32(listen.Port()): "main listener", uint32(ecq.Port()): "eCaptureQ listener", uint32(hookAddr.Port()): "webhook"}
	type ev struct {
		PID     int64  `json:"pid"`
		Pname   string `json:"pname"`
		SrcPort uint32 `json:"src_port"`
		DstPort uint32 `json:"dst_port"`
		Payload string `json:"payload"`
	}
	check := func(name string, evs []ev) (thirdParty int) {
		var bad []string
		defer func() {
			if len(bad) > 0 {
				t.Errorf("%s: %d events of tlstap's own connections or clients, e.g.\n%s", name, len(bad), strings.Join(bad[:min(5, len(bad))], "\n"))
			}
		}()
		for _, e := range evs {
			if who, ok := clientPIDs[e.PID]; ok {
				bad = append(bad, fmt.Sprintf("event of the %s (pid %d)", who, e.PID))
			}
			for _, p := range []uint32{e.SrcPort, e.DstPort} {
				if what, ok := ours[p]; ok {
					bad = append(bad, fmt.Sprintf("event of a connection of tlstap's %s (port %d), pid %d %s", what, p, e.PID, e.Pname))
				}
			}
			if e.DstPort == uint32(nginx.Addr.Port()) || e.SrcPort == uint32(nginx.Addr.Port()) {
				thirdParty++
			}
		}
		return thirdParty
	}
	parse := func(data []byte) []ev {
		var evs []ev
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var e ev
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.PID != 0 {
				evs = append(evs, e)
			}
		}
		return evs
	}
	pyOut := []byte(pyClient.Output())
	if n := check("python stream client", parse(pyOut)); n == 0 {
		t.Errorf("python stream client received no event of the nginx exchanges:\n%s", pyClient.Output())
	}
	stdoutBytes, _ := os.ReadFile(stdout.Name())
	if n := check("tlstap's standard output", parse(stdoutBytes)); n == 0 {
		t.Error("standard output has no event of the nginx exchanges")
	}
	sinkBytes, _ := os.ReadFile(sinkFile)
	check("the file sink", parse(sinkBytes))
	if !strings.Contains(nodeClient.Output(), prefix) {
		t.Errorf("node stream client never showed the nginx exchanges:\n%s", nodeClient.Output())
	}

	// The webhook got the third-party exchanges, none of its own calls,
	// and no replay.
	hookBytes, _ := os.ReadFile(hookLog)
	var hookEvents int
	for line := range strings.Lines(string(hookBytes)) {
		var call struct{ Body string }
		json.Unmarshal([]byte(line), &call)
		body, _ := base64.StdEncoding.DecodeString(call.Body)
		var e ev
		if json.Unmarshal(body, &e) != nil {
			t.Errorf("webhook body is not an event: %.200q", body)
			continue
		}
		p, _ := base64.StdEncoding.DecodeString(e.Payload)
		if bytes.Contains(p, []byte("X-Tlstap-Forwarded")) {
			t.Errorf("webhook got a request tlstap itself sent: %q", p)
		}
		if bytes.Contains(p, []byte(prefix)) {
			hookEvents++
		}
		check("webhook", []ev{e})
	}
	if hookEvents == 0 {
		t.Errorf("webhook got no event of the nginx exchanges (%d calls)", strings.Count(string(hookBytes), "\n"))
	}

	// The token, in any form, nowhere. The terminal banner (the stream
	// URLs and the web UI's URL) is the one place it is printed on
	// purpose.
	var logLines strings.Builder
	for line := range strings.Lines(stderr.String()) {
		if !strings.HasPrefix(line, "  ws") && !strings.HasPrefix(line, "  web UI: ") {
			logLines.WriteString(line)
		}
	}
	recBytes, _ := os.ReadFile(recording)
	if len(recBytes) == 0 {
		t.Error("empty recording")
	}
	flowBytes, _ := os.ReadFile(flowLog)
	for name, data := range map[string][]byte{
		"standard output": stdoutBytes, "log": []byte(logLines.String()), "recording": recBytes,
		"file sink": sinkBytes, "webhook": hookBytes, "mitmproxy": flowBytes,
		"python stream client": pyOut, "node stream client": []byte(nodeClient.Output()),
	} {
		for _, form := range []string{token, base64.StdEncoding.EncodeToString([]byte(token))} {
			if bytes.Contains(data, []byte(form)) {
				t.Errorf("%s holds the token", name)
			}
		}
	}
}

func grepLines(b []byte, s string) []string {
	var out []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/testenv"
)

// TestLibrariesLive is issue 12's acceptance run through the tlstap
// binary, as a user runs it: `tlstap tls` with no capture flags, started
// before the programs, and a stream client attached. GnuTLS (wget,
// gnutls-cli), NSS (tstclnt), node's static OpenSSL and Python's asyncio
// (memory BIOs) each get their request and response to standard output
// with pname, pid, the library, the fd and both ends of the 4-tuple, and
// to the stream client. The capture package's tests check each library in
// depth against the capture source; this one checks the whole binary.
func TestLibrariesLive(t *testing.T) {
	testenv.RequireRoot(t, "live capture with eBPF")
	python := "/usr/bin/python3"
	for _, bin := range []string{python, "node", "wget", "gnutls-cli", "tstclnt"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (scripts/install-deps.sh): %v", bin, err)
		}
	}
	dir := t.TempDir()
	tlstap := buildTlstap(t, dir)
	testdata, _ := filepath.Abs("testdata")

	// The capture is machine-wide: only paths under this prefix are ours.
	var nonce [6]byte
	rand.Read(nonce[:])
	prefix := "/libs-" + hex.EncodeToString(nonce[:])
	body := []byte("library body\n")
	nginx := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{prefix[1:] + "/f.txt": body}})
	host, port := nginx.Addr.Addr().String(), strconv.Itoa(int(nginx.Addr.Port()))

	listen := testenv.FreePort(t, testenv.IPv4)
	stdout, err := os.Create(filepath.Join(dir, "stdout.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd := exec.Command(tlstap, "tls", "-o", "json", "--listen", listen.String(), "--state-dir", filepath.Join(dir, "state"))
	cmd.Stdout = stdout
	tap := startTap(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := testenv.WaitListening(ctx, listen); err != nil {
		t.Fatalf("tlstap did not start: %v\n%s", err, tap.Stderr.String())
	}
	token, err := os.ReadFile(filepath.Join(dir, "state", "token"))
	if err != nil {
		t.Fatal(err)
	}
	stream := testenv.Start(t, python, filepath.Join(testdata, "stream_client.py"),
		"wss://"+listen.String()+"/ws?token="+strings.TrimSpace(string(token)))
	if err := stream.WaitOutput(ctx, `"connected"`); err != nil {
		t.Fatalf("stream client: %v\n%s", err, stream.Output())
	}

	reqFile := filepath.Join(dir, "tstclnt.req")
	tstReq := "GET " + prefix + "/f.txt?p=tstclnt HTTP/1.1\r\nHost: tlstap\r\nConnection: close\r\n\r\n"
	if err := os.WriteFile(reqFile, []byte(tstReq), 0o644); err != nil {
		t.Fatal(err)
	}
	asyncio := `
import asyncio, ssl, sys
async def main():
    c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
    r, w = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]), ssl=c)
    w.write(sys.argv[3].encode()); await w.drain()
    sys.stdout.write((await r.read()).decode(errors="replace")); w.close()
asyncio.run(main())`
	url := func(p string) string { return nginx.URL(prefix + "/f.txt?p=" + p) }
	programs := []struct {
		pname, lib string
		cmd        *exec.Cmd
	}{
		{"wget", "gnutls", exec.Command("wget", "-q", "--no-check-certificate", "-O", "-", url("wget"))},
		// gnutls-cli ends its session when its input ends: the input stays
		// open until the response came (run, below).
		{"gnutls-cli", "gnutls", exec.Command("gnutls-cli", "--insecure", "-p", port, host)},
		{"tstclnt", "nss", exec.Command("tstclnt", "-D", "-o", "-A", reqFile, "-h", host, "-p", port)},
		// node carries its own OpenSSL, attached when node first runs:
		// the request waits out the documented window between a library's
		// first mapping and its probes (docs/benchmarks.md, issue 12).
		{"node", "openssl", exec.Command("node", "-e", `setTimeout(() => require("https").get(process.argv[1], {rejectUnauthorized: false}, r => r.pipe(process.stdout)), 500)`, url("node"))},
		{"python3", "openssl", exec.Command(python, "-c", asyncio, host, port,
			"GET "+prefix+"/f.txt?p=python3 HTTP/1.1\r\nHost: tlstap\r\nConnection: close\r\n\r\n")},
	}
	pids := map[string]int{}
	for _, p := range programs {
		proc := testenv.StartCmd(t, p.cmd)
		pids[p.pname] = proc.PID()
		if p.pname == "gnutls-cli" {
			fmt.Fprintf(proc.Stdin, "GET %s/f.txt?p=gnutls-cli HTTP/1.1\r\nHost: tlstap\r\nConnection: close\r\n\r\n", prefix)
			if err := proc.WaitOutput(ctx, string(body)); err != nil {
				t.Fatalf("gnutls-cli: %v\n%s", err, proc.Output())
			}
		}
		proc.Stdin.Close()
		if err := proc.Wait(ctx); err != nil || !strings.Contains(proc.Output(), string(body)) {
			t.Fatalf("%s: %v; it printed %q, want the body", p.pname, err, proc.Output())
		}
	}

	// Every program's request and response, on standard output with their
	// metadata and at the stream client.
	type ev struct {
		PID      int64  `json:"pid"`
		Pname    string `json:"pname"`
		FD       int64  `json:"fd"`
		SrcIP    string `json:"src_ip"`
		SrcPort  uint32 `json:"src_port"`
		DstIP    string `json:"dst_ip"`
		DstPort  uint32 `json:"dst_port"`
		TypeName string `json:"type_name"`
		Path     string `json:"path"`
		Library  string `json:"tls_library"`
		Payload  string `json:"payload"`
	}
	found := func() (stdoutSeen, streamSeen map[string]int, bad []string) {
		stdoutSeen, streamSeen = map[string]int{}, map[string]int{}
		b, _ := os.ReadFile(stdout.Name())
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var e ev
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.PID == 0 || !strings.HasPrefix(e.Path, prefix) {
				continue
			}
			for _, p := range programs {
				if e.PID != int64(pids[p.pname]) {
					continue
				}
				stdoutSeen[p.pname+" "+e.TypeName]++
				local, remote := e.SrcPort, e.DstPort
				if strings.HasSuffix(e.TypeName, "response") {
					local, remote = remote, local
				}
				if e.Pname != p.pname || e.Library != p.lib || e.FD < 0 || e.FD == 1<<32-1 ||
					e.SrcIP != host || e.DstIP != host || local == 0 || remote != uint32(nginx.Addr.Port()) {
					bad = append(bad, fmt.Sprintf("%s %s: pname %q library %q fd %d %s:%d -> %s:%d", p.pname, e.TypeName,
						e.Pname, e.Library, e.FD, e.SrcIP, e.SrcPort, e.DstIP, e.DstPort))
				}
			}
		}
		for line := range strings.Lines(stream.Output()) {
			var e ev
			if json.Unmarshal([]byte(line), &e) != nil || e.PID == 0 {
				continue
			}
			payload, _ := base64.StdEncoding.DecodeString(e.Payload)
			for _, p := range programs {
				if e.PID == int64(pids[p.pname]) && (bytes.Contains(payload, []byte(prefix)) || bytes.Contains(payload, body)) {
					streamSeen[p.pname]++
				}
			}
		}
		return stdoutSeen, streamSeen, bad
	}
	complete := func(stdoutSeen, streamSeen map[string]int) bool {
		for _, p := range programs {
			if stdoutSeen[p.pname+" http1-request"] == 0 || stdoutSeen[p.pname+" http1-response"] == 0 || streamSeen[p.pname] < 2 {
				return false
			}
		}
		return true
	}
	for {
		if s, st, _ := found(); complete(s, st) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	tap.stop(t)
	stdoutSeen, streamSeen, bad := found()
	for _, p := range programs {
		for _, typ := range []string{"http1-request", "http1-response"} {
			if stdoutSeen[p.pname+" "+typ] == 0 {
				t.Errorf("%s (pid %d, %s): no %s on standard output", p.pname, pids[p.pname], p.lib, typ)
			}
		}
		if streamSeen[p.pname] < 2 {
			t.Errorf("%s (pid %d): %d events at the stream client, want its request and response", p.pname, pids[p.pname], streamSeen[p.pname])
		}
	}
	for _, b := range bad[:min(len(bad), 10)] {
		t.Errorf("event without its metadata: %s", b)
	}
}

package openssl

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// stateChildren is how many short-lived TLS processes TestStateBounded runs.
const stateChildren = 1000

// forkClients forks n children in waves of wave running at once; each makes
// one TLS request to port and exits, every other one without closing
// anything (os._exit: no SSL_free, no close(2)). It prints the children's
// pids, one per line.
const forkClients = `
import os, socket, ssl, sys
port, n, wave = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = ssl._create_unverified_context()
for start in range(0, n, wave):
    pids = []
    for i in range(start, min(n, start + wave)):
        pid = os.fork()
        if pid == 0:
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
                s.sendall(b"GET /state.txt?n=%d HTTP/1.1\r\nHost: tlstap\r\n\r\n" % i)
                s.recv(4096)
                if i % 2 == 0:
                    s.close()
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
        print(pid, flush=True)
`

// mapPIDs counts the entries of m whose key starts with a pid in pids (for
// maps keyed by thread, pid_tgid, the tid: the pid of these single-threaded
// children).
func mapPIDs(t *testing.T, m *ebpf.Map, pids map[uint32]bool) int {
	t.Helper()
	var (
		k, v []byte
		n    int
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if len(k) >= 4 && pids[uint32(k[0])|uint32(k[1])<<8|uint32(k[2])<<16|uint32(k[3])<<24] {
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate %s: %v", m, err)
	}
	return n
}

// TestStateBounded: 1,000 short-lived processes, 100 at a time, each with
// one TLS connection, half of them exiting without closing it, are all
// captured (the connection and process maps are not exhausted) and leave
// no entry behind in any per-connection, per-fd or per-process map once
// they exited (checked in the BPF maps themselves).
func TestStateBounded(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"state.txt": []byte("state\n")}})
	// Only python3: the machine's other TLS traffic must not crowd the
	// children's records out of the ring.
	c := startCapture(t, Options{NoWatch: true, Filter: Filter{Comms: []string{"python3"}}})

	cmd := exec.Command(testenv.Python(t), "-c", forkClients, strconv.Itoa(int(srv.Addr.Port())), strconv.Itoa(stateChildren), "100")
	p := testenv.StartCmd(t, cmd)
	// A deadline for failure only: on a loaded machine 1,000 handshakes
	// take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		out := p.Output()
		t.Fatalf("forking clients: %v (%d bytes of output, ending %q)", err, len(out), out[max(0, len(out)-300):])
	}
	pids := map[uint32]bool{}
	for _, f := range strings.Fields(p.Output()) {
		pid, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatalf("output %q: %v", p.Output(), err)
		}
		pids[uint32(pid)] = true
	}
	if len(pids) != stateChildren {
		t.Fatalf("%d children, want %d", len(pids), stateChildren)
	}

	// Every child's request and its connection's end are captured.
	c.waitLong("every child's request and close", -1, func(cs []capture.Chunk) bool {
		wrote, closed := map[uint32]bool{}, map[uint32]bool{}
		for _, ch := range cs {
			if !pids[ch.PID] {
				continue
			}
			if ch.Kind == capture.Data && ch.Dir == capture.Write && bytes.HasPrefix(ch.Data, []byte("GET /state.txt?n=")) {
				wrote[ch.PID] = true
			}
			if ch.Kind == capture.Close {
				closed[ch.PID] = true
			}
		}
		return len(wrote) == stateChildren && len(closed) == stateChildren
	})

	// tlstap_calls and tlstap_bio_learn are task storage, which the
	// kernel frees with each thread (and which cannot be iterated).
	o := &c.src.objs
	for _, m := range []struct {
		name string
		m    *ebpf.Map
	}{
		{"tlstap_conns", o.TlstapConns},
		{"tlstap_fd_conns", o.TlstapFdConns},
		{"tlstap_procs", o.TlstapProcs},
		{"tlstap_nss_ids", o.TlstapNssIds},
	} {
		if n := mapPIDs(t, m.m, pids); n != 0 {
			t.Errorf("%s: %d entries of exited children left", m.name, n)
		}
	}
}

// waitLong is waitFor with a deadline for a run of minutes.
func (c *capturer) waitLong(what string, pid int, cond func([]capture.Chunk) bool) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond(ofPIDs(c.snapshot(), pid)) {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s never happened; stats %+v", what, c.src.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ofPIDs(cs []capture.Chunk, pid int) []capture.Chunk {
	if pid == -1 {
		return cs
	}
	return ofPID(cs, pid)
}

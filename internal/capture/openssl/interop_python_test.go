package openssl

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestMemoryBIOAsyncio: a Python asyncio client and server (TLS over
// memory BIOs: no socket call inside their SSL calls) both have the fd
// and both ends of the 4-tuple, learned from the socket operation the
// event loop makes right after a handshake step or a write.
func TestMemoryBIOAsyncio(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	cert := testenv.NewCert(t, t.TempDir())
	c := startCapture(t, Options{NoWatch: true})
	py := testenv.Python(t)

	srv := testenv.StartCmd(t, exec.Command(py, "testdata/asyncio/pair.py", "server", cert.CertFile, cert.KeyFile))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.WaitOutput(ctx, "\n"); err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(srv.Output()))
	if err != nil {
		t.Fatalf("server printed %q, want its port", srv.Output())
	}
	srvAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	cl := runGnuTLSProgram(t, exec.Command(py, "testdata/asyncio/pair.py", "client", strconv.Itoa(port)))
	if !strings.HasSuffix(cl.Output(), "asyncio body\n") {
		t.Fatalf("client printed %q, want the response", cl.Output())
	}

	const req = "GET /asyncio HTTP/1.1\r\nHost: tlstap\r\n\r\n"
	client := c.waitFor("the client's response", cl.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), []byte("asyncio body\n"))
	})
	server := c.waitFor("the server's response", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Write), []byte("asyncio body\n"))
	})
	if got := string(concat(client, capture.Write)); got != req {
		t.Errorf("client wrote %q, want %q", got, req)
	}
	if got := string(concat(server, capture.Read)); got != req {
		t.Errorf("server read %q, want %q", got, req)
	}
	local := data(client, capture.Write)[0].Local
	if !local.Addr().IsLoopback() {
		t.Fatalf("client's local address %s, want loopback:\n%s", local, summary(client))
	}
	checkMeta(t, client, cl.PID(), "python3", local, srvAddr, 0x0304)
	checkMeta(t, server, srv.PID(), "python3", srvAddr, local, 0x0304)

	// Both connections learnt their socket, so no thread waits any more
	// and the send tracepoint is back to skipping the thread lookup
	// (tlstap_bio_waiting): a wait that is never taken off would make
	// every socket send on the machine pay that lookup for good.
	var waiting int64
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		if err := c.src.objs.TlstapBioWaiting.Lookup(uint32(0), &waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tlstap_bio_waiting is %d after both connections learnt their socket, want 0", waiting)
		}
	}
}

// Python's ssl module uses SSL_read_ex/SSL_write_ex, so this covers the
// length out-parameter on both sides.
func TestPythonUrllib(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := body(5000, 2)
	srv := testenv.StartPythonHTTPS(t, testenv.IPv4, map[string][]byte{"py.bin": payload})
	c := startCapture(t, Options{})

	const script = `
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
body = urllib.request.urlopen(sys.argv[1], context=ctx).read()
sys.stdout.write(str(len(body)))
`
	p := testenv.Start(t, testenv.Python(t), "-c", script, srv.URL("/py.bin"), srv.Cert.CertFile)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil || p.Output() != fmt.Sprint(len(payload)) {
		t.Fatalf("urllib client: %v %q", err, p.Output())
	}
	cs := c.waitClosed(p.PID())
	ss := c.waitFor("server reply", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Write), payload)
	})

	req := concat(cs, capture.Write)
	if !bytes.HasPrefix(req, []byte("GET /py.bin HTTP/1.1\r\n")) || !bytes.Contains(req, []byte("\r\nHost: "+srv.Addr.String()+"\r\n")) {
		t.Errorf("client wrote %q", req)
	}
	if got := concat(ss, capture.Read); !bytes.Equal(got, req) {
		t.Errorf("server read %q, client wrote %q", got, req)
	}
	resp := concat(cs, capture.Read)
	if !bytes.HasPrefix(resp, []byte("HTTP/1.0 200 OK\r\n")) || !bytes.HasSuffix(resp, payload) {
		t.Errorf("client read %d bytes, want a 200 response ending in the body", len(resp))
	}
	if got := concat(ss, capture.Write); !bytes.Equal(got, resp) {
		t.Errorf("server wrote %d bytes, client read %d; they differ", len(got), len(resp))
	}
	comm := cs[0].Comm
	if !strings.HasPrefix(comm, "python") {
		t.Errorf("comm %q, want python*", comm)
	}
	local := data(cs, capture.Write)[0].Local
	if local.Addr() != testenv.IPv4 {
		t.Errorf("client local address %s", local)
	}
	checkMeta(t, cs, p.PID(), comm, local, srv.Addr, 0x0304)
	checkMeta(t, ss, srv.PID(), comm, srv.Addr, local, 0x0304)
}

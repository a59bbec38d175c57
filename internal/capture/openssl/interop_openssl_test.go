package openssl

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

func TestCurlHTTP1(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := body(3000, 1)
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"hello.bin": payload}})
	c := startCapture(t, Options{})

	// TLS 1.2 here, 1.3 elsewhere: the version must come from the connection.
	pid, out := curl(t, srv.URL("/hello.bin"), "--http1.1", "--tls-max", "1.2")
	client := netip.AddrPortFrom(testenv.IPv4, clientPort(t, out))
	cs := c.waitClosed(pid)
	ss := c.waitFor("nginx reply", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Write), payload)
	})

	wantReq := fmt.Sprintf("GET /hello.bin HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlstap-test\r\nAccept: */*\r\n\r\n", srv.Addr)
	if got := string(concat(cs, capture.Write)); got != wantReq {
		t.Errorf("curl wrote %q, want %q", got, wantReq)
	}
	resp := concat(cs, capture.Read)
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(resp, payload) {
		t.Errorf("curl read %d bytes, want a 200 response ending in the %d-byte body", len(resp), len(payload))
	}
	checkMeta(t, cs, pid, "curl", client, srv.Addr, 0x0303)

	// The server's view of the same connection mirrors the client's.
	if got := string(concat(ss, capture.Read)); got != wantReq {
		t.Errorf("nginx read %q, want %q", got, wantReq)
	}
	if got := concat(ss, capture.Write); !bytes.Equal(got, resp) {
		t.Errorf("nginx wrote %d bytes, curl read %d; they differ", len(got), len(resp))
	}
	checkMeta(t, ss, srv.PID(), "nginx", srv.Addr, client, 0x0303)
}

func TestCurlHTTP2(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte(strings.Repeat("tlstap http2 body ", 40))
	srv := testenv.StartNginx(t, testenv.NginxConfig{HTTP2: true, Files: map[string][]byte{"h2.txt": payload}})
	c := startCapture(t, Options{})

	pid, out := curl(t, srv.URL("/h2.txt"), "--http2")
	if !strings.HasSuffix(out, fmt.Sprintf(" 2 %d", len(payload))) {
		t.Fatalf("curl did not use HTTP/2: %q", out)
	}
	client := netip.AddrPortFrom(testenv.IPv4, clientPort(t, out))
	cs := c.waitClosed(pid)

	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	if w := concat(cs, capture.Write); !bytes.HasPrefix(w, []byte(preface)) {
		t.Errorf("curl's writes start %q, want the HTTP/2 client preface", w[:min(len(w), 24)])
	}
	if r := concat(cs, capture.Read); !bytes.Contains(r, payload) {
		t.Errorf("curl's reads (%d bytes) do not contain the body", len(r))
	}
	checkMeta(t, cs, pid, "curl", client, srv.Addr, 0x0304)

	ss := c.waitFor("nginx to read the preface", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasPrefix(concat(cs, capture.Read), []byte(preface))
	})
	checkMeta(t, ss, srv.PID(), "nginx", srv.Addr, client, 0x0304)
}

func TestCurlIPv6(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("over IPv6\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{IP: testenv.IPv6, Files: map[string][]byte{"v6.txt": payload}})
	c := startCapture(t, Options{})

	pid, out := curl(t, srv.URL("/v6.txt"), "-6")
	client := netip.AddrPortFrom(testenv.IPv6, clientPort(t, out))
	cs := c.waitClosed(pid)
	if r := concat(cs, capture.Read); !bytes.HasSuffix(r, payload) {
		t.Errorf("curl read %q, want it to end with %q", r, payload)
	}
	checkMeta(t, cs, pid, "curl", client, srv.Addr, 0x0304)
	ss := c.waitFor("nginx reply", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Write), payload)
	})
	checkMeta(t, ss, srv.PID(), "nginx", srv.Addr, client, 0x0304)
}

// openssl s_client drives SSL through its own socket BIO and never calls
// SSL_set_fd; the fd and tuple still come from the syscalls. The connection
// is opened before capture starts: its tuple is learned on its next I/O.
func TestOpenSSLInteractive(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	cli := testenv.StartOpenSSLClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	exchange := func(req, resp string) {
		t.Helper()
		if _, err := cli.Stdin.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitOutput(ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Stdin.Write([]byte(resp)); err != nil {
			t.Fatal(err)
		}
		if err := cli.WaitOutput(ctx, resp); err != nil {
			t.Fatal(err)
		}
	}
	exchange("before capture\n", "not seen\n")

	c := startCapture(t, Options{})
	exchange("ping from s_client\n", "pong from s_server\n")
	cs := c.waitFor("s_client's read", cli.PID(), func(cs []capture.Chunk) bool {
		return string(concat(cs, capture.Read)) == "pong from s_server\n"
	})
	ss := c.waitFor("s_server's read", srv.PID(), func(cs []capture.Chunk) bool {
		return string(concat(cs, capture.Read)) == "ping from s_client\n"
	})
	if got := string(concat(cs, capture.Write)); got != "ping from s_client\n" {
		t.Errorf("s_client wrote %q", got)
	}
	if got := string(concat(ss, capture.Write)); got != "pong from s_server\n" {
		t.Errorf("s_server wrote %q", got)
	}
	client := data(cs, capture.Write)[0].Local
	if client.Addr() != testenv.IPv4 || client.Port() == srv.Addr.Port() {
		t.Errorf("s_client local address %s", client)
	}
	checkMeta(t, cs, cli.PID(), "openssl", client, srv.Addr, 0x0304)
	checkMeta(t, ss, srv.PID(), "openssl", srv.Addr, client, 0x0304)

	// A killed client neither calls SSL_free nor close(2): its connection
	// is reported closed when the process is gone. The server sees EOF and
	// closes its side normally.
	cli.Cmd.Process.Kill()
	for _, side := range []struct {
		pid         int
		local, peer netip.AddrPort
	}{{cli.PID(), client, srv.Addr}, {srv.PID(), srv.Addr, client}} {
		closed := c.waitFor("close", side.pid, func(cs []capture.Chunk) bool {
			return len(cs) > 0 && cs[len(cs)-1].Kind == capture.Close
		})
		last := closed[len(closed)-1]
		if last.Conn != closed[0].Conn || last.Local != side.local || last.Remote != side.peer || last.FD < 0 {
			t.Errorf("close notice %+v does not match the connection (%s -> %s)", last, side.local, side.peer)
		}
	}
}

func TestLargeDownload(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := body(10<<20, 3)
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"big.bin": payload}})
	c := startCapture(t, Options{})

	pid, out := curl(t, srv.URL("/big.bin"), "--http1.1")
	if !strings.HasSuffix(out, fmt.Sprint(len(payload))) {
		t.Fatalf("curl: %q", out)
	}
	cs := c.waitClosed(pid)
	reads := data(cs, capture.Read)
	resp := concat(cs, capture.Read)
	head, got, ok := bytes.Cut(resp, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.1 200 OK")) {
		t.Fatalf("no response header in %d captured bytes", len(resp))
	}
	if len(got) != len(payload) || !bytes.Equal(got, payload) {
		t.Errorf("captured body: %d bytes, want %d identical bytes", len(got), len(payload))
	}
	if len(reads) < len(payload)/MaxData {
		t.Errorf("%d read chunks for %d bytes; each chunk holds at most %d", len(reads), len(payload), MaxData)
	}
	for _, ch := range cs {
		if ch.Kind == capture.Lost {
			t.Errorf("lost %d bytes", ch.LostBytes)
		}
	}
	if st := c.src.Stats(); st.LostRingBytes+st.LostCapBytes+st.LostFaultBytes != 0 {
		t.Errorf("stats report loss: %+v", st)
	}
}

// A client on an AF_INET6 socket talking to an IPv4 server through a
// v4-mapped address: the kernel's tuple is ::ffff:127.0.0.1, reported as
// 127.0.0.1 so it matches the server's view.
func TestV4MappedClient(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("mapped\n")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"m.txt": payload}})
	c := startCapture(t, Options{})

	const script = `
import socket, ssl, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect(("::ffff:127.0.0.1", port))
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
tls = ctx.wrap_socket(s)
print(tls.getsockname()[1])
tls.sendall(b"GET /m.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
while tls.recv(65536):
    pass
`
	p := testenv.Start(t, testenv.Python(t), "-c", script, fmt.Sprint(srv.Addr.Port()), srv.Cert.CertFile)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("%v: %s", err, p.Output())
	}
	client := netip.AddrPortFrom(testenv.IPv4, clientPort(t, p.Output()))
	cs := c.waitClosed(p.PID())
	if !bytes.HasSuffix(concat(cs, capture.Read), payload) {
		t.Errorf("client read %q", concat(cs, capture.Read))
	}
	checkMeta(t, cs, p.PID(), cs[0].Comm, client, srv.Addr, 0x0304)
}

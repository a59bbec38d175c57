package openssl

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// The reader has no poll timer: a record must wake it. One line each way
// over an otherwise silent connection is delivered, with nothing after it
// to push it out (no close, no more traffic).
func TestDeliveredWithoutFurtherTraffic(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv, cli := connectedOpenSSL(t, "hello before capture\n")

	c := startCapture(t, Options{})
	if _, err := cli.Stdin.Write([]byte("lonely line\n")); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the server's read of the line", srv.PID(), func(cs []capture.Chunk) bool {
		return string(concat(cs, capture.Read)) == "lonely line\n"
	})
	c.waitFor("the client's write of the line", cli.PID(), func(cs []capture.Chunk) bool {
		return string(concat(cs, capture.Write)) == "lonely line\n"
	})
}

// A burst is delivered whole: the records committed while the reader was
// busy (which do not wake it) are drained with the rest, the last ones
// included, though nothing follows them.
func TestBurstDeliveredWhole(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	cli := testenv.StartOpenSSLClient(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cli.Stdin.Write([]byte("warm up\n")); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "warm up\n"); err != nil {
		t.Fatal(err)
	}

	c := startCapture(t, Options{})
	var burst strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&burst, "burst line %04d %s\n", i, strings.Repeat("x", i%97))
	}
	if _, err := cli.Stdin.Write([]byte(burst.String())); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "burst line 2999"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the whole burst read by the server", srv.PID(), func(cs []capture.Chunk) bool {
		return len(concat(cs, capture.Read)) >= burst.Len()
	})
	cs := c.waitFor("the whole burst written by the client", cli.PID(), func(cs []capture.Chunk) bool {
		return len(concat(cs, capture.Write)) >= burst.Len()
	})
	if got := concat(cs, capture.Write); string(got) != burst.String() {
		t.Errorf("client wrote %d bytes, want the %d of the burst, in order", len(got), burst.Len())
	}
	if got := concat(ofPID(c.snapshot(), srv.PID()), capture.Read); string(got) != burst.String() {
		t.Errorf("server read %d bytes, want the %d of the burst, in order", len(got), burst.Len())
	}
}

// Writes are emitted at SSL_write's entry, before OpenSSL accepted them.
// A non-blocking writer whose peer does not read gets WANT_WRITE and must
// retry with the same bytes: each byte is still captured exactly once.
func TestWriteRetriedAfterWantWrite(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	cert := testenv.NewCert(t, t.TempDir())
	const script = `
import select, socket, ssl, sys, threading
cert, key = sys.argv[1], sys.argv[2]
payload = (bytes(range(251)) * ((8 << 20) // 251 + 1))[:8 << 20]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname, cctx.verify_mode = False, ssl.CERT_NONE
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
got, go = bytearray(), threading.Event()
def serve():
    s = sctx.wrap_socket(ls.accept()[0], server_side=True)
    go.wait()
    while len(got) < len(payload):
        b = s.recv(1 << 16)
        if not b:
            break
        got.extend(b)
    s.close()
t = threading.Thread(target=serve)
t.start()
c = cctx.wrap_socket(socket.create_connection(ls.getsockname()))
c.setblocking(False)
view, sent, retries = memoryview(payload), 0, 0
while sent < len(payload):
    try:
        sent += c.send(view[sent:sent + (1 << 20)])
    except ssl.SSLWantWriteError:
        retries += 1
        go.set()
        select.select([], [c], [])
go.set()
t.join()
c.close()
assert got == payload, "server got %d bytes" % len(got)
print(retries)
`
	c := startCapture(t, Options{})
	p := testenv.Start(t, testenv.Python(t), "-c", script, cert.CertFile, cert.KeyFile)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("python: %v\n%s", err, p.Output())
	}
	t.Logf("WANT_WRITE retries: %s", strings.TrimSpace(p.Output()))
	if strings.TrimSpace(p.Output()) == "0" {
		t.Fatal("the writer never got WANT_WRITE: the test proves nothing")
	}
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i % 251)
	}
	cs := c.waitFor("every byte written and read", p.PID(), func(cs []capture.Chunk) bool {
		return len(concat(cs, capture.Read)) >= len(want) && len(concat(cs, capture.Write)) >= len(want)
	})
	for _, ch := range cs {
		if ch.Kind == capture.Lost {
			t.Errorf("lost %d bytes (dir %s)", ch.LostBytes, ch.Dir)
		}
	}
	if got := concat(cs, capture.Write); !bytes.Equal(got, want) {
		t.Errorf("written: %d bytes captured for %d sent (retries: %s)", len(got), len(want), strings.TrimSpace(p.Output()))
	}
	if got := concat(cs, capture.Read); !bytes.Equal(got, want) {
		t.Errorf("read: %d bytes captured for %d received", len(got), len(want))
	}
}

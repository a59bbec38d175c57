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

// With a small ring and nobody reading it, most of a 1 MiB transfer cannot
// be delivered. Every byte must still be accounted for: delivered, or
// reported lost in a Lost chunk of the right connection and direction.
func TestLostWhenRingFull(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv, cli := connectedOpenSSL(t, "hello\n")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	c := newCapturer(t, Options{RingBytes: 64 << 10, Filter: Filter{PIDs: []uint32{uint32(cli.PID())}}})
	line := strings.Repeat("x", 1023) + "\n"
	bulk := strings.Repeat(line, 1024)
	if _, err := srv.Stdin.Write([]byte(bulk)); err != nil {
		t.Fatal(err)
	}
	if err := cli.WaitOutput(ctx, bulk); err != nil {
		t.Fatal(err)
	}

	c.run()
	const marker = "marker after the loss\n"
	if _, err := srv.Stdin.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	cs := c.waitFor("the marker", cli.PID(), func(cs []capture.Chunk) bool {
		return bytes.HasSuffix(concat(cs, capture.Read), []byte(marker))
	})

	var delivered, lost uint64
	for _, ch := range cs {
		switch {
		case ch.Kind == capture.Lost && ch.Dir == capture.Read:
			lost += ch.LostBytes
		case ch.Kind == capture.Data && ch.Dir == capture.Read:
			delivered += uint64(len(ch.Data))
		case ch.Kind == capture.Lost:
			t.Errorf("loss reported on the write side: %+v", ch)
		}
	}
	if want := uint64(len(bulk) + len(marker)); delivered+lost != want {
		t.Errorf("delivered %d + lost %d = %d bytes, want %d", delivered, lost, delivered+lost, want)
	}
	if lost == 0 {
		t.Error("nothing reported lost though the ring could not hold the transfer")
	}
	if st := c.src.Stats(); st.LostRingBytes != lost || st.LostRingRecords == 0 {
		t.Errorf("stats %+v, want LostRingBytes %d", st, lost)
	}
}

// One SSL_write larger than MaxCallBytes is captured up to the cap; the
// rest is reported lost, not dropped silently.
func TestCallCap(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartOpenSSLServer(t, testenv.IPv4)
	c := startCapture(t, Options{})
	const total = MaxCallBytes + 1<<20
	// Python's sendall hands the whole buffer to one SSL_write_ex.
	const script = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
tls.sendall(b"c" * int(sys.argv[3]))
tls.close()
`
	p := testenv.Start(t, testenv.Python(t), "-c", script, fmt.Sprint(srv.Addr.Port()), srv.Cert.CertFile, fmt.Sprint(total))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("%v: %s", err, p.Output())
	}
	cs := c.waitClosed(p.PID())
	var lost uint64
	for _, ch := range cs {
		if ch.Kind == capture.Lost {
			if ch.Dir != capture.Write {
				t.Errorf("loss on the %s side", ch.Dir)
			}
			lost += ch.LostBytes
		}
	}
	w := concat(cs, capture.Write)
	if len(w) != MaxCallBytes || lost != total-MaxCallBytes {
		t.Errorf("captured %d and lost %d bytes of a %d-byte call, want %d and %d", len(w), lost, total, MaxCallBytes, total-MaxCallBytes)
	}
	if strings.Trim(string(w), "c") != "" {
		t.Error("captured bytes are not the written ones")
	}
	if st := c.src.Stats(); st.LostCapBytes != total-MaxCallBytes {
		t.Errorf("Stats().LostCapBytes = %d, want %d", st.LostCapBytes, total-MaxCallBytes)
	}
}

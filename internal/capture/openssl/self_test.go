package openssl

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

// TestExcludeEndpoint: a connection with one of tlstap's endpoints at
// either end is not captured on either side, while another connection of
// the same programs in the same run is.
func TestExcludeEndpoint(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	payload := []byte("third-party body\n")
	excluded := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"x.txt": payload}})
	control := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"x.txt": payload}})
	clientPort := testenv.FreePort(t, testenv.IPv4)

	tests := []struct {
		name string
		// endpoint is what tlstap would register: the listener the client
		// connects to, or the local end of a connection it made.
		endpoint netip.AddrPort
		args     []string
		// release checks that the endpoint is captured again once
		// released; not for the client port, which lingers in TIME_WAIT.
		release bool
	}{
		{"server end", excluded.Addr, nil, true},
		{"client end", clientPort, []string{"--local-port", strconv.Itoa(int(clientPort.Port()))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCapture(t, Options{})
			if err := c.src.ExcludeEndpoint(tt.endpoint); err != nil {
				t.Fatal(err)
			}
			before := c.src.Stats()

			exPID, _ := curl(t, excluded.URL("/x.txt"), append([]string{"--http1.1"}, tt.args...)...)
			ctlPID, _ := curl(t, control.URL("/x.txt"), "--http1.1")
			// The ring is ordered: once the control connection is closed,
			// anything of the excluded one would have arrived before it.
			c.waitClosed(ctlPID)
			c.waitFor("control server reply", control.PID(), func(cs []capture.Chunk) bool {
				return bytes.HasSuffix(concat(cs, capture.Write), payload)
			})

			got := c.snapshot()
			if cs := ofPID(got, exPID); len(cs) != 0 {
				t.Errorf("excluded client captured:\n%s", summary(cs))
			}
			if cs := ofPID(got, excluded.PID()); len(cs) != 0 {
				t.Errorf("excluded connection captured at the server:\n%s", summary(cs))
			}
			st := c.src.Stats()
			if n := st.ExcludedConns - before.ExcludedConns; n != 2 {
				t.Errorf("ExcludedConns grew by %d, want 2 (client and server side)", n)
			}
			if st.ExcludedRecords == before.ExcludedRecords || st.ExcludedBytes-before.ExcludedBytes < uint64(2*len(payload)) {
				t.Errorf("excluded records %d, bytes %d: the response was not counted", st.ExcludedRecords-before.ExcludedRecords, st.ExcludedBytes-before.ExcludedBytes)
			}

			if !tt.release {
				return
			}
			// Once released, the endpoint is captured again.
			if err := c.src.IncludeEndpoint(tt.endpoint); err != nil {
				t.Fatal(err)
			}
			pid, _ := curl(t, excluded.URL("/x.txt"), "--http1.1")
			cs := c.waitClosed(pid)
			if !bytes.HasSuffix(concat(cs, capture.Read), payload) {
				t.Errorf("after IncludeEndpoint the client's read was not captured:\n%s", summary(cs))
			}
		})
	}
}

func TestExcludeEndpointRefusesWildcards(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	c := newCapturer(t, Options{})
	for _, ap := range []netip.AddrPort{
		{},
		netip.MustParseAddrPort("0.0.0.0:443"),
		netip.MustParseAddrPort("[::]:443"),
		netip.MustParseAddrPort("127.0.0.1:0"),
	} {
		if err := c.src.ExcludeEndpoint(ap); err == nil {
			t.Errorf("ExcludeEndpoint(%v) accepted", ap)
		}
	}
}

// TestExcludeEndpointMidConnection: an endpoint registered while a
// connection is already being captured stops its capture from the next
// call on, on both sides. The probes judge a connection again only when
// the endpoint set changed since they last did (tlstap_self_gen), so this
// fails if registering does not tell them.
func TestExcludeEndpointMidConnection(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	control := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"x.txt": []byte("control\n")}})
	c := startCapture(t, Options{})
	srv, cli := connectedOpenSSL(t, "captured line\n")
	c.waitFor("s_server's read", srv.PID(), func(cs []capture.Chunk) bool {
		return bytes.Contains(concat(cs, capture.Read), []byte("captured line\n"))
	})
	c.waitFor("s_client's write", cli.PID(), func(cs []capture.Chunk) bool {
		return bytes.Contains(concat(cs, capture.Write), []byte("captured line\n"))
	})
	before := c.src.Stats()

	if err := c.src.ExcludeEndpoint(srv.Addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cli.Stdin.Write([]byte("excluded line\n")); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitOutput(ctx, "excluded line\n"); err != nil {
		t.Fatal(err)
	}
	// The ring is ordered: once a connection made after that read is
	// closed, the excluded line's records would have come before it.
	ctlPID, _ := curl(t, control.URL("/x.txt"), "--http1.1")
	c.waitClosed(ctlPID)

	got := c.snapshot()
	for _, pid := range []int{srv.PID(), cli.PID()} {
		for _, dir := range []capture.Direction{capture.Read, capture.Write} {
			if b := concat(ofPID(got, pid), dir); bytes.Contains(b, []byte("excluded line")) {
				t.Errorf("pid %d: the line sent after ExcludeEndpoint was captured:\n%s", pid, summary(ofPID(got, pid)))
			}
		}
	}
	if n := c.src.Stats().ExcludedConns - before.ExcludedConns; n != 2 {
		t.Errorf("ExcludedConns grew by %d, want 2 (client and server side)", n)
	}
}

package openssl

import (
	"bytes"
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

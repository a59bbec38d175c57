package selfnet

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tlstap/tlstap/internal/capture"
)

func TestParseProcAddr(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0100007F:1F90", "127.0.0.1:8080", true},
		{"00000000000000000000000001000000:0050", "[::1]:80", true},
		{"0000000000000000FFFF00000100007F:01BB", "[::ffff:127.0.0.1]:443", true},
		{"0100007F", "", false},
		{"ZZ00007F:1F90", "", false},
		{"0100007F:XYZ", "", false},
		{"01007F:1F90", "", false},
	} {
		got, ok := parseProcAddr(tt.in)
		if ok != tt.ok || (ok && got.String() != tt.want) {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestPeerPID: a child process connects to a listener wrapped by the
// registry; under a TLS listener the registry learns it as a client, and
// its chunks without addresses are dropped while it is connected, and only
// its. A plain listener does not look (no TLS read of its clients can be
// captured), and drops nothing.
func TestPeerPID(t *testing.T) {
	for _, tls := range []bool{true, false} {
		t.Run(map[bool]string{true: "tls", false: "plain"}[tls], func(t *testing.T) { testPeerPID(t, tls) })
	}
}

func testPeerPID(t *testing.T, tls bool) {
	r := New(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := r.Listener(ln, tls)
	defer wl.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	child := exec.CommandContext(ctx, "/usr/bin/python3", "-c",
		"import socket,sys,time; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); time.sleep(30)",
		itoa(port))
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	c, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	pid := uint32(child.Process.Pid)
	if r.isClient(pid) != tls {
		t.Fatalf("pid %d learned as a client: %v, want %v", pid, r.isClient(pid), tls)
	}

	in := []capture.Chunk{
		{PID: pid, Data: []byte("no addresses")},
		{PID: pid, Data: []byte("addressed: kept"), Local: netip.MustParseAddrPort("127.0.0.1:1"), Remote: netip.MustParseAddrPort("127.0.0.1:2")},
		{PID: pid + 100000, Data: []byte("another process: kept")},
	}
	got := run(t, r.Source(chunks(in), nil))
	want := []string{"addressed: kept", "another process: kept"}
	if !tls {
		want = []string{"no addresses", "addressed: kept", "another process: kept"}
	}
	var data []string
	for _, c := range got {
		data = append(data, string(c.Data))
	}
	if !slices.Equal(data, want) {
		t.Fatalf("passed %q, want %q", data, want)
	}
	c.Close()
	if r.isClient(pid) {
		t.Fatal("a client after its connection closed")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

type chunks []capture.Chunk

func (cs chunks) Run(ctx context.Context, out chan<- capture.Chunk) error {
	for _, c := range cs {
		out <- c
	}
	return nil
}

func run(t *testing.T, src capture.Source) []capture.Chunk {
	t.Helper()
	out := make(chan capture.Chunk, 16)
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []capture.Chunk
	for c := range out {
		got = append(got, c)
	}
	return got
}

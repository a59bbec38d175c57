package openssl

import (
	"bytes"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/testenv"
)

func TestFilter(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"f.txt": []byte("filtered\n")}})
	c := startCapture(t, Options{})
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}

	tests := []struct {
		name   string
		filter Filter
		// Which of the three processes must be seen; the others must not.
		nginx, curlRoot, curlNobody bool
	}{
		{"none", Filter{}, true, true, true},
		{"pid", Filter{PIDs: []uint32{uint32(srv.PID())}}, true, false, false},
		{"comm", Filter{Comms: []string{"curl"}}, false, true, true},
		{"uid", Filter{UIDs: []uint32{65534}}, false, false, true},
		{"uid and comm", Filter{UIDs: []uint32{0, 1}, Comms: []string{"nginx", "bash"}}, true, false, false},
		{"several pids", Filter{PIDs: []uint32{1, uint32(srv.PID()), 4242424}}, true, false, false},
		{"no match", Filter{Comms: []string{"no-such-comm"}}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.src.SetFilter(tt.filter); err != nil {
				t.Fatal(err)
			}
			rootPID, out := curl(t, srv.URL("/f.txt"), "--http1.1")
			rootPort := clientPort(t, out)
			nobodyPID, out := curlAs(t, nobody, srv.URL("/f.txt"), "--http1.1")
			nobodyPort := clientPort(t, out)

			// Barrier: with the filter open again, nginx serves one more
			// request. nginx is one process serving connections in order,
			// and both curls have exited, so once the barrier's reply is
			// here every chunk of the filtered traffic would be too.
			if err := c.src.SetFilter(Filter{}); err != nil {
				t.Fatal(err)
			}
			_, out = curl(t, srv.URL("/f.txt"), "--http1.1")
			barrier := clientPort(t, out)
			c.waitFor("barrier reply", srv.PID(), func(cs []capture.Chunk) bool {
				return slices.ContainsFunc(cs, func(ch capture.Chunk) bool {
					return ch.Remote.Port() == barrier && bytes.HasSuffix(ch.Data, []byte("filtered\n"))
				})
			})

			all := c.snapshot()
			seen := func(pid int, port uint16) bool {
				return slices.ContainsFunc(ofPID(all, pid), func(ch capture.Chunk) bool {
					return ch.Kind == capture.Data && (ch.Local.Port() == port || ch.Remote.Port() == port)
				})
			}
			for _, p := range []struct {
				what string
				got  bool
				want bool
			}{
				{"nginx's side of the root curl", seen(srv.PID(), rootPort), tt.nginx},
				{"nginx's side of the nobody curl", seen(srv.PID(), nobodyPort), tt.nginx},
				{"curl as root", seen(rootPID, rootPort), tt.curlRoot},
				{"curl as nobody", seen(nobodyPID, nobodyPort), tt.curlNobody},
			} {
				if p.got != p.want {
					t.Errorf("%s captured = %v, want %v", p.what, p.got, p.want)
				}
			}
		})
	}
}

func TestSetFilterLimits(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	c := newCapturer(t, Options{Libs: []string{systemLibssl(t)}})
	if err := c.src.SetFilter(Filter{PIDs: make([]uint32, maxFilterEntries+1)}); err == nil {
		t.Error("SetFilter accepted more pids than the map holds")
	}
	// Alternating many times must not leak entries of dead generations.
	for i := range 5 {
		if err := c.src.SetFilter(Filter{PIDs: []uint32{uint32(i), uint32(i + 100)}, Comms: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		k   tlstapIdKey
		v   uint8
		got int
	)
	for it := c.src.objs.TlstapFilterPids.Iterate(); it.Next(&k, &v); {
		got++
	}
	if got != 4 {
		t.Errorf("pid filter map holds %d entries, want 4 (two generations of two)", got)
	}
	// tlstap never captures itself, whatever the filter.
	for gen := range uint32(2) {
		var cfg tlstapConfig
		if err := c.src.objs.TlstapConfigs.Lookup(gen, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.SelfPid != uint32(os.Getpid()) {
			t.Errorf("generation %d excludes pid %d, want tlstap's own %d", gen, cfg.SelfPid, os.Getpid())
		}
	}
}

func TestCommKey(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"curl", "curl"},
		{"", ""},
		{"exactly15bytes!", "exactly15bytes!"},
		{"a-name-longer-than-15", "a-name-longer-t"},
	} {
		k := commKey(tt.in)
		if got := comm(int8sToBytes(k[:])); got != tt.want {
			t.Errorf("commKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if k[commLen-1] != 0 {
			t.Errorf("commKey(%q) is not NUL-terminated", tt.in)
		}
	}
}

func int8sToBytes(s []int8) []byte {
	b := make([]byte, len(s))
	for i, c := range s {
		b[i] = byte(c)
	}
	return b
}

// TestFilterSwitchedTwice checks that a thread's cached verdict (the probes
// keep each thread's last one, see filter_cache in bpf/tlstap.bpf.c) does not
// outlive its filter when two switches bring the same generation back with
// other contents: nginx's worker is let in, then two filters that leave it
// out are set in a row while it is idle, and its next request must not be
// captured. The probes tell filters apart by tlstap_active's whole value; with
// only the generation bit, the second switch looks like the first filter.
func TestFilterSwitchedTwice(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"f.txt": []byte("filtered\n")}})
	c := startCapture(t, Options{})
	setFilter := func(f Filter) {
		t.Helper()
		if err := c.src.SetFilter(f); err != nil {
			t.Fatal(err)
		}
	}
	servedTo := func(port uint16) bool {
		return slices.ContainsFunc(ofPID(c.snapshot(), srv.PID()), func(ch capture.Chunk) bool {
			return ch.Kind == capture.Data && ch.Remote.Port() == port && bytes.HasSuffix(ch.Data, []byte("filtered\n"))
		})
	}

	setFilter(Filter{PIDs: []uint32{uint32(srv.PID())}})
	_, out := curl(t, srv.URL("/f.txt"), "--http1.1")
	first := clientPort(t, out)
	c.waitFor("nginx's reply under the first filter", srv.PID(), func([]capture.Chunk) bool { return servedTo(first) })

	setFilter(Filter{PIDs: []uint32{4242424}})
	setFilter(Filter{PIDs: []uint32{4242425}})
	_, out = curl(t, srv.URL("/f.txt"), "--http1.1")
	left := clientPort(t, out)

	// Barrier, as in TestFilter: nginx serves connections in order.
	setFilter(Filter{})
	_, out = curl(t, srv.URL("/f.txt"), "--http1.1")
	barrier := clientPort(t, out)
	c.waitFor("barrier reply", srv.PID(), func([]capture.Chunk) bool { return servedTo(barrier) })
	if servedTo(left) {
		t.Error("nginx's reply was captured under a filter that leaves nginx out")
	}
}

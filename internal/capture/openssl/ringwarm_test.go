package openssl

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tlstap/tlstap/internal/testenv"
)

// TestRingWarm checks that the warm-up writes one record per page until the
// ring is full, and that warmRing leaves it empty, as New must for the
// first probe's record to find room.
func TestRingWarm(t *testing.T) {
	testenv.RequireRoot(t, "loading tlstap's BPF programs")
	const ring = 1 << 20
	page := os.Getpagesize()
	// PID 1 makes no TLS calls: nothing but the warm-up writes to the ring.
	c := newCapturer(t, Options{RingBytes: ring, NoWatch: true, Filter: Filter{PIDs: []uint32{1}}})
	if n := c.src.rd.AvailableBytes(); n != 0 {
		t.Fatalf("after New the ring holds %d bytes, want 0", n)
	}

	n, err := c.src.objs.TlstapRingWarm.Run(&ebpf.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// One record a page, the last one a word short: a ring never fills up.
	if n != uint32(ring/page) {
		t.Errorf("warm-up reserved %d records, want one per page (%d)", n, ring/page)
	}
	if got := c.src.rd.AvailableBytes(); got != ring-8 {
		t.Errorf("after the warm-up the ring holds %d bytes, want all but a word, %d", got, ring-8)
	}

	tests := []struct {
		name  string
		pages uint32
	}{
		{"full ring: nothing reserved, read back", 0},
		{"empty ring: every page", uint32(ring / page)},
	}
	for _, tc := range tests {
		pages, err := c.src.warmRing()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if pages != tc.pages {
			t.Errorf("%s: %d pages written, want %d", tc.name, pages, tc.pages)
		}
		if got := c.src.rd.AvailableBytes(); got != 0 {
			t.Errorf("%s: the ring holds %d bytes after warmRing, want 0", tc.name, got)
		}
	}
}

package openssl

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/tlstap/tlstap/internal/testenv"
)

// connsMap returns an LRU hash map shaped like tlstap_conns holding n
// connections of pids 1000.. (ten per pid) and want of pid 7.
func connsMap(tb testing.TB, n, want int) *ebpf.Map {
	tb.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: uint32(unsafe.Sizeof(tlstapConnKey{})), ValueSize: uint32(unsafe.Sizeof(tlstapConn{})), MaxEntries: 65536})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	put := func(pid uint32, ssl uint64) {
		v := tlstapConn{Fd: int32(ssl % 1000), Version: 0x0304}
		if err := m.Put(tlstapConnKey{Pid: pid, Ssl: ssl}, v); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range n {
		put(1000+uint32(i/10), uint64(i))
	}
	for i := range want {
		put(7, uint64(1_000_000+i))
	}
	return m
}

// TestMapEntries: the batched walk finds exactly the entries the filter
// keeps, as the walk a key at a time does, at sizes around the batch's;
// deleteKeys removes them and nothing else, a key gone meanwhile
// included.
func TestMapEntries(t *testing.T) {
	testenv.RequireRoot(t, "creating BPF maps")
	for _, n := range []int{0, 1, batchEntries - 1, batchEntries, batchEntries + 1, 5000} {
		for _, want := range []int{0, 1, 3, 2 * batchEntries} {
			t.Run(fmt.Sprintf("%d+%d", n, want), func(t *testing.T) {
				m := connsMap(t, n, want)
				of7 := func(k *tlstapConnKey) bool { return k.Pid == 7 }
				keys, vals, err := mapEntries[tlstapConnKey, tlstapConn](m, of7)
				if err != nil {
					t.Fatal(err)
				}
				ikeys, _, err := iterEntries[tlstapConnKey, tlstapConn](m, of7)
				if err != nil {
					t.Fatal(err)
				}
				less := func(a, b tlstapConnKey) int { return int(a.Ssl) - int(b.Ssl) }
				slices.SortFunc(keys, less)
				slices.SortFunc(ikeys, less)
				if len(keys) != want || !slices.Equal(keys, ikeys) || len(vals) != want {
					t.Fatalf("%d keys, %d values; want %d, the same as a key at a time (%d)", len(keys), len(vals), want, len(ikeys))
				}
				for i, k := range keys {
					if k.Pid != 7 || k.Ssl != uint64(1_000_000+i) {
						t.Fatalf("key %d: %+v", i, k)
					}
				}
				if want > 0 {
					// One of them evicted meanwhile.
					if err := m.Delete(&keys[want/2]); err != nil {
						t.Fatal(err)
					}
				}
				if err := deleteKeys(m, keys); err != nil {
					t.Fatal(err)
				}
				if left, _, _ := iterEntries[tlstapConnKey, tlstapConn](m, of7); len(left) != 0 {
					t.Fatalf("%d of pid 7 left", len(left))
				}
				all, _, _ := iterEntries[tlstapConnKey, tlstapConn](m, func(*tlstapConnKey) bool { return true })
				if len(all) != n {
					t.Fatalf("%d entries left, want the other %d", len(all), n)
				}
			})
		}
	}
}

// BenchmarkMapEntries: finding and deleting one exited process's three
// connections among 1,000 others (what reap does per exit), batched and a
// key at a time.
func BenchmarkMapEntries(b *testing.B) {
	testenv.RequireRoot(b, "creating BPF maps")
	of7 := func(k *tlstapConnKey) bool { return k.Pid == 7 }
	for _, c := range []struct {
		name string
		walk func(*ebpf.Map, func(*tlstapConnKey) bool) ([]tlstapConnKey, []tlstapConn, error)
	}{
		{"batch", mapEntries[tlstapConnKey, tlstapConn]},
		{"key-at-a-time", iterEntries[tlstapConnKey, tlstapConn]},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := connsMap(b, 1000, 3)
			for b.Loop() {
				keys, _, err := c.walk(m, of7)
				if err != nil || len(keys) != 3 {
					b.Fatal(len(keys), err)
				}
			}
		})
	}
}

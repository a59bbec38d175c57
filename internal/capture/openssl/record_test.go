package openssl

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/testenv"
)

// The hand-written offsets in record.go must match the C struct, which
// bpf2go mirrors in tlstapEvent.
func TestRecordLayout(t *testing.T) {
	var e tlstapEvent
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"ts", unsafe.Offsetof(e.Ts), offTS},
		{"conn", unsafe.Offsetof(e.Conn), offConn},
		{"lost", unsafe.Offsetof(e.Lost), offLost},
		{"pid", unsafe.Offsetof(e.Pid), offPID},
		{"tid", unsafe.Offsetof(e.Tid), offTID},
		{"uid", unsafe.Offsetof(e.Uid), offUID},
		{"fd", unsafe.Offsetof(e.Fd), offFD},
		{"len", unsafe.Offsetof(e.Len), offLen},
		{"version", unsafe.Offsetof(e.Version), offVersion},
		{"kind", unsafe.Offsetof(e.Kind), offKind},
		{"dir", unsafe.Offsetof(e.Dir), offDir},
		{"family", unsafe.Offsetof(e.Tuple) + unsafe.Offsetof(e.Tuple.Family), offFamily},
		{"lport", unsafe.Offsetof(e.Tuple) + unsafe.Offsetof(e.Tuple.Lport), offLPort},
		{"rport", unsafe.Offsetof(e.Tuple) + unsafe.Offsetof(e.Tuple.Rport), offRPort},
		{"laddr", unsafe.Offsetof(e.Tuple) + unsafe.Offsetof(e.Tuple.Laddr), offLAddr},
		{"raddr", unsafe.Offsetof(e.Tuple) + unsafe.Offsetof(e.Tuple.Raddr), offRAddr},
		{"comm", unsafe.Offsetof(e.Comm), offComm},
		{"lib", unsafe.Offsetof(e.Lib), offLib},
		{"cgroup", unsafe.Offsetof(e.Cgroup), offCgroup},
		{"size", unsafe.Sizeof(e), headerSize},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, record.go says %d", f.name, f.got, f.want)
		}
	}
	if MaxData != len(tlstapRecord{}.Data) {
		t.Errorf("MaxData %d, BPF MAX_DATA %d", MaxData, len(tlstapRecord{}.Data))
	}
}

// header builds a record header the way the BPF side does.
type header struct {
	ts, conn, lost    uint64
	pid, tid, uid     uint32
	fd                int32
	version           uint16
	kind, dir, family uint8
	lport, rport      uint16
	laddr, raddr      [16]byte
	comm              string
	lib               uint8
	cgroup            uint64
}

func (h header) record(data string) []byte {
	b := make([]byte, headerSize+len(data))
	le := binary.LittleEndian
	le.PutUint64(b[offTS:], h.ts)
	le.PutUint64(b[offConn:], h.conn)
	le.PutUint64(b[offLost:], h.lost)
	le.PutUint32(b[offPID:], h.pid)
	le.PutUint32(b[offTID:], h.tid)
	le.PutUint32(b[offUID:], h.uid)
	le.PutUint32(b[offFD:], uint32(h.fd))
	le.PutUint32(b[offLen:], uint32(len(data)))
	le.PutUint16(b[offVersion:], h.version)
	b[offKind], b[offDir], b[offFamily] = h.kind, h.dir, h.family
	le.PutUint16(b[offLPort:], h.lport)
	le.PutUint16(b[offRPort:], h.rport)
	copy(b[offLAddr:], h.laddr[:])
	copy(b[offRAddr:], h.raddr[:])
	copy(b[offComm:offComm+15], h.comm)
	b[offLib] = h.lib
	le.PutUint64(b[offCgroup:], h.cgroup)
	copy(b[headerSize:], data)
	return b
}

func TestDecodeRecord(t *testing.T) {
	v4 := header{ts: 5, conn: 0xabc, pid: 10, tid: 11, uid: 12, fd: 3, version: 0x0304, dir: 1,
		family: afInet, lport: 40000, rport: 443, comm: "curl"}
	copy(v4.laddr[:], []byte{127, 0, 0, 1})
	copy(v4.raddr[:], []byte{127, 0, 0, 2})
	v6 := v4
	v6.family = afInet6
	v6.laddr = netip.MustParseAddr("::1").As16()
	v6.raddr = netip.MustParseAddr("::ffff:127.0.0.9").As16()
	gap := v4
	gap.lost = 77
	lostNotice := v4
	lostNotice.kind, lostNotice.lost, lostNotice.dir = uint8(capture.Lost), 99, 0
	closeNotice := v4
	closeNotice.kind = uint8(capture.Close)
	unknown := v4
	unknown.family, unknown.fd = 1, -1 // AF_UNIX: no tuple
	longComm := v4
	longComm.comm = "fifteen-bytes!!"

	tests := []struct {
		name string
		rec  []byte
		want string // rendered chunks, or the error
	}{
		{"ipv4 write", v4.record("GET /"), `data write pid=10 tid=11 uid=12 comm="curl" fd=3 conn=0xabc 127.0.0.1:40000->127.0.0.2:443 v=0x304 lib=openssl t=1005 lost=0 "GET /"`},
		{"ipv6 mapped", v6.record("x"), `data write pid=10 tid=11 uid=12 comm="curl" fd=3 conn=0xabc [::1]:40000->127.0.0.9:443 v=0x304 lib=openssl t=1005 lost=0 "x"`},
		{"gap before data", gap.record("after"), `lost write pid=10 tid=11 uid=12 comm="curl" fd=3 conn=0xabc 127.0.0.1:40000->127.0.0.2:443 v=0x304 lib=openssl t=1005 lost=77 ""` + "\n" +
			`data write pid=10 tid=11 uid=12 comm="curl" fd=3 conn=0xabc 127.0.0.1:40000->127.0.0.2:443 v=0x304 lib=openssl t=1005 lost=0 "after"`},
		{"lost notice", lostNotice.record(""), `lost read pid=10 tid=11 uid=12 comm="curl" fd=3 conn=0xabc 127.0.0.1:40000->127.0.0.2:443 v=0x304 lib=openssl t=1005 lost=99 ""`},
		{"close", closeNotice.record(""), `close write pid=10 tid=11 uid=12 comm="curl" fd=3 conn=0xabc 127.0.0.1:40000->127.0.0.2:443 v=0x304 lib=openssl t=1005 lost=0 ""`},
		{"no tuple", unknown.record("u"), `data write pid=10 tid=11 uid=12 comm="curl" fd=-1 conn=0xabc invalid AddrPort->invalid AddrPort v=0x304 lib=openssl t=1005 lost=0 "u"`},
		{"comm without NUL", longComm.record(""), `data write pid=10 tid=11 uid=12 comm="fifteen-bytes!!" fd=3 conn=0xabc 127.0.0.1:40000->127.0.0.2:443 v=0x304 lib=openssl t=1005 lost=0 ""`},
		{"short", v4.record("")[:headerSize-1], fmt.Sprintf("error: ring record shorter than its header: %d bytes", headerSize-1)},
		{"length beyond record", v4.record("abc")[:headerSize+2], "error: ring record claims 3 data bytes, has 2"},
		{"unknown kind", header{kind: 7}.record(""), "error: ring record of unknown kind 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := decodeRecord(tt.rec, 1000, nil)
			got := render(cs)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func render(cs []capture.Chunk) string {
	kinds := []string{"data", "close", "lost"}
	var lines []string
	for _, c := range cs {
		lines = append(lines, fmt.Sprintf("%s %s pid=%d tid=%d uid=%d comm=%q fd=%d conn=%#x %s->%s v=%#x lib=%s t=%d lost=%d %q",
			kinds[c.Kind], c.Dir, c.PID, c.TID, c.UID, c.Comm, c.FD, c.Conn, c.Local, c.Remote, c.TLSVersion, c.Library, c.Time, c.LostBytes, c.Data))
	}
	return strings.Join(lines, "\n")
}

// TestDecodeGolden decodes ring records recorded from real curl and nginx
// traffic. With -update it records them afresh (and the fuzz seeds with
// them) before comparing.
func TestDecodeGolden(t *testing.T) {
	const records = "testdata/records.bin"
	if *golden.Update {
		recordTraffic(t, records)
	}
	raw, err := os.ReadFile(records)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rec := range splitRecords(t, raw) {
		cs, err := decodeRecord(rec, 0, nil)
		if err != nil {
			t.Fatalf("recorded record: %v", err)
		}
		out = append(out, render(cs))
	}
	got := strings.Join(out, "\n") + "\n"
	golden.Check(t, "testdata/records.golden", []byte(got))
}

// splitRecords iterates a file of records, each preceded by its length as a
// little-endian uint32.
func splitRecords(t *testing.T, b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			if len(b) < 4 {
				t.Fatal("truncated records file")
			}
			n := int(binary.LittleEndian.Uint32(b))
			if len(b) < 4+n {
				t.Fatal("truncated records file")
			}
			if !yield(b[4 : 4+n]) {
				return
			}
			b = b[4+n:]
		}
	}
}

// recordTraffic captures the raw ring records of one curl HTTP/1.1 request
// to nginx and writes them to path and as fuzz seeds.
func recordTraffic(t *testing.T, path string) {
	srv := testenv.StartNginx(t, testenv.NginxConfig{Files: map[string][]byte{"r.txt": []byte("recorded body\n")}})
	c := newCapturer(t, Options{})
	pid, _ := curl(t, srv.URL("/r.txt"), "--http1.1")
	var (
		file bytes.Buffer
		rec  ringbuf.Record
	)
	seeds := filepath.Join("testdata", "fuzz", "FuzzDecodeRecord")
	if err := os.MkdirAll(seeds, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, closed := 0, false; !closed; i++ {
		if err := c.src.rd.ReadInto(&rec); err != nil {
			t.Fatal(err)
		}
		cs, err := decodeRecord(rec.RawSample, 0, nil)
		if err != nil || int(cs[0].PID) != pid && int(cs[0].PID) != srv.PID() {
			continue
		}
		closed = int(cs[0].PID) == pid && cs[0].Kind == capture.Close
		binary.Write(&file, binary.LittleEndian, uint32(len(rec.RawSample)))
		file.Write(rec.RawSample)
		seed := golden.FuzzSeed(rec.RawSample)
		name := filepath.Join(seeds, fmt.Sprintf("record-%02d", i))
		if err := os.WriteFile(name, seed, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		cs, err := decodeRecord(rec, 0, nil)
		if err != nil {
			return
		}
		for _, c := range cs {
			if len(c.Data) > len(rec) || c.Kind > capture.Lost || c.Dir > capture.Write {
				t.Fatalf("decoded impossible chunk %+v from %d bytes", c, len(rec))
			}
			if c.Kind == capture.Lost && c.LostBytes == 0 {
				t.Fatalf("Lost chunk without lost bytes from %q", rec)
			}
		}
	})
}

func BenchmarkDecodeRecord(b *testing.B) {
	h := header{ts: 1, conn: 2, pid: 3, tid: 4, fd: 5, version: 0x0304, family: afInet, lport: 1, rport: 2, comm: "curl"}
	for _, size := range []int{64, MaxData} {
		rec := h.record(strings.Repeat("x", size))
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			var cs []capture.Chunk
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if cs, err = decodeRecord(rec, 0, cs[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestExitRecord(t *testing.T) {
	exit := header{ts: 9, pid: 77, tid: 78, uid: 5, fd: -1, kind: kindExit, comm: "gone"}
	c, ok := exitRecord(exit.record(""), 1)
	if !ok || c.PID != 77 || c.TID != 78 || c.Comm != "gone" || c.Time != 10 {
		t.Errorf("exitRecord = %+v, %v", c, ok)
	}
	for _, rec := range [][]byte{header{kind: uint8(capture.Close)}.record(""), exit.record("")[:headerSize-1]} {
		if _, ok := exitRecord(rec, 0); ok {
			t.Errorf("exitRecord accepted a %d-byte record of kind %d", len(rec), rec[min(len(rec)-1, offKind)])
		}
	}
}

// The enums in bpf/record.h must mean what record.go and package capture
// say they mean.
func TestRecordEnums(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "bpf", "record.h"))
	if err != nil {
		t.Fatal(err)
	}
	enum := func(name string) map[string]int {
		m := regexp.MustCompile(`enum ` + name + ` \{([^}]*)\}`).FindSubmatch(src)
		if m == nil {
			t.Fatalf("enum %s not found in bpf/record.h", name)
		}
		vals := map[string]int{}
		for _, kv := range regexp.MustCompile(`(\w+) = (\d+)`).FindAllSubmatch(m[1], -1) {
			n, _ := strconv.Atoi(string(kv[2]))
			vals[string(kv[1])] = n
		}
		return vals
	}
	for _, c := range []struct {
		enum, name string
		want       int
	}{
		{"kind", "KIND_DATA", int(capture.Data)},
		{"kind", "KIND_CLOSE", int(capture.Close)},
		{"kind", "KIND_LOST", int(capture.Lost)},
		{"kind", "KIND_EXIT", kindExit},
		{"dir", "DIR_READ", int(capture.Read)},
		{"dir", "DIR_WRITE", int(capture.Write)},
	} {
		if got, ok := enum(c.enum)[c.name]; !ok || got != c.want {
			t.Errorf("%s = %d in bpf/record.h (present %v), Go says %d", c.name, got, ok, c.want)
		}
	}
	libs := enum("lib")
	if len(libs) != len(libraries) {
		t.Errorf("bpf/record.h has %d libraries, record.go names %d", len(libs), len(libraries))
	}
	for name, v := range libs {
		if got := libraryName(uint8(v)); "LIB_"+strings.ToUpper(got) != name {
			t.Errorf("%s = %d in bpf/record.h, record.go names %d %q", name, v, v, got)
		}
	}
}

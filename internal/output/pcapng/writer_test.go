package pcapng

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/exporttest"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

var (
	client = netip.MustParseAddrPort("127.0.0.1:40000")
	server = netip.MustParseAddrPort("127.0.0.1:8443")
	base   = int64(1_800_000_000_000_000_000)
)

// chunk is one chunk of a curl-like client (the traced process).
func chunk(i int, dir capture.Direction, kind capture.Kind, data string) capture.Chunk {
	return capture.Chunk{Time: base + int64(i)*1e6, PID: 42, TID: 43, Comm: "curl", FD: 5, Library: "openssl", Conn: 0xabc,
		Local: client, Remote: server, Dir: dir, Kind: kind, Data: []byte(data)}
}

// packet is a decoded packet of a written file.
type packet struct {
	ci      gopacket.CaptureInfo
	tcp     *layers.TCP
	src     netip.Addr
	comment string
}

func readAll(t testing.TB, r io.Reader) []packet {
	t.Helper()
	ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []packet
	for {
		data, ci, opts, err := ng.ReadPacketDataWithOptions()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
		if data[0]>>4 == 6 {
			p = gopacket.NewPacket(data, layers.LayerTypeIPv6, gopacket.Default)
		}
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("packet %d does not decode: %v", len(out)+1, el.Error())
		}
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			t.Fatalf("packet %d has no TCP layer", len(out)+1)
		}
		src, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Src().Raw())
		out = append(out, packet{ci: ci, tcp: tcp, src: src, comment: strings.Join(opts.Comments, " ")})
	}
}

func write(t *testing.T, opts Options, cs ...capture.Chunk) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cs {
		if err := w.Write(&cs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A connection is a handshake, data segments at MSS whose sequence numbers
// follow the bytes, and FINs at close.
func TestSegments(t *testing.T) {
	body := strings.Repeat("b", 2500)
	out := write(t, Options{MSS: 1000},
		chunk(0, capture.Write, capture.Data, "GET / HTTP/1.1\r\n\r\n"),
		chunk(1, capture.Read, capture.Data, body),
		chunk(2, capture.Read, capture.Close, ""))
	ps := readAll(t, bytes.NewReader(out))
	type want struct {
		fromClient     bool
		syn, fin, psh  bool
		len            int
		relSeq, relAck uint32
	}
	wants := []want{
		{true, true, false, false, 0, 0, 0},
		{false, true, false, false, 0, 0, 1},
		{true, false, false, false, 0, 1, 1},
		{true, false, false, true, 18, 1, 1},
		{false, false, false, false, 1000, 1, 19},
		{false, false, false, false, 1000, 1001, 19},
		{false, false, false, true, 500, 2001, 19},
		// The close arrived on the read side: the peer's FIN comes first.
		{false, false, true, false, 0, 2501, 19},
		{true, false, true, false, 0, 19, 2502},
		{false, false, false, false, 0, 2502, 20},
	}
	if len(ps) != len(wants) {
		t.Fatalf("%d packets, want %d", len(ps), len(wants))
	}
	isn := map[bool]uint32{true: ps[0].tcp.Seq, false: ps[1].tcp.Seq}
	for i, w := range wants {
		p := ps[i]
		fromClient := p.tcp.SrcPort == layers.TCPPort(client.Port())
		got := want{fromClient, p.tcp.SYN, p.tcp.FIN, p.tcp.PSH, len(p.tcp.Payload), p.tcp.Seq - isn[fromClient], 0}
		if p.tcp.ACK {
			got.relAck = p.tcp.Ack - isn[!fromClient]
		}
		if got != w {
			t.Errorf("packet %d: %+v, want %+v", i+1, got, w)
		}
		if !strings.Contains(p.comment, "pid=42 tid=43 comm=curl fd=5 uuid=42_43_curl_5_") || !strings.Contains(p.comment, " lib=openssl") {
			t.Errorf("packet %d comment %q", i+1, p.comment)
		}
		if p.ci.Timestamp.UnixNano() < base {
			t.Errorf("packet %d stamped %v, before its chunk", i+1, p.ci.Timestamp)
		}
	}
}

// The lower port is the server's, whichever side was traced.
func TestServerSide(t *testing.T) {
	c := chunk(0, capture.Read, capture.Data, "GET / HTTP/1.1\r\n\r\n")
	c.Local, c.Remote = server, client // traced: the server
	ps := readAll(t, bytes.NewReader(write(t, Options{}, c)))
	if !ps[0].tcp.SYN || ps[0].tcp.SrcPort != 40000 || ps[3].tcp.SrcPort != 40000 {
		t.Errorf("SYN from port %d, request from %d; want both from the client's 40000", ps[0].tcp.SrcPort, ps[3].tcp.SrcPort)
	}
	if !strings.Contains(ps[3].comment, "_0") { // data the traced process read
		t.Errorf("comment %q: want data_type 0", ps[3].comment)
	}
}

// Unknown addresses get the documented synthetic ones.
func TestSyntheticAddress(t *testing.T) {
	c := chunk(0, capture.Write, capture.Data, "x")
	c.Local, c.Remote = netip.AddrPort{}, netip.AddrPort{}
	d := c
	d.Conn++
	ps := readAll(t, bytes.NewReader(write(t, Options{}, c, d)))
	if got := ps[0].src; got != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("first connection from %v, want 198.18.0.1", got)
	}
	if got := ps[1].src; got != netip.MustParseAddr("198.19.0.1") || ps[1].tcp.SrcPort != 80 {
		t.Errorf("peer %v:%d, want 198.19.0.1:80", got, ps[1].tcp.SrcPort)
	}
	if got := ps[4].src; got != netip.MustParseAddr("198.18.0.2") {
		t.Errorf("second connection from %v, want 198.18.0.2", got)
	}
}

// A loss shows in tshark as "previous segment not captured" at the
// segment after it, whose comment says how much was lost; and the HTTP
// messages around it still dissect.
func TestLossGapInTshark(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	cs := []capture.Chunk{
		chunk(0, capture.Write, capture.Data, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"),
		chunk(1, capture.Read, capture.Data, resp),
		chunk(2, capture.Write, capture.Data, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"),
		chunk(3, capture.Read, capture.Lost, ""),
		chunk(4, capture.Write, capture.Data, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"),
		chunk(5, capture.Read, capture.Data, resp),
		chunk(6, capture.Read, capture.Close, ""),
	}
	cs[3].LostBytes = uint64(len(resp))
	path := filepath.Join(t.TempDir(), "loss.pcapng")
	if err := os.WriteFile(path, write(t, Options{}, cs...), 0o644); err != nil {
		t.Fatal(err)
	}
	// What the pipeline would have emitted: three requests, two responses.
	var evs []*eventpb.Event
	for i, typ := range []uint32{1, 3, 1, 1, 3} {
		evs = append(evs, &eventpb.Event{Seq: uint64(i + 1), Type: typ, Timestamp: base + int64(i)*1e6})
	}
	exporttest.CheckPcapng(t, path, evs, exporttest.PcapngWant{Gaps: 1, GapComments: 1})
}

// Any chunk sequence gives a file that reads back packet by packet.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint8(0), uint8(1), uint64(3), uint16(1), true)
	f.Add([]byte{}, uint8(2), uint8(0), uint64(1<<40), uint16(0), false)
	f.Fuzz(func(t *testing.T, data []byte, kind, dir uint8, lost uint64, mss uint16, ipv6 bool) {
		c := chunk(0, capture.Direction(dir%2), capture.Kind(kind%3), string(data))
		c.LostBytes = lost
		if ipv6 {
			c.Local = netip.MustParseAddrPort("[::1]:1")
		}
		d := c
		d.Kind, d.Dir = capture.Data, 1-c.Dir
		e := c
		e.Kind = capture.Close
		readAll(t, bytes.NewReader(write(t, Options{MSS: int(mss % 2000)}, c, d, e)))
	})
}

func BenchmarkWrite(b *testing.B) {
	w, err := NewWriter(io.Discard, Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := chunk(0, capture.Read, capture.Data, strings.Repeat("p", 1024))
	b.ReportAllocs()
	b.SetBytes(1024)
	cpu := cpuTime()
	for b.Loop() {
		if err := w.Write(&c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.Packets())/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(w.Packets()), "cpu-ns/packet")
}

// BenchmarkBaselineNgWriter is the floor under BenchmarkWrite: the same
// packet, built once, written by the library with no comment and no TCP
// state.
func BenchmarkBaselineNgWriter(b *testing.B) {
	ng, err := pcapgo.NewNgWriter(io.Discard, layers.LinkTypeRaw)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	w, err := NewWriter(&out, Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := chunk(0, capture.Read, capture.Data, strings.Repeat("p", 1024))
	if err := w.Write(&c); err != nil || w.Flush() != nil {
		b.Fatal(err)
	}
	ps := readAll(b, &out)
	last := ps[len(ps)-1]
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: server.Addr().AsSlice(), DstIP: client.Addr().AsSlice()}
	_ = last.tcp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, last.tcp, gopacket.Payload(last.tcp.Payload)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, base), CaptureLength: len(data), Length: len(data)}
	b.ReportAllocs()
	b.SetBytes(1024)
	n := 0
	cpu := cpuTime()
	for b.Loop() {
		if err := ng.WritePacket(ci, data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/packet")
}

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// shared, loaded machine it measures the work where wall time measures
// the wait for a core too.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

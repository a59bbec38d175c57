package pcapng

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tlstap/tlstap/internal/capture"
)

// Options configure a Writer. Zero values take the defaults.
type Options struct {
	// MSS is the largest TCP payload per packet (default 1460 over IPv4,
	// 1440 over IPv6: an Ethernet MTU less the headers).
	MSS int
	// MaxConns bounds the connections tracked (default 65,536); beyond it
	// the least recently active is forgotten, and its next packet opens a
	// new handshake.
	MaxConns int
	// Application names the writer in the section header.
	Application string
}

func (o *Options) defaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = 1 << 16
	}
	if o.Application == "" {
		o.Application = "tlstap"
	}
}

// Synthetic addresses for connections whose 4-tuple is unknown: the
// benchmarking range of RFC 2544.
var (
	syntheticLocalBase = netip.MustParseAddr("198.18.0.0")
	syntheticPeer      = netip.AddrPortFrom(netip.MustParseAddr("198.19.0.1"), 80)
)

// Writer turns chunks into packets of one pcapng section. It is not safe
// for concurrent use.
type Writer struct {
	opts Options
	ng   *pcapgo.NgWriter

	flows map[flowKey]*flow
	tick  uint64 // bumped per chunk, for least-recently-active eviction
	nsyn  uint32 // connections given synthetic addresses so far

	buf     gopacket.SerializeBuffer
	packets uint64

	// Reused for every packet.
	ip4      layers.IPv4
	ip6      layers.IPv6
	tcp      layers.TCP
	tcpOpts  []layers.TCPOption
	payload  gopacket.Payload
	layers   [3]gopacket.SerializableLayer
	comments [1]string
}

type flowKey struct {
	pid  uint32
	conn uint64
}

// flow is one connection's TCP state. Index 0 of the arrays is the client
// (the SYN's sender), 1 the server.
type flow struct {
	ends       [2]netip.AddrPort
	localIsCli bool
	next       [2]uint32 // next sequence number each side sends
	lost       [2]uint64 // bytes lost since the side's last packet
	ips        [2]net.IP
	comment    [2]string // each side's packet comment, without loss notes
	used       uint64
}

// NewWriter writes the section header to w and returns a Writer. Writes
// are buffered until Flush.
func NewWriter(w io.Writer, opts Options) (*Writer, error) {
	opts.defaults()
	ng, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:        "tlstap",
		Description: "TLS plaintext captured by tlstap",
		LinkType:    layers.LinkTypeRaw,
		SnapLength:  0,
		// Nanoseconds, as chunks are stamped.
		TimestampResolution: 9,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: opts.Application,
		Comment:     "Plaintext of TLS connections with synthesized TCP; see the packet comments for the process.",
	}})
	if err != nil {
		return nil, fmt.Errorf("pcapng: %w", err)
	}
	return &Writer{opts: opts, ng: ng, flows: map[flowKey]*flow{}, buf: gopacket.NewSerializeBuffer()}, nil
}

// Packets returns the number of packets written.
func (w *Writer) Packets() uint64 { return w.packets }

// Flush writes buffered packets to the underlying writer.
func (w *Writer) Flush() error { return w.ng.Flush() }

// Write adds c: data becomes segments from its sender, a loss a sequence
// gap, a close FINs from both sides. The chunk is not retained.
func (w *Writer) Write(c *capture.Chunk) error {
	key := flowKey{c.PID, c.Conn}
	f := w.flows[key]
	if f == nil {
		if c.Kind == capture.Close {
			return nil
		}
		var err error
		if f, err = w.open(key, c); err != nil {
			return err
		}
	}
	w.tick++
	f.used = w.tick
	ts := time.Unix(0, c.Time)
	// The sender: the traced process writes, its peer is read from.
	side := 0
	if (c.Dir == capture.Write) != f.localIsCli {
		side = 1
	}
	switch c.Kind {
	case capture.Data:
		mss := w.mss(f)
		for data := c.Data; len(data) > 0; {
			n := min(len(data), mss)
			if err := w.segment(f, side, ts, tcpFlags{ack: true, psh: n == len(data)}, data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
	case capture.Lost:
		f.lost[side] += c.LostBytes
		f.next[side] += uint32(c.LostBytes)
	case capture.Close:
		delete(w.flows, key)
		for _, s := range []int{side, 1 - side} {
			if err := w.segment(f, s, ts, tcpFlags{fin: true, ack: true}, nil); err != nil {
				return err
			}
		}
		// The last ACK, for the second FIN.
		return w.segment(f, side, ts, tcpFlags{ack: true}, nil)
	}
	return nil
}

// dirOf returns the capture direction of data sent by side.
func dirOf(f *flow, side int) capture.Direction {
	if (side == 0) == f.localIsCli {
		return capture.Write
	}
	return capture.Read
}

func (w *Writer) mss(f *flow) int {
	if w.opts.MSS > 0 {
		return w.opts.MSS
	}
	if f.ends[0].Addr().Is4() {
		return 1460
	}
	return 1440
}

// open starts tracking a connection and writes its handshake.
func (w *Writer) open(key flowKey, c *capture.Chunk) (*flow, error) {
	if len(w.flows) >= w.opts.MaxConns {
		w.evict()
	}
	local, remote := c.Local, c.Remote
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if !local.IsValid() || !remote.IsValid() || local.Addr().Is4() != remote.Addr().Is4() {
		w.nsyn++
		b := syntheticLocalBase.As4()
		n := w.nsyn % (1 << 16)
		b[2], b[3] = byte(n>>8), byte(n)
		local = netip.AddrPortFrom(netip.AddrFrom4(b), uint16(49152+w.nsyn%16384))
		remote = syntheticPeer
	}
	f := &flow{}
	// The lower port is the server's; on a tie, the traced process is
	// taken to be the client.
	f.localIsCli = local.Port() >= remote.Port()
	if f.localIsCli {
		f.ends = [2]netip.AddrPort{local, remote}
	} else {
		f.ends = [2]netip.AddrPort{remote, local}
	}
	for side := range 2 {
		f.ips[side] = net.IP(f.ends[side].Addr().AsSlice())
		// The uuid as ecapture writes it (PID_TID_COMM_FD_DATATYPE): the
		// prefix of the stream's event uuids.
		comm := oneLine(c.Comm)
		f.comment[side] = fmt.Sprintf("pid=%d tid=%d comm=%s fd=%d uuid=%d_%d_%s_%d_%d",
			c.PID, c.TID, comm, c.FD, c.PID, c.TID, comm, c.FD, dirOf(f, side))
		if c.Library != "" {
			// Recordings from before the field existed carry none.
			f.comment[side] += " lib=" + oneLine(c.Library)
		}
	}
	// Fixed initial sequence numbers: Wireshark shows relative ones, and
	// fixed values keep files reproducible.
	f.next = [2]uint32{1000, 5000}
	w.flows[key] = f

	ts := time.Unix(0, c.Time)
	if err := w.segment(f, 0, ts, tcpFlags{syn: true}, nil); err != nil {
		return nil, err
	}
	if err := w.segment(f, 1, ts, tcpFlags{syn: true, ack: true}, nil); err != nil {
		return nil, err
	}
	return f, w.segment(f, 0, ts, tcpFlags{ack: true}, nil)
}

func (w *Writer) evict() {
	var oldest flowKey
	var used uint64 = 1<<64 - 1
	for k, f := range w.flows {
		if f.used < used {
			oldest, used = k, f.used
		}
	}
	delete(w.flows, oldest)
}

type tcpFlags struct{ syn, ack, psh, fin bool }

// segment writes one TCP packet from side and advances its sequence
// number. The layers and buffers are the Writer's, reused: a packet costs
// no allocation beyond its loss note.
func (w *Writer) segment(f *flow, side int, ts time.Time, fl tcpFlags, payload []byte) error {
	src, dst := f.ends[side], f.ends[1-side]
	tcp := &w.tcp
	*tcp = layers.TCP{
		SrcPort: layers.TCPPort(src.Port()),
		DstPort: layers.TCPPort(dst.Port()),
		Seq:     f.next[side],
		SYN:     fl.syn,
		ACK:     fl.ack,
		PSH:     fl.psh,
		FIN:     fl.fin,
		Window:  65535,
		Options: w.tcpOpts[:0],
		Padding: w.tcp.Padding[:0],
	}
	if fl.ack {
		tcp.Ack = f.next[1-side]
	}
	if fl.syn {
		mss := uint16(w.mss(f))
		tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(mss >> 8), byte(mss)}})
	}
	var ip gopacket.NetworkLayer
	if src.Addr().Is4() {
		w.ip4 = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: f.ips[side], DstIP: f.ips[1-side], Options: w.ip4.Options[:0]}
		ip = &w.ip4
		w.layers[0] = &w.ip4
	} else {
		w.ip6 = layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: f.ips[side], DstIP: f.ips[1-side]}
		ip = &w.ip6
		w.layers[0] = &w.ip6
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	if err := w.buf.Clear(); err != nil {
		return err
	}
	w.payload = payload
	w.layers[1], w.layers[2] = tcp, &w.payload
	if err := gopacket.SerializeLayers(w.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, w.layers[:]...); err != nil {
		return fmt.Errorf("pcapng: building a packet: %w", err)
	}
	data := w.buf.Bytes()
	w.comments[0] = f.comment[side]
	if n := f.lost[side]; n > 0 {
		w.comments[0] = fmt.Sprintf("%s; tlstap: capture lost %d bytes before this segment", f.comment[side], n)
	}
	err := w.ng.WritePacketWithOptions(gopacket.CaptureInfo{
		Timestamp:     ts,
		CaptureLength: len(data),
		Length:        len(data),
	}, data, pcapgo.NgPacketOptions{Comments: w.comments[:]})
	if err != nil {
		return fmt.Errorf("pcapng: %w", err)
	}
	w.packets++
	f.lost[side] = 0
	n := uint32(len(payload))
	if fl.syn || fl.fin {
		n++
	}
	f.next[side] += n
	return nil
}

// oneLine keeps a process name from breaking the comment's key=value form.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

var errClosed = errors.New("pcapng: file closed")

package websocket_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
)

// chunk is one Read or Write on the client's TCP connection.
type chunk struct {
	c2s  bool
	data []byte
}

// recording is a connection as the client's socket saw it, in call order.
type recording []chunk

// teeConn records the bytes of every Read and Write of a client conn.
type teeConn struct {
	net.Conn
	mu  *sync.Mutex
	rec *recording
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.add(false, p[:n])
	return n, err
}

func (c *teeConn) Write(p []byte) (int, error) {
	c.add(true, p)
	return c.Conn.Write(p)
}

func (c *teeConn) add(c2s bool, p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	*c.rec = append(*c.rec, chunk{c2s, bytes.Clone(p)})
	c.mu.Unlock()
}

// recorder hands out tee'd loopback connections and collects what they carry.
type recorder struct {
	mu  sync.Mutex
	rec recording
}

func (r *recorder) dial(network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("refusing non-loopback address %q", addr)
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return &teeConn{Conn: c, mu: &r.mu, rec: &r.rec}, nil
}

func (r *recorder) recording() recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(recording(nil), r.rec...)
}

// Recording file format: per chunk, one byte direction (1 = c2s), a
// big-endian uint32 length, the bytes.

func (rec recording) save(path string) error {
	var b bytes.Buffer
	for _, c := range rec {
		dir := byte(0)
		if c.c2s {
			dir = 1
		}
		b.WriteByte(dir)
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c.data))))
		b.Write(c.data)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func loadRecording(path string) (recording, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec recording
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, errors.New("truncated recording")
		}
		n := binary.BigEndian.Uint32(b[1:])
		if uint64(len(b)-5) < uint64(n) {
			return nil, errors.New("truncated recording")
		}
		rec = append(rec, chunk{b[0] == 1, b[5 : 5+n]})
		b = b[5+n:]
	}
	return rec, nil
}

// wsSide is one direction of a recording after its HTTP handshake.
type wsSide struct {
	chunks [][]byte
}

func (s wsSide) bytes() []byte { return bytes.Join(s.chunks, nil) }

// splitHandshake strips the HTTP/1.1 upgrade from both directions and
// returns the WebSocket bytes of each, chunked as recorded, and the 101
// response's Sec-WebSocket-Extensions.
func splitHandshake(t testing.TB, rec recording) (c2s, s2c wsSide, extensions string) {
	t.Helper()
	var skip [2]int // header bytes still to drop per direction, -1 unknown
	var all [2][]byte
	for _, c := range rec {
		all[dirIndex(c.c2s)] = append(all[dirIndex(c.c2s)], c.data...)
	}
	for i := range all {
		end := bytes.Index(all[i], []byte("\r\n\r\n"))
		if end < 0 {
			t.Fatalf("direction %d: no end of HTTP head", i)
		}
		skip[i] = end + 4
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(all[1][:skip[1]])), nil)
	if err != nil {
		t.Fatalf("parse 101: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	extensions = strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
	sides := [2]*wsSide{&c2s, &s2c}
	for _, c := range rec {
		i := dirIndex(c.c2s)
		d := c.data
		n := min(skip[i], len(d))
		skip[i] -= n
		if d = d[n:]; len(d) > 0 {
			sides[i].chunks = append(sides[i].chunks, d)
		}
	}
	return c2s, s2c, extensions
}

func dirIndex(c2s bool) int {
	if c2s {
		return 0
	}
	return 1
}

// frameInfo is a frame header as an independent reader sees it.
type frameInfo struct {
	fin, rsv1 bool
	op        uint8
	lenBytes  int // 0, 2 or 8 extra length bytes
	length    uint64
}

// walkFrames lists the frames of a well-formed stream. It is deliberately
// separate from the decoder so that tests can say what the bytes contain.
func walkFrames(t *testing.T, b []byte) []frameInfo {
	t.Helper()
	var fs []frameInfo
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("short frame header")
		}
		f := frameInfo{fin: b[0]&0x80 != 0, rsv1: b[0]&0x40 != 0, op: b[0] & 0xf, length: uint64(b[1] & 0x7f)}
		p := 2
		switch f.length {
		case 126:
			f.lenBytes, f.length = 2, uint64(binary.BigEndian.Uint16(b[2:]))
		case 127:
			f.lenBytes, f.length = 8, binary.BigEndian.Uint64(b[2:])
		}
		p += f.lenBytes
		if b[1]&0x80 != 0 {
			p += 4
		}
		if uint64(len(b)-p) < f.length {
			t.Fatalf("short frame payload")
		}
		b = b[p+int(f.length):]
		fs = append(fs, f)
	}
	return fs
}

// checkFrames makes sure a big-script recording exercises fragmentation,
// all three length encodings and (if compressed) RSV1, in either direction.
func checkFrames(t *testing.T, c2s, s2c wsSide, compressed bool) {
	t.Helper()
	var cont, rsv1 int
	var lens [9]int
	for _, f := range append(walkFrames(t, c2s.bytes()), walkFrames(t, s2c.bytes())...) {
		if f.op == 0 {
			cont++
		}
		if f.rsv1 {
			rsv1++
		}
		lens[f.lenBytes]++
	}
	if cont == 0 || lens[0] == 0 || lens[2] == 0 || lens[8] == 0 {
		t.Fatalf("recording lacks coverage: %d continuation frames, length encodings %v", cont, lens)
	}
	if compressed != (rsv1 > 0) {
		t.Fatalf("%d compressed frames, compressed=%t", rsv1, compressed)
	}
}

// frame builds one frame; key != nil masks it.
func frame(fin, rsv1 bool, op byte, key []byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	var mbit byte
	if key != nil {
		mbit = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mbit|byte(n))
	case n <= 0xffff:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if key == nil {
		return append(b, payload...)
	}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// deflater compresses messages the way permessage-deflate senders do.
type deflater struct {
	w        *flate.Writer
	buf      bytes.Buffer
	takeover bool
}

func newDeflater(takeover bool) *deflater {
	d := &deflater{takeover: takeover}
	d.w, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	return d
}

// compress returns p deflated and sync-flushed, without the 4-byte tail.
func (d *deflater) compress(p []byte) []byte {
	if !d.takeover {
		d.w.Reset(&d.buf)
	}
	d.buf.Reset()
	d.w.Write(p)
	d.w.Flush()
	out := bytes.Clone(d.buf.Bytes())
	return bytes.TrimSuffix(out, []byte{0, 0, 0xff, 0xff})
}

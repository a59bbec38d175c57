package websocket_test

import (
	"bufio"
	"bytes"
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

package session_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/tlstap/tlstap/internal/capture"
)

// chunk is one Read or Write call of the traced (client) process.
type chunk struct {
	dir  capture.Direction
	data []byte
}

// recording is a connection as the client process's socket calls saw it.
type recording []chunk

// teeConn records every Read and Write of a client connection, as an
// eBPF probe on the client's TLS library would.
type teeConn struct {
	net.Conn
	r *recorder
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.add(capture.Read, p[:n])
	return n, err
}

func (c *teeConn) Write(p []byte) (int, error) {
	c.r.add(capture.Write, p)
	return c.Conn.Write(p)
}

// recorder hands out recorded loopback connections.
type recorder struct {
	mu    sync.Mutex
	rec   recording
	dials int
}

func (r *recorder) add(dir capture.Direction, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	r.rec = append(r.rec, chunk{dir, bytes.Clone(p)})
	r.mu.Unlock()
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
	r.mu.Lock()
	r.dials++
	r.mu.Unlock()
	return &teeConn{Conn: c, r: r}, nil
}

func (r *recorder) recording() (recording, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(recording(nil), r.rec...), r.dials
}

// File format: per chunk one direction byte, a big-endian uint32 length,
// the bytes.

func (rec recording) save(path string) error {
	var b bytes.Buffer
	for _, c := range rec {
		b.WriteByte(byte(c.dir))
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
		if len(b) < 5 || b[0] > 1 {
			return nil, errors.New("corrupt recording")
		}
		n := binary.BigEndian.Uint32(b[1:])
		if uint64(len(b)-5) < uint64(n) {
			return nil, errors.New("truncated recording")
		}
		rec = append(rec, chunk{capture.Direction(b[0]), b[5 : 5+n]})
		b = b[5+n:]
	}
	return rec, nil
}

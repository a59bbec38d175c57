package http2

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// capture is what both directions of one connection carried, one entry per
// Write call, as a TLS capture sees one chunk per SSL_write.
type capture struct {
	Client, Server [][]byte
}

func (c *capture) side(s Side) [][]byte {
	if s == Server {
		return c.Server
	}
	return c.Client
}

func flat(chunks [][]byte) []byte {
	var b []byte
	for _, c := range chunks {
		b = append(b, c...)
	}
	return b
}

// recConn records every Write into chunks.
type recConn struct {
	net.Conn
	mu     *sync.Mutex
	chunks *[][]byte
}

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	*c.chunks = append(*c.chunks, append([]byte(nil), p...))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// noDate keeps the server's Date header out of captures so golden files
// stay stable.
func noDate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		h.ServeHTTP(w, r)
	})
}

// recListener records what its connections write.
type recListener struct {
	net.Listener
	mu     *sync.Mutex
	chunks *[][]byte
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, mu: l.mu, chunks: l.chunks}, nil
}

// h2c speaks HTTP/2 without TLS, with prior knowledge, as net/http's
// bundled copy of x/net/http2 does.
func h2c() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

// record runs one h2c connection between net/http's HTTP/2 client and
// server (x/net/http2, bundled) over 127.0.0.1 and returns the bytes of
// both directions. run gets a client whose every request goes over that
// one connection.
func record(t testing.TB, h http.Handler, run func(c *http.Client, base string)) *capture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cp := new(capture)
	closed := make(chan struct{}, 1)
	conns := 0
	srv := &http.Server{
		Handler:   noDate(h),
		Protocols: h2c(),
		// ConnState calls come from the connection's goroutine.
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				mu.Lock()
				conns++
				mu.Unlock()
			case http.StateClosed:
				select {
				case closed <- struct{}{}:
				default: // a second connection; reported below
				}
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(&recListener{Listener: ln, mu: &mu, chunks: &cp.Server}) }()

	tr := &http.Transport{
		Protocols: h2c(),
		// A capture must be one connection; under load the client
		// sometimes dialled a second one for sequential requests.
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &recConn{Conn: c, mu: &mu, chunks: &cp.Client}, nil
		},
	}
	run(&http.Client{Transport: tr}, "http://"+ln.Addr().String())
	// The client closing its connection ends the server's; wait for that
	// so the capture is whole.
	tr.CloseIdleConnections()
	<-closed
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Error(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d connections; a capture must be one", conns)
	}
	return cp
}

// Fixture files hold a capture as records of side (1 byte), length
// (4 bytes, big endian) and data, in arrival order per side.

func writeCapture(path string, c *capture) error {
	var b []byte
	for s, chunks := range [][][]byte{c.Client, c.Server} {
		for _, ch := range chunks {
			b = append(b, byte(s))
			b = binary.BigEndian.AppendUint32(b, uint32(len(ch)))
			b = append(b, ch...)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func readCapture(path string) (*capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	c := new(capture)
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return c, nil
			}
			return nil, err
		}
		data := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		switch hdr[0] {
		case 0:
			c.Client = append(c.Client, data)
		case 1:
			c.Server = append(c.Server, data)
		default:
			return nil, fmt.Errorf("%s: bad side %d", path, hdr[0])
		}
	}
}

// decodeAll feeds chunks to a fresh decoder, chunk i at time ts(i), flushes
// it on close and returns what it emitted.
func decodeAll(side Side, l Limits, chunks [][]byte, ts func(i int) int64) ([]*Message, *Decoder) {
	d := newDecoder(side, l)
	var out []*Message
	emit := func(m *Message) { out = append(out, m) }
	var last int64
	for i, c := range chunks {
		last = ts(i)
		d.Feed(last, c, emit)
	}
	d.Flush(last+1, closeReason, emit)
	return out, d
}

func chunkIndex(i int) int64 { return int64(i + 1) }

// split cuts b into pieces of n bytes.
func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

package http2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/decoder"
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

// frames writes frames with x/net/http2's Framer and header blocks with its
// hpack.Encoder, for what the real client and server never send: server
// push, padding, CONTINUATION, dynamic table size updates, bad frames.
type frames struct {
	t   testing.TB
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newFrames(t testing.TB) *frames {
	f := &frames{t: t}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

// block HPACK-encodes name, value pairs.
func (f *frames) block(kv ...string) []byte {
	f.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		f.ok(f.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}))
	}
	return bytes.Clone(f.hb.Bytes())
}

func (f *frames) ok(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// chunk returns what was written since the last chunk.
func (f *frames) chunk() []byte {
	b := bytes.Clone(f.buf.Bytes())
	f.buf.Reset()
	return b
}

func (f *frames) preface() { f.buf.WriteString(clientPreface) }

func (f *frames) headers(stream uint32, end bool, kv ...string) {
	f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: f.block(kv...), EndStream: end, EndHeaders: true}))
}

// pushCapture: the server pushes a stylesheet with the page that needs it.
func pushCapture(t testing.TB) *capture {
	cl, sv := newFrames(t), newFrames(t)
	cl.preface()
	cl.ok(cl.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}))
	cl.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/index.html")
	cl.ok(cl.fr.WriteSettingsAck())

	sv.ok(sv.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}))
	first := sv.chunk()
	sv.ok(sv.fr.WriteSettingsAck())
	sv.headers(1, false, ":status", "200", "content-type", "text/html")
	sv.ok(sv.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true,
		BlockFragment: sv.block(":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/style.css")}))
	sv.ok(sv.fr.WriteData(1, true, []byte(`<html><link rel="stylesheet" href="/style.css"></html>`)))
	sv.headers(2, false, ":status", "200", "content-type", "text/css")
	sv.ok(sv.fr.WriteData(2, true, []byte("body { color: red }")))
	return &capture{Client: [][]byte{cl.chunk()}, Server: [][]byte{first, sv.chunk()}}
}

// paddingCapture pads every frame that can be, splits a header block over
// CONTINUATION frames and mixes in every other frame type, an unknown one
// included.
func paddingCapture(t testing.TB) *capture {
	cl, sv := newFrames(t), newFrames(t)
	cl.preface()
	cl.ok(cl.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192}, http2.Setting{ID: 0x99, Val: 7}))
	blk := cl.block(":method", "POST", ":scheme", "https", ":authority", "api.example.com", ":path", "/submit",
		"content-type", "application/json", "x-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736",
		"authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo")
	cl.ok(cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:10], PadLength: 7,
		Priority: http2.PriorityParam{StreamDep: 0, Weight: 15, Exclusive: true}}))
	cl.ok(cl.fr.WriteContinuation(1, false, blk[10:40]))
	cl.ok(cl.fr.WriteContinuation(1, true, blk[40:]))
	cl.ok(cl.fr.WritePriority(1, http2.PriorityParam{Weight: 200}))
	cl.ok(cl.fr.WriteRawFrame(0xfa, 0x3, 1, []byte("an extension frame")))
	cl.ok(cl.fr.WriteDataPadded(1, false, []byte(`{"hello":`), make([]byte, 10)))
	cl.ok(cl.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	cl.ok(cl.fr.WriteWindowUpdate(0, 1<<20))
	cl.ok(cl.fr.WriteDataPadded(1, true, []byte(`"world"}`), []byte{}))
	cl.ok(cl.fr.WriteGoAway(0, http2.ErrCodeNo, []byte("bye")))

	sv.ok(sv.fr.WriteSettings())
	sv.ok(sv.fr.WriteSettingsAck())
	sv.ok(sv.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, PadLength: 3, EndHeaders: true,
		BlockFragment: sv.block(":status", "201", "location", "/items/7")}))
	sv.ok(sv.fr.WriteDataPadded(1, true, []byte(`{"id":7}`), make([]byte, 255)))
	sv.ok(sv.fr.WritePing(true, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	return &capture{Client: [][]byte{cl.chunk()}, Server: [][]byte{sv.chunk()}}
}

// tableSizeCapture changes the HPACK table size between requests: up, then
// to zero (emptying it) and back, two updates at the start of one block.
func tableSizeCapture(t testing.TB) *capture {
	cl, sv := newFrames(t), newFrames(t)
	cl.preface()
	cl.ok(cl.fr.WriteSettings())
	sv.ok(sv.fr.WriteSettings())
	fields := []string{":method", "GET", ":scheme", "https", ":authority", "cdn.example.com", ":path", "/a.js",
		"x-long", string(bytes.Repeat([]byte("v"), 600)), "x-request-id", "r-1"}
	var chunks [][]byte
	req := func(id uint32) {
		cl.headers(id, true, fields...)
		chunks = append(chunks, cl.chunk())
		sv.headers(id, true, ":status", "204", "x-request-id", fields[len(fields)-1])
	}
	req(1)
	req(3) // from the dynamic table
	cl.enc.SetMaxDynamicTableSizeLimit(16384)
	cl.enc.SetMaxDynamicTableSize(16384)
	fields[len(fields)-1] = "r-5"
	req(5)
	cl.enc.SetMaxDynamicTableSize(0)
	cl.enc.SetMaxDynamicTableSize(2048)
	fields[len(fields)-1] = "r-7"
	req(7)
	fields[len(fields)-1] = "r-9"
	req(9)
	return &capture{Client: chunks, Server: [][]byte{sv.chunk()}}
}

var crafted = []struct {
	name string
	make func(testing.TB) *capture
}{
	{"push", pushCapture},
	{"padding", paddingCapture},
	{"table-size", tableSizeCapture},
}

type (
	Limits  = decoder.Limits
	Message = decoder.Message
)

const closeReason = decoder.Close

// describe renders messages for golden files: every field, and the payload
// quoted so CR, LF and binary bytes are visible. Long payloads show their
// head, length and hash.
func describe(label string, ms []*Message) string {
	var b strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&b, "=== %s #%d %s stream=%d start=%d end=%d\n", label, i, m.Type, m.StreamID, m.Start, m.End)
		fmt.Fprintf(&b, "incomplete=%t truncated=%t original_length=%d status=%d\n", m.Incomplete, m.Truncated, m.OriginalLength, m.Status)
		fmt.Fprintf(&b, "host=%q method=%q path=%q content_type=%q content_encoding=%q transfer_encoding=%q\n",
			m.Host, m.Method, m.Path, m.ContentType, m.ContentEncoding, m.TransferEncoding)
		fmt.Fprintf(&b, "payload %d bytes sha256=%x\n", len(m.Payload), sha256.Sum256(m.Payload))
		p := m.Payload
		const show = 1024
		if len(p) > show {
			p = p[:show]
		}
		for line := range bytes.Lines(p) {
			fmt.Fprintf(&b, "  %q\n", line)
		}
		if len(m.Payload) > show {
			fmt.Fprintf(&b, "  ... %d more bytes\n", len(m.Payload)-show)
		}
	}
	return b.String()
}

// sameMessage compares everything but the timestamps, which depend on how
// the bytes were chunked.
func sameMessage(a, b *Message) bool {
	x, y := *a, *b
	x.Start, x.End, y.Start, y.End = 0, 0, 0, 0
	return reflect.DeepEqual(x, y)
}

// finalHead splits the payload into its final head (after any 1xx heads)
// and body.
func finalHead(m *Message) (head string, body []byte) {
	p := m.Payload
	for {
		h, rest, ok := bytes.Cut(p, []byte("\r\n\r\n"))
		if !ok {
			return string(p), nil
		}
		if m.Type == decoder.HTTP2Response && bytes.HasPrefix(h, []byte("HTTP/2 1")) {
			p = rest
			continue
		}
		return string(h), rest
	}
}

// field returns the value of the first "name: value" line of the final
// head, or "" if there is none.
func field(m *Message, name string) string {
	head, _ := finalHead(m)
	for line := range strings.SplitSeq(head, "\r\n") {
		if n, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(n, name) {
			return v
		}
	}
	return ""
}

func body(m *Message) []byte {
	_, b := finalHead(m)
	return b
}

package engine_test

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/capture/replay"
	"github.com/tlstap/tlstap/internal/recording"
)

// The fixed recordings in testdata are written by this generator when the
// tests run with -update; otherwise the checked-in files are used, so the
// goldens do not depend on this Go version's gzip output.

const t0 = int64(1_750_000_000_000_000_000) // 2025-06-15T15:06:40Z
const ms = int64(1e6)

// script builds the chunks of one connection.
type script struct {
	chunks []capture.Chunk
	base   capture.Chunk
}

func newScript(pid, tid uint32, comm string, fd int32, conn uint64, local, remote string) *script {
	return &script{base: capture.Chunk{
		PID: pid, TID: tid, UID: 1000, Comm: comm, FD: fd, Conn: conn,
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), TLSVersion: 0x0304,
	}}
}

func (s *script) add(at int64, dir capture.Direction, data []byte) *script {
	c := s.base
	c.Time, c.Dir, c.Data = t0+at, dir, data
	s.chunks = append(s.chunks, c)
	return s
}

func (s *script) send(at int64, data string) *script { return s.add(at, capture.Write, []byte(data)) }
func (s *script) recv(at int64, data string) *script { return s.add(at, capture.Read, []byte(data)) }

func (s *script) lost(at int64, dir capture.Direction, n uint64) *script {
	c := s.base
	c.Time, c.Dir, c.Kind, c.LostBytes = t0+at, dir, capture.Lost, n
	s.chunks = append(s.chunks, c)
	return s
}

func (s *script) close(at int64) *script {
	c := s.base
	c.Time, c.Kind = t0+at, capture.Close
	s.chunks = append(s.chunks, c)
	return s
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// chunked encodes body in HTTP/1.1 chunks of at most n bytes.
func chunked(body string, n int) string {
	var b bytes.Buffer
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// http1Recording: a keep-alive connection with a gzip + chunked JSON
// response split over several reads, a POST, and a 304; closed at the end.
func http1Recording() []capture.Chunk {
	gz := gzipped(`{"items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"}]}`)
	resp1 := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(gz, 16)
	s := newScript(4242, 4242, "curl", 5, 0x7f0000001000, "127.0.0.1:51000", "127.0.0.1:8443").
		send(0, "GET /api/items HTTP/1.1\r\nHost: shop.test\r\nAccept-Encoding: gzip\r\nUser-Agent: curl/8.5.0\r\n\r\n")
	for i := 0; i < len(resp1); i += 40 {
		s.recv(12*ms+int64(i/40)*ms/10, resp1[i:min(i+40, len(resp1))])
	}
	body := `{"name":"gamma"}`
	s.send(50*ms, fmt.Sprintf("POST /api/items HTTP/1.1\r\nHost: shop.test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	s.base.TID = 4243 // a second thread serves the same connection
	s.recv(61*ms, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"id\":3,\"name\":\"gamma\"}\r\n")
	s.send(80*ms, "GET /api/items/3 HTTP/1.1\r\nHost: shop.test\r\nIf-None-Match: \"v3\"\r\n\r\n")
	s.recv(85*ms, "HTTP/1.1 304 Not Modified\r\nETag: \"v3\"\r\n\r\n")
	return s.close(90 * ms).chunks
}

func h2frames(f func(fr *http2.Framer, enc func(kv ...string) []byte)) string {
	var buf, hb bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	henc := hpack.NewEncoder(&hb)
	f(fr, func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	})
	return buf.String()
}

// http2Recording: HTTP/2 over IPv6 with two concurrent streams whose
// responses interleave, one of them gzip-encoded, then a closed connection.
func http2Recording() []capture.Chunk {
	s := newScript(3131, 3140, "python3", 7, 0x55aa00, "[::1]:52000", "[::1]:9443")
	s.send(0, http2.ClientPreface+h2frames(func(fr *http2.Framer, enc func(...string) []byte) {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
			BlockFragment: enc(":method", "GET", ":scheme", "https", ":authority", "[::1]:9443", ":path", "/slow")})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true,
			BlockFragment: enc(":method", "POST", ":scheme", "https", ":authority", "[::1]:9443", ":path", "/echo", "content-type", "text/plain")})
		fr.WriteData(3, true, []byte("echo me"))
	}))
	s.recv(5*ms, h2frames(func(fr *http2.Framer, enc func(...string) []byte) {
		fr.WriteSettings()
		fr.WriteSettingsAck()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true,
			BlockFragment: enc(":status", "200", "content-type", "text/plain")})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
			BlockFragment: enc(":status", "200", "content-type", "text/html", "content-encoding", "gzip")})
		fr.WriteData(3, false, []byte("echo "))
	}))
	gz := gzipped("<html><body>slow page</body></html>")
	s.recv(9*ms, h2frames(func(fr *http2.Framer, enc func(...string) []byte) {
		fr.WriteData(1, false, []byte(gz[:10]))
		fr.WriteData(3, true, []byte("me"))
		fr.WriteData(1, true, []byte(gz[10:]))
	}))
	return s.close(20 * ms).chunks
}

// rawRecording: a binary protocol over IPv6 whose reads are split by idle
// pauses, a lost stretch, a process name that is not UTF-8, and two
// connections of one process; the second is never closed (flushed at end).
func rawRecording() []capture.Chunk {
	a := newScript(777, 778, "bin\xffproto", 9, 1, "[fd00::1]:40000", "[fd00::2]:7000").
		send(0, "\x00\x01\x02\x03hello\x00").
		recv(2*ms, "\x00\x81\x00\x05").
		recv(3*ms, "world").
		recv(300*ms, "\x00\x82second\x00"). // after an idle pause: a new event
		lost(301*ms, capture.Read, 512).
		recv(302*ms, "\x00\x83after-gap").
		close(310 * ms)
	b := newScript(777, 779, "bin\xffproto", 10, 2, "127.0.0.1:40001", "127.0.0.1:7001").
		send(305*ms, "plain text line\n")
	return append(a.chunks, b.chunks...)
}

var recordings = map[string]func() []capture.Chunk{
	"http1": http1Recording,
	"http2": http2Recording,
	"raw":   rawRecording,
}

func writeRecording(t *testing.T, name string, chunks []capture.Chunk) {
	t.Helper()
	f, err := os.Create(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := recording.NewWriter(f, "engine golden generator")
	if err != nil {
		t.Fatal(err)
	}
	// Chunks go in time order, as a capture would have written them.
	slices.SortStableFunc(chunks, func(a, b capture.Chunk) int { return cmp.Compare(a.Time, b.Time) })
	for i := range chunks {
		if err := w.Write(&chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func fileSource(t *testing.T, path string) capture.Source {
	t.Helper()
	src, err := replay.New(replay.Options{Open: func() (io.ReadCloser, error) { return os.Open(path) }, Name: path})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func readChunks(t *testing.T, path string) []capture.Chunk {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := recording.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []capture.Chunk
	for {
		c, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

package pipeline_test

import (
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/golden"
	"github.com/tlstap/tlstap/internal/pipeline"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// op is one chunk in the fuzzer's encoding: a control byte (bits 0-1
// kind, bit 2 direction, bits 3-4 connection, bit 5 second pid), a time
// step in ms, a length and that many data bytes.
func op(kind capture.Kind, dir capture.Direction, conn, pid int, stepMS byte, data string) []byte {
	ctl := byte(kind) | byte(dir)<<2 | byte(conn)<<3 | byte(pid)<<5
	b := []byte{ctl, stepMS, byte(len(data))}
	return append(b, data...)
}

// decodeOps turns fuzz input into chunks; it never fails.
func decodeOps(data []byte) []capture.Chunk {
	var out []capture.Chunk
	now := int64(0)
	for len(data) >= 3 {
		ctl, step, n := data[0], data[1], int(data[2])
		data = data[3:]
		n = min(n, len(data))
		now += int64(step) * ms
		c := chunk(now, uint64(ctl>>3&3), capture.Direction(ctl>>2&1), string(data[:n]))
		data = data[n:]
		c.PID += uint32(ctl >> 5 & 1)
		switch ctl & 3 {
		case 1:
			c.Kind, c.Data = capture.Close, nil
		case 2:
			c.Kind, c.LostBytes, c.Data = capture.Lost, uint64(n), nil
		}
		out = append(out, c)
	}
	return out
}

func seeds() map[string][]byte {
	h := newH2()
	h2req := h.preface().headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "a.test", ":path", "/").take()
	h2resp := h.settings().headers(1, false, ":status", "200").data(1, true, "hello").take()
	cat := func(ops ...[]byte) []byte {
		var b []byte
		for _, o := range ops {
			b = append(b, o...)
		}
		return b
	}
	return map[string][]byte{
		"http1": cat(
			op(capture.Data, capture.Write, 0, 0, 0, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
			op(capture.Data, capture.Read, 0, 0, 3, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
			op(capture.Close, 0, 0, 0, 1, ""),
		),
		"http2": cat(
			op(capture.Data, capture.Write, 1, 0, 0, h2req),
			op(capture.Data, capture.Read, 1, 0, 2, h2resp),
		),
		"raw-lost-idle": cat(
			op(capture.Data, capture.Read, 2, 1, 0, "\x00\x01\x02"),
			op(capture.Lost, capture.Read, 2, 1, 1, "xxxx"),
			op(capture.Data, capture.Read, 2, 1, 200, "\x00\x03"),
			op(capture.Data, capture.Write, 3, 0, 1, "PING\r\n"),
		),
	}
}

func TestWritePipelineSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzPipeline")
	for name, data := range seeds() {
		golden.Check(t, filepath.Join(dir, name), golden.FuzzSeed(data))
	}
}

// FuzzPipeline: any chunk sequence must not panic; every entry marshals
// (collect checks), sequence numbers grow by one, --tsize and the
// connection cap hold, and Close leaves nothing behind.
func FuzzPipeline(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := &collect{t: t}
		lim := decoder.DefaultLimits()
		lim.MaxBufferBytes, lim.MaxHeaderBytes, lim.MaxBodyBytes = 4096, 2048, 8192
		p := pipeline.New(pipeline.Options{VirtualClock: true, MaxConns: 3, TSize: 64, Limits: lim}, sink)
		for _, c := range decodeOps(data) {
			p.Handle(&c)
			if p.Connections() > 3 {
				t.Fatalf("%d connections tracked, cap 3", p.Connections())
			}
		}
		p.Close()
		if p.Connections() != 0 {
			t.Fatalf("%d connections after Close", p.Connections())
		}
		for i, ev := range sink.all() {
			checkEvent(t, i, ev)
		}
	})
}

func checkEvent(t *testing.T, i int, ev *eventpb.Event) {
	t.Helper()
	if ev.GetSeq() != uint64(i+1) {
		t.Fatalf("event %d has seq %d", i, ev.GetSeq())
	}
	if len(ev.GetPayload()) > 64 || int(ev.GetLength()) != len(ev.GetPayload()) {
		t.Fatalf("event %d: length %d, payload %d bytes, tsize 64", i, ev.GetLength(), len(ev.GetPayload()))
	}
	if ev.GetRequestSeq() >= ev.GetSeq() || ev.GetLatencyNs() < 0 {
		t.Fatalf("event %d pairs with request #%d, latency %d", ev.GetSeq(), ev.GetRequestSeq(), ev.GetLatencyNs())
	}
}

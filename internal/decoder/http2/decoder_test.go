package http2

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/golden"
)

// start is a clean client start: preface and SETTINGS.
func start(f *frames) {
	f.preface()
	f.ok(f.fr.WriteSettings())
}

var reqFields = []string{":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/"}

func rawPayload(ms []*Message) []byte {
	var b []byte
	for _, m := range ms {
		if m.Type == decoder.Raw {
			b = append(b, m.Payload...)
		}
	}
	return b
}

// TestHPACKTableLimit: the table may grow to MaxHPACKTable and no further.
func TestHPACKTableLimit(t *testing.T) {
	for _, size := range []uint32{8192, 8193} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := newFrames(t)
			start(f)
			f.enc.SetMaxDynamicTableSizeLimit(size)
			f.enc.SetMaxDynamicTableSize(size)
			f.headers(1, true, reqFields...)
			var counts decoder.Counts
			ms, _ := decodeAll(Client, Limits{MaxHPACKTable: 8192, Errors: &counts}, [][]byte{f.chunk()}, chunkIndex)
			last := ms[len(ms)-1]
			wantRaw := size > 8192
			if (last.Type == decoder.Raw) != wantRaw || ms[0].Incomplete != wantRaw {
				t.Errorf("size %d:\n%s", size, describe("got", ms))
			}
			if got := counts.Get(decoder.HTTP2HPACKTableTooLarge); (got == 1) != wantRaw || len(counts.Counted()) != int(got) {
				t.Errorf("size %d: counted %v", size, counts.Counted())
			}
		})
	}
}

// TestEviction: past MaxStreams open streams, the oldest is emitted
// Incomplete.
func TestEviction(t *testing.T) {
	f := newFrames(t)
	start(f)
	for _, id := range []uint32{1, 3, 5} {
		f.headers(id, false, ":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", fmt.Sprint("/", id))
	}
	f.ok(f.fr.WriteData(5, true, []byte("five")))
	f.ok(f.fr.WriteData(1, true, []byte("one, evicted")))
	var counts decoder.Counts
	ms, d := decodeAll(Client, Limits{MaxStreams: 2, Errors: &counts}, [][]byte{f.chunk()}, chunkIndex)
	want := []struct {
		id         uint32
		incomplete bool
		body       string
	}{{1, true, ""}, {5, false, "five"}, {3, true, ""}}
	if len(ms) != len(want) {
		t.Fatalf("%d messages:\n%s", len(ms), describe("got", ms))
	}
	for i, w := range want {
		if m := ms[i]; m.StreamID != w.id || m.Incomplete != w.incomplete || string(body(m)) != w.body {
			t.Errorf("message %d: stream %d incomplete %t body %q, want %+v", i, m.StreamID, m.Incomplete, body(m), w)
		}
	}
	if d.Stats().Evicted != 1 {
		t.Errorf("Evicted = %d", d.Stats().Evicted)
	}
	if got := counts.Counted(); len(got) != 1 || counts.Get(decoder.HTTP2StreamEvicted) != 1 {
		t.Errorf("counted %v, want stream_evicted once", got)
	}
}

// TestLimits: header and body limits cut messages, flag them and say how
// long they were; HPACK keeps decoding past a header cut so the next
// message, which refers to the table, is right.
func TestLimits(t *testing.T) {
	t.Run("headers", func(t *testing.T) {
		f := newFrames(t)
		start(f)
		big := append([]string(nil), reqFields...)
		for i := range 20 {
			big = append(big, fmt.Sprintf("x-h%d", i), strings.Repeat("v", 100))
		}
		f.headers(1, true, big...)
		f.headers(3, true, append(append([]string(nil), reqFields...), "x-h19", strings.Repeat("v", 100))...)
		ms, _ := decodeAll(Client, Limits{MaxHeaderBytes: 1024}, [][]byte{f.chunk()}, chunkIndex)
		if len(ms) != 2 {
			t.Fatalf("%d messages", len(ms))
		}
		if !ms[0].Truncated || field(ms[0], "x-h19") != "" || field(ms[0], "x-h0") == "" {
			t.Errorf("cut request:\n%s", describe("got", ms[:1]))
		}
		if ms[1].Truncated || field(ms[1], "x-h19") != strings.Repeat("v", 100) {
			t.Errorf("next request:\n%s", describe("got", ms[1:]))
		}
	})
	t.Run("body", func(t *testing.T) {
		f := newFrames(t)
		start(f)
		f.headers(1, false, reqFields...)
		f.ok(f.fr.WriteData(1, false, []byte("0123456789")))
		f.ok(f.fr.WriteData(1, true, []byte("abcdefghij")))
		ms, _ := decodeAll(Client, Limits{MaxBodyBytes: 15}, [][]byte{f.chunk()}, chunkIndex)
		m := ms[0]
		if !m.Truncated || string(body(m)) != "0123456789abcde" || field(m, "Content-Length") != "15" ||
			m.OriginalLength != uint64(len(m.Payload)+5) {
			t.Errorf("got:\n%s", describe("got", ms))
		}
	})
	t.Run("decoded body", func(t *testing.T) {
		f := newFrames(t)
		start(f)
		f.headers(1, false, append(append([]string(nil), reqFields...), "content-encoding", "gzip")...)
		f.ok(f.fr.WriteData(1, true, encode("gzip", []byte(lorem))))
		// The decoded length is counted up to 4 times the limit.
		ms, _ := decodeAll(Client, Limits{MaxBodyBytes: 4000}, [][]byte{f.chunk()}, chunkIndex)
		m := ms[0]
		if !m.Truncated || string(body(m)) != lorem[:4000] || m.ContentEncoding != "gzip" ||
			m.OriginalLength != uint64(len(m.Payload)-4000+len(lorem)) {
			t.Errorf("got:\n%s", describe("got", ms))
		}
	})
	t.Run("corrupt encoding", func(t *testing.T) {
		f := newFrames(t)
		start(f)
		f.headers(1, false, append(append([]string(nil), reqFields...), "content-encoding", "gzip")...)
		f.ok(f.fr.WriteData(1, true, []byte("not gzip at all")))
		ms, _ := decodeAll(Client, Limits{}, [][]byte{f.chunk()}, chunkIndex)
		m := ms[0]
		if m.ContentEncoding != "" || field(m, "content-encoding") != "gzip" || string(body(m)) != "not gzip at all" {
			t.Errorf("got:\n%s", describe("got", ms))
		}
	})
	t.Run("endless continuation", func(t *testing.T) {
		f := newFrames(t)
		start(f)
		f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: f.block(reqFields...)}))
		var field []byte
		for i := range 5000 {
			// Literal fields without indexing: every one is new.
			field = field[:0]
			field = append(field, 0x00, 0x06)
			field = fmt.Appendf(field, "x-%04d", i)
			field = append(field, 0x40)
			field = append(field, bytes.Repeat([]byte{'v'}, 64)...)
			f.ok(f.fr.WriteContinuation(1, i == 4999, field))
		}
		f.ok(f.fr.WriteData(1, true, nil))
		ms, _ := decodeAll(Client, Limits{MaxHeaderBytes: 4096}, [][]byte{f.chunk()}, chunkIndex)
		if len(ms) != 1 || !ms[0].Truncated || ms[0].Incomplete || len(ms[0].Payload) > 4096 {
			t.Errorf("got %d messages:\n%s", len(ms), describe("got", ms))
		}
	})
	t.Run("resync buffer", func(t *testing.T) {
		// Bytes that never align stay within MaxBufferBytes, then go raw.
		d := newDecoder(Client, Limits{MaxBufferBytes: 4096})
		var ms []*Message
		junk := bytes.Repeat([]byte("no frames here "), 100)
		for range 10 {
			d.Feed(1, junk, func(m *Message) { ms = append(ms, m) })
			if len(d.pend.buf) > 4096+len(junk) {
				t.Fatalf("buffered %d bytes", len(d.pend.buf))
			}
		}
		d.Flush(2, decoder.Close, func(m *Message) { ms = append(ms, m) })
		if !bytes.Equal(rawPayload(ms), bytes.Repeat(junk, 10)) || d.mode != modeRaw {
			t.Errorf("raw %d bytes, mode %d", len(rawPayload(ms)), d.mode)
		}
	})
}

// TestGapHPACK: after lost bytes a header block that refers to table entries
// the decoder never saw comes out Incomplete, never with wrong fields, and
// blocks that only use entries added since decode right.
func TestGapHPACK(t *testing.T) {
	f := newFrames(t)
	start(f)
	f.headers(1, true, append(append([]string(nil), reqFields...), "x-a", "1")...)
	before := f.chunk()
	f.headers(3, false, append(append([]string(nil), reqFields...), "x-b", "2")...)
	f.ok(f.fr.WriteData(3, true, []byte("lost body")))
	lost := f.chunk()
	f.headers(5, true, append(append([]string(nil), reqFields...), "x-a", "1", "x-b", "2")...)
	refersLost := f.chunk()
	f.headers(7, true, ":method", "POST", ":scheme", "https", ":authority", "new.example", ":path", "/new", "x-c", "3")
	fresh := f.chunk()
	f.headers(9, true, ":method", "POST", ":scheme", "https", ":authority", "new.example", ":path", "/new", "x-c", "3")
	refersFresh := f.chunk()

	headersLen := frameHeaderLen + int(parseFrameHeader(lost).length)
	// Lose all of stream 3, part of its HEADERS frame's header, or its
	// body only, leaving it in flight.
	for _, cut := range []int{0, 5, headersLen + 3} {
		t.Run(fmt.Sprint("cut ", cut), func(t *testing.T) {
			var counts decoder.Counts
			d := newDecoder(Client, Limits{Errors: &counts})
			var ms []*Message
			emit := func(m *Message) { ms = append(ms, m) }
			d.Feed(1, before, emit)
			// The bytes of lost after cut arrive after the gap: the
			// decoder has to find the frame boundary again.
			d.Feed(2, lost[:cut], emit)
			d.Gap(uint64(len(lost) - cut))
			d.Feed(3, refersLost, emit)
			d.Feed(4, fresh, emit)
			d.Feed(5, refersFresh, emit)
			d.Flush(6, decoder.Close, emit)

			var http []*Message
			for _, m := range ms {
				if m.Type != decoder.Raw && m.StreamID != 3 {
					http = append(http, m)
				}
			}
			if len(http) != 4 {
				t.Fatalf("got:\n%s", describe("got", ms))
			}
			if http[0].StreamID != 1 || http[0].Incomplete || field(http[0], "x-a") != "1" {
				t.Errorf("before the gap:\n%s", describe("got", http[:1]))
			}
			if http[1].StreamID != 5 || !http[1].Incomplete || field(http[1], "x-b") != "" {
				t.Errorf("referring to lost entries:\n%s", describe("got", http[1:2]))
			}
			for _, m := range http[2:] {
				if m.Incomplete || m.Host != "new.example" || m.Method != "POST" || field(m, "x-c") != "3" {
					t.Errorf("after the gap:\n%s", describe("got", []*Message{m}))
				}
			}
			// Stream 3, in flight at the gap, is emitted Incomplete on
			// close; with its HEADERS cut it never started.
			last := ms[len(ms)-1]
			if inFlight := cut > headersLen; inFlight != (last.StreamID == 3) || last.StreamID == 3 && !last.Incomplete {
				t.Errorf("stream in flight at the gap:\n%s", describe("got", ms))
			}
			if d.Stats().HPACKFailures != 1 || d.Stats().Gaps != 1 || d.Stats().Resyncs != 1 {
				t.Errorf("stats %+v", d.Stats())
			}
			if got := counts.Counted(); len(got) != 1 || counts.Get(decoder.HTTP2HPACKLostEntry) != 1 {
				t.Errorf("counted %v, want hpack_lost_entry once", got)
			}
		})
	}
}

// TestHonestAfterLoss cuts real captures at random places, as a capture
// that starts late or loses bytes would, and checks that every message the
// decoder calls complete is exactly the one decoded from all the bytes.
func TestHonestAfterLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for name, cp := range captures(t) {
		for _, side := range []Side{Client, Server} {
			t.Run(name+"/"+side.String(), func(t *testing.T) {
				all, _ := decodeAll(side, Limits{}, cp.side(side), chunkIndex)
				want := map[spanKey]*Message{}
				for _, m := range all {
					want[spanKey{m.StreamID, IsPushPromise(m)}] = m
				}
				chunks := cp.side(side)
				tries := 40
				if len(flat(chunks)) > 64<<10 {
					tries = 5 // the large capture: slow under -race
				}
				for range tries {
					// Drop a run of whole chunks, then part of the next:
					// losses on and off frame boundaries.
					from := r.IntN(len(chunks))
					to := from + r.IntN(min(3, len(chunks)-from))
					var part [][]byte
					part = append(part, chunks[:from]...)
					lostBytes := 0
					for _, c := range chunks[from:to] {
						lostBytes += len(c)
					}
					tail := chunks[to:]
					d := newDecoder(side, Limits{})
					var got []*Message
					emit := func(m *Message) { got = append(got, m) }
					for i, c := range part {
						d.Feed(int64(i), c, emit)
					}
					if len(tail) > 0 && r.IntN(2) == 0 {
						skip := r.IntN(len(tail[0]))
						lostBytes += skip
						tail = append([][]byte{tail[0][skip:]}, tail[1:]...)
					}
					d.Gap(uint64(lostBytes))
					for i, c := range tail {
						d.Feed(int64(100+i), c, emit)
					}
					d.Flush(1000, decoder.Close, emit)
					for _, m := range got {
						if m.Type == decoder.Raw {
							continue
						}
						w := want[spanKey{m.StreamID, IsPushPromise(m)}]
						if m.Incomplete {
							if err := partOf(m, w); err != nil {
								t.Fatalf("lost chunks [%d,%d): %v:\n%s\nwant\n%s", from, to, err,
									describe("got", []*Message{m}), describe("want", []*Message{w}))
							}
							continue
						}
						if w == nil || !sameMessage(m, w) {
							t.Fatalf("lost chunks [%d,%d): complete message differs:\n%s\nwant\n%s",
								from, to, describe("got", []*Message{m}), describe("want", []*Message{w}))
						}
					}
				}
			})
		}
	}
}

// TestMidConnection: a decoder made after the start (no preface, no first
// SETTINGS) finds the frames and decodes what it can decode honestly.
func TestMidConnection(t *testing.T) {
	cp := captures(t)["hpack-reuse"]
	for _, side := range []Side{Client, Server} {
		all, _ := decodeAll(side, Limits{}, cp.side(side), chunkIndex)
		chunks := cp.side(side)
		mid := len(chunks) / 2
		got, d := decodeAll(side, Limits{}, chunks[mid:], chunkIndex)
		complete := 0
		for _, m := range got {
			if m.Type == decoder.Raw {
				t.Errorf("%s: raw message %q", side, m.Payload)
				continue
			}
			var w *Message
			for _, a := range all {
				if a.StreamID == m.StreamID {
					w = a
				}
			}
			if m.Incomplete {
				if err := partOf(m, w); err != nil {
					t.Errorf("%s: stream %d: %v", side, m.StreamID, err)
				}
				continue
			}
			complete++
			if w == nil || !sameMessage(m, w) {
				t.Errorf("%s: stream %d differs:\n%s", side, m.StreamID, describe("got", []*Message{m}))
			}
		}
		// The fields repeated on every request refer to the table: those
		// requests cannot be decoded, but no wrong one may be emitted.
		t.Logf("%s: %d of %d complete, stats %+v", side, complete, len(got), d.Stats())
		if d.Stats().Resyncs != 1 || !d.tainted {
			t.Errorf("%s: stats %+v", side, d.Stats())
		}
	}
}

// TestPushPromiseMarked: a push request is recognisable.
func TestPushPromiseMarked(t *testing.T) {
	ms, _ := decodeAll(Server, Limits{}, pushCapture(t).Server, chunkIndex)
	var push []*Message
	for _, m := range ms {
		if IsPushPromise(m) {
			push = append(push, m)
		}
	}
	if len(push) != 1 || push[0].StreamID != 2 || push[0].Path != "/style.css" || push[0].Type != decoder.HTTP2Request {
		t.Fatalf("push requests:\n%s", describe("push", push))
	}
	for _, m := range ms {
		if m.Type == decoder.HTTP2Response && IsPushPromise(m) {
			t.Errorf("response marked as push")
		}
	}
}

// partOf checks that what an Incomplete message says is true of the
// message w decoded from all the bytes: its metadata, when set, and every
// field line of its head. Body-related lines are left out: the body of an
// incomplete message has holes.
func partOf(m, w *Message) error {
	if w == nil {
		return nil // the stream never completed in the full decode either
	}
	switch {
	case m.Method != "" && m.Method != w.Method,
		m.Path != "" && m.Path != w.Path,
		m.Host != "" && m.Host != w.Host,
		m.Status != 0 && m.Status != w.Status:
		return fmt.Errorf("metadata differs")
	}
	mh, _ := finalHead(m)
	wh, _ := finalHead(w)
	want := map[string]bool{}
	for _, l := range strings.Split(wh, "\r\n")[1:] {
		want[l] = true
	}
	for _, l := range strings.Split(mh, "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(name) {
		case "content-length", "content-encoding":
			continue
		}
		if !want[l] {
			return fmt.Errorf("field %q is not in the message", l)
		}
	}
	return nil
}

// TestPair: a reset sent by one side ends the stream on the other.
func TestPair(t *testing.T) {
	cl, sv := newFrames(t), newFrames(t)
	start(cl)
	cl.headers(1, true, reqFields...)
	cl.headers(3, false, append([]string{":method", "PUT"}, reqFields[2:]...)...)
	cl.ok(cl.fr.WriteData(3, false, []byte("upload")))
	reqs := cl.chunk()
	cl.ok(cl.fr.WriteRSTStream(1, http2.ErrCodeCancel))
	cancel := cl.chunk()

	sv.ok(sv.fr.WriteSettings())
	sv.headers(1, false, ":status", "200")
	sv.ok(sv.fr.WriteData(1, false, []byte("first part")))
	resp := sv.chunk()
	sv.ok(sv.fr.WriteRSTStream(3, http2.ErrCodeRefusedStream))
	refuse := sv.chunk()
	sv.ok(sv.fr.WriteData(1, false, []byte("in flight after the reset")))
	sv.ok(sv.fr.WritePing(false, [8]byte{}))
	late := sv.chunk()

	c, s := New(Client, Limits{}), New(Server, Limits{})
	Pair(c, s)
	var got []*Message
	emit := func(m *Message) { got = append(got, m) }
	c.Feed(1, reqs, emit)
	s.Feed(2, resp, emit)
	c.Feed(3, cancel, emit) // ends the response
	s.Feed(4, refuse, emit) // ends the upload, emits the response
	s.Feed(5, late, emit)   // ignored: the stream is gone
	c.Flush(6, decoder.Close, emit)
	s.Flush(6, decoder.Close, emit)

	want := []struct {
		typ        decoder.Type
		id         uint32
		end        int64
		incomplete bool
		body       string
	}{
		{decoder.HTTP2Request, 1, 1, false, ""},
		{decoder.HTTP2Response, 1, 3, true, "first part"},
		{decoder.HTTP2Request, 3, 4, true, "upload"},
	}
	if len(got) != len(want) {
		t.Fatalf("got:\n%s", describe("got", got))
	}
	for i, w := range want {
		m := got[i]
		if m.Type != w.typ || m.StreamID != w.id || m.End != w.end || m.Incomplete != w.incomplete || string(body(m)) != w.body {
			t.Errorf("message %d: got\n%s want %+v", i, describe("got", got[i:i+1]), w)
		}
	}
}

// TestFailureReasons: failures TestFramingError (client side) does not
// reach are counted under their names: a server's bad PUSH_PROMISE, a
// resynchronisation that never finds a frame boundary, a body whose
// content coding does not decode.
func TestFailureReasons(t *testing.T) {
	tests := []struct {
		name   string
		side   Side
		lim    Limits
		chunks func(f *frames) [][]byte
		want   decoder.Reason
	}{
		{"push promise of odd stream", Server, Limits{}, func(f *frames) [][]byte {
			f.ok(f.fr.WriteSettings())
			f.ok(f.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 3, EndHeaders: true, BlockFragment: f.block(reqFields...)}))
			return [][]byte{f.chunk()}
		}, decoder.HTTP2FramePushPromiseStreamInvalid},
		{"no frame boundary mid-connection", Client, Limits{MaxBufferBytes: 4096}, func(f *frames) [][]byte {
			return [][]byte{bytes.Repeat([]byte{0xff}, 3000), bytes.Repeat([]byte{0xff}, 3000)}
		}, decoder.HTTP2ResyncBufferFull},
		{"corrupt gzip body", Server, Limits{}, func(f *frames) [][]byte {
			f.ok(f.fr.WriteSettings())
			f.headers(1, false, ":status", "200", "content-encoding", "gzip")
			f.ok(f.fr.WriteData(1, true, []byte("not gzip at all")))
			return [][]byte{f.chunk()}
		}, decoder.ContentCorrupt},
		{"unknown content coding", Server, Limits{}, func(f *frames) [][]byte {
			f.ok(f.fr.WriteSettings())
			f.headers(1, false, ":status", "200", "content-encoding", "compress")
			f.ok(f.fr.WriteData(1, true, []byte("LZW")))
			return [][]byte{f.chunk()}
		}, decoder.ContentCodingUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var counts decoder.Counts
			tt.lim.Errors = &counts
			ms, _ := decodeAll(tt.side, tt.lim, tt.chunks(newFrames(t)), chunkIndex)
			if got := counts.Counted(); len(got) != 1 || got[0] != tt.want || counts.Get(tt.want) != 1 {
				t.Errorf("counted %v, want %s once; messages:\n%s", got, tt.want, describe("got", ms))
			}
		})
	}
}

// recordOnce re-records the captures, once per run, when the tests run
// with -update.
var recordOnce sync.Once

// maxSeed keeps fuzz seeds small; the large capture contributes its head.
const maxSeed = 16 << 10

// recordAll rewrites the checked-in captures and fuzz seeds. The live
// scenarios' captures differ run to run (ports, stream interleaving), which
// is why they are recorded once and checked in rather than made per run.
func recordAll(t *testing.T) {
	all := map[string]*capture{}
	for _, sc := range scenarios {
		all[sc.name] = record(t, sc.handler, func(c *http.Client, base string) { sc.run(t, c, base) })
	}
	for _, cr := range crafted {
		all[cr.name] = cr.make(t)
	}
	for _, tl := range tools(t) {
		all[tl.name], _ = recordTool(t, tl.args)
	}
	all["nghttp-push"], _ = recordTool(t, func(base string) []string { return []string{"nghttp", "-n", base + "/page"} })
	for name, cp := range all {
		if err := writeCapture(filepath.Join("testdata", name+".h2c"), cp); err != nil {
			t.Fatal(err)
		}
		for _, side := range []Side{Client, Server} {
			b := flat(cp.side(side))
			b = b[:min(len(b), maxSeed)]
			dir := filepath.Join("testdata", "fuzz", "Fuzz"+strings.ToUpper(side.String()[:1])+side.String()[1:])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), golden.FuzzSeed(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func captures(t *testing.T) map[string]*capture {
	t.Helper()
	if *golden.Update {
		recordOnce.Do(func() { recordAll(t) })
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.h2c"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures (%v); run go test -run TestGolden -update", err)
	}
	out := map[string]*capture{}
	for _, f := range files {
		cp, err := readCapture(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".h2c")] = cp
	}
	return out
}

// TestGolden decodes each capture as it was chunked and compares every
// field of every message with its testdata/NAME.golden.
func TestGolden(t *testing.T) {
	for name, cp := range captures(t) {
		t.Run(name, func(t *testing.T) {
			cl, _ := decodeAll(Client, Limits{}, cp.Client, chunkIndex)
			sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
			golden.Check(t, filepath.Join("testdata", name+".golden"), []byte(describe("client", cl)+describe("server", sv)))
		})
	}
}

// TestChunking feeds each side cut in other ways (whole, every two-way cut
// for small captures, one byte at a time, random sizes) and expects the
// same messages as with the original chunks.
func TestChunking(t *testing.T) {
	for name, cp := range captures(t) {
		for _, side := range []Side{Client, Server} {
			t.Run(name+"/"+side.String(), func(t *testing.T) {
				want, _ := decodeAll(side, Limits{}, cp.side(side), chunkIndex)
				b := flat(cp.side(side))
				ways := map[string][][]byte{"whole": {b}}
				if len(b) <= 64<<10 {
					ways["bytewise"] = split(b, 1)
				}
				r := rand.New(rand.NewPCG(uint64(len(b)), 1))
				var random [][]byte
				for rest := b; len(rest) > 0; {
					n := min(len(rest), 1+r.IntN(3000))
					random, rest = append(random, rest[:n]), rest[n:]
				}
				ways["random"] = random
				if len(b) <= 4<<10 {
					for i := 1; i < len(b); i++ {
						ways[fmt.Sprintf("cut-%d", i)] = [][]byte{b[:i], b[i:]}
					}
				}
				for way, chunks := range ways {
					got, _ := decodeAll(side, Limits{}, chunks, chunkIndex)
					if len(got) != len(want) {
						t.Fatalf("%s: %d messages, want %d", way, len(got), len(want))
					}
					for i := range got {
						if !sameMessage(got[i], want[i]) {
							t.Fatalf("%s: message %d differs:\n%s\nwant\n%s", way, i, describe("got", got[i:i+1]), describe("want", want[i:i+1]))
						}
					}
				}
			})
		}
	}
}

// span is where a stream's message starts and ends in the byte stream, by
// an independent parse with x/net/http2's Framer.
type span struct{ start, end int64 }

// spanKey tells a pushed request from the response on the same stream.
type spanKey struct {
	id      uint32
	promise bool
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func spans(t *testing.T, b []byte, side Side) map[spanKey]span {
	off := int64(0)
	if side == Client && bytes.HasPrefix(b, []byte(clientPreface)) {
		off = int64(len(clientPreface))
	}
	cr := &countReader{r: bytes.NewReader(b[off:]), n: off}
	fr := http2.NewFramer(nil, cr)
	fr.SetMaxReadFrameSize(maxFrameSize)
	out := map[spanKey]span{}
	var blockFor spanKey // message that ends with the open header block
	for {
		start := cr.n
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("framer: %v", err)
		}
		h := f.Header()
		end := cr.n - 1
		first := func(k spanKey) {
			if _, ok := out[k]; !ok {
				out[k] = span{start: start, end: -1}
			}
		}
		ended := func(k spanKey) {
			s := out[k]
			s.end = end
			out[k] = s
		}
		stream := spanKey{id: h.StreamID}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			first(stream)
			blockFor = spanKey{}
			if f.StreamEnded() {
				blockFor = stream
			}
			if f.HeadersEnded() && blockFor.id != 0 {
				ended(blockFor)
			}
		case *http2.PushPromiseFrame:
			blockFor = spanKey{id: f.PromiseID, promise: true}
			first(blockFor)
			if f.HeadersEnded() {
				ended(blockFor)
			}
		case *http2.ContinuationFrame:
			if f.HeadersEnded() && blockFor.id != 0 {
				ended(blockFor)
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended(stream)
			}
		case *http2.RSTStreamFrame:
			ended(stream)
		}
	}
}

// TestTimestamps feeds one byte at a time, each stamped with its offset:
// Start must be the first byte of the stream's first HEADERS (or
// PUSH_PROMISE) frame and End the last byte of the frame that ended it.
func TestTimestamps(t *testing.T) {
	for name, cp := range captures(t) {
		for _, side := range []Side{Client, Server} {
			b := flat(cp.side(side))
			if len(b) > 256<<10 {
				continue
			}
			t.Run(name+"/"+side.String(), func(t *testing.T) {
				want := spans(t, b, side)
				got, _ := decodeAll(side, Limits{}, split(b, 1), func(i int) int64 { return int64(i) })
				for _, m := range got {
					if m.Type == decoder.Raw {
						t.Fatalf("raw message %q", m.Payload)
					}
					w, ok := want[spanKey{m.StreamID, IsPushPromise(m)}]
					if !ok {
						t.Fatalf("stream %d: not in the frame parse", m.StreamID)
					}
					if m.Start != w.start {
						t.Errorf("stream %d: start %d, want %d", m.StreamID, m.Start, w.start)
					}
					if w.end >= 0 && m.End != w.end {
						t.Errorf("stream %d: end %d, want %d", m.StreamID, m.End, w.end)
					}
					if w.end < 0 && !m.Incomplete {
						t.Errorf("stream %d: never ended but complete", m.StreamID)
					}
				}
			})
		}
	}
}

// The seed corpora in testdata/fuzz/FuzzClient and FuzzServer are the
// captures of real connections (see recordAll).

func FuzzClient(f *testing.F) { fuzzSide(f, Client) }
func FuzzServer(f *testing.F) { fuzzSide(f, Server) }

// fuzzLimits are small so the fuzzer reaches every limit.
var fuzzLimits = Limits{
	MaxHeaderBytes: 2048,
	MaxBodyBytes:   4096,
	MaxBufferBytes: 8192,
	MaxStreams:     4,
	MaxHPACKTable:  4096,
	RawFlushBytes:  1024,
}

func fuzzSide(f *testing.F, side Side) {
	f.Add([]byte(clientPreface))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, _ := decodeAll(side, fuzzLimits, [][]byte{data}, chunkIndex)
		for _, m := range whole {
			if m.Type == decoder.Raw {
				continue
			}
			// A rendered head is bounded by MaxHeaderBytes (each field
			// costs 32 bytes more there than here), plus the lines the
			// rendering adds.
			if bound := fuzzLimits.MaxHeaderBytes + fuzzLimits.MaxBodyBytes + 128; len(m.Payload) > bound {
				t.Fatalf("payload of %d bytes, bound %d", len(m.Payload), bound)
			}
		}

		// From a clean start the messages do not depend on how the bytes
		// were cut, except where the raw decoder takes over.
		clean := bytes.HasPrefix(data, []byte(clientPreface))
		if side == Server {
			match, more := IsServerStart(data[:min(len(data), frameHeaderLen)])
			clean = len(data) >= frameHeaderLen && (match || more)
		}
		if clean {
			for _, n := range []int{1, 7, len(data)/3 + 1} {
				got, _ := decodeAll(side, fuzzLimits, split(data, n), chunkIndex)
				w, g := nonRaw(whole), nonRaw(got)
				if len(w) != len(g) {
					t.Fatalf("pieces of %d: %d messages, whole: %d", n, len(g), len(w))
				}
				for i := range w {
					if !sameMessage(w[i], g[i]) {
						t.Fatalf("pieces of %d: message %d differs:\n%s\n%s", n, i, describe("whole", w[i:i+1]), describe("pieces", g[i:i+1]))
					}
				}
			}
		}

		// Losses anywhere must not hurt either.
		d := newDecoder(side, fuzzLimits)
		emit := func(*Message) {}
		half := len(data) / 2
		d.Feed(1, data[:half], emit)
		d.Gap(13)
		d.Feed(2, data[half:], emit)
		d.Gap(1)
		d.Feed(3, data[half/2:], emit)
		d.Flush(4, decoder.Close, emit)
		if len(d.pend.buf) != 0 || len(d.open) != 0 {
			t.Fatalf("state left after close: %d buffered, %d streams", len(d.pend.buf), len(d.open))
		}
	})
}

func nonRaw(ms []*Message) []*Message {
	var out []*Message
	for _, m := range ms {
		if m.Type != decoder.Raw {
			out = append(out, m)
		}
	}
	return out
}

// scenario is one connection between real HTTP/2 implementations: what the
// server does, what the client asks, and what the decoders must make of the
// bytes.
type scenario struct {
	name    string
	handler http.HandlerFunc
	run     func(t testing.TB, c *http.Client, base string)
	// check gets the messages of the client and server sides.
	check func(t *testing.T, cl, sv []*Message)
}

// do sends one request and reads the whole response. Errors fail the test
// with t.Error, which, unlike t.Fatal, is safe from any goroutine.
func do(t testing.TB, c *http.Client, method, url string, body io.Reader, edit func(*http.Request)) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Error(err)
		return nil
	}
	if edit != nil {
		edit(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return b
}

func get(t testing.TB, c *http.Client, url string) []byte {
	t.Helper()
	return do(t, c, "GET", url, nil, nil)
}

// randBytes is reproducible incompressible data.
func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var lorem = strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 200)

// encode compresses p; writes to a bytes.Buffer cannot fail.
func encode(coding string, p []byte) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "br":
		w = brotli.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "zstd":
		w, _ = zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	default:
		panic("coding " + coding)
	}
	w.Write(p)
	w.Close()
	return b.Bytes()
}

func wantCount(t *testing.T, what string, ms []*Message, n int) {
	t.Helper()
	if len(ms) != n {
		t.Fatalf("%s: %d messages, want %d:\n%s", what, len(ms), n, describe(what, ms))
	}
}

func wantComplete(t *testing.T, ms []*Message) {
	t.Helper()
	for _, m := range ms {
		if m.Incomplete || m.Truncated || m.Type == decoder.Raw {
			t.Errorf("stream %d: %s incomplete=%t truncated=%t", m.StreamID, m.Type, m.Incomplete, m.Truncated)
		}
	}
}

var scenarios = []scenario{
	{
		name: "simple",
		handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello, world\n")
		},
		run: func(t testing.TB, c *http.Client, base string) {
			get(t, c, base+"/hello?x=1")
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 1)
			wantCount(t, "server", sv, 1)
			wantComplete(t, cl)
			wantComplete(t, sv)
			req, resp := cl[0], sv[0]
			if req.Type != decoder.HTTP2Request || req.Method != "GET" || req.Path != "/hello?x=1" || req.StreamID != 1 ||
				!strings.HasPrefix(req.Host, "127.0.0.1:") {
				t.Errorf("request %+v", req)
			}
			wantHead := "GET /hello?x=1 HTTP/2\r\nHost: " + req.Host + "\r\n"
			if !bytes.HasPrefix(req.Payload, []byte(wantHead)) || !bytes.HasSuffix(req.Payload, []byte("Content-Length: 0\r\n\r\n")) {
				t.Errorf("request payload %q", req.Payload)
			}
			if resp.Type != decoder.HTTP2Response || resp.Status != 200 || resp.StreamID != 1 ||
				resp.ContentType != "text/plain; charset=utf-8" || string(body(resp)) != "hello, world\n" {
				t.Errorf("response %+v %q", resp, resp.Payload)
			}
			if !bytes.HasPrefix(resp.Payload, []byte("HTTP/2 200\r\n")) || field(resp, "Content-Length") != "13" {
				t.Errorf("response payload %q", resp.Payload)
			}
		},
	},
	{
		name: "concurrent",
		handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s got %d bytes: %s", r.Method, r.URL.Path, len(b), strings.Repeat(r.URL.Path, 50))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			// Open the connection first, or the concurrent requests
			// may each dial one.
			get(t, c, base+"/item/0")
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					url := fmt.Sprintf("%s/item/%d", base, i)
					if i%2 == 0 {
						get(t, c, url)
						return
					}
					do(t, c, "POST", url, strings.NewReader(strings.Repeat(strconv.Itoa(i), 100*i)), nil)
				})
			}
			wg.Wait()
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 17)
			wantCount(t, "server", sv, 17)
			wantComplete(t, cl)
			wantComplete(t, sv)
			paths := map[uint32]*Message{}
			for _, m := range cl {
				var i int
				if _, err := fmt.Sscanf(m.Path, "/item/%d", &i); err != nil {
					t.Fatalf("path %q", m.Path)
				}
				want, method := "", "GET"
				if i%2 == 1 {
					want, method = strings.Repeat(strconv.Itoa(i), 100*i), "POST"
				}
				if m.Method != method || string(body(m)) != want {
					t.Errorf("%s %s: body %q", m.Method, m.Path, body(m))
				}
				paths[m.StreamID] = m
			}
			for _, m := range sv {
				req := paths[m.StreamID]
				if req == nil {
					t.Fatalf("response on stream %d without request", m.StreamID)
				}
				want := fmt.Sprintf("%s %s got %d bytes: %s", req.Method, req.Path, len(body(req)), strings.Repeat(req.Path, 50))
				if string(body(m)) != want || m.Status != 200 {
					t.Errorf("stream %d: response %q", m.StreamID, body(m))
				}
			}
		},
	},
	{
		name: "large",
		handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if !bytes.Equal(b, randBytes(256<<10, 1)) {
				http.Error(w, "bad upload", 400)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(randBytes(512<<10, 2))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			do(t, c, "POST", base+"/upload", bytes.NewReader(randBytes(256<<10, 1)), nil)
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 1)
			wantCount(t, "server", sv, 1)
			wantComplete(t, cl)
			wantComplete(t, sv)
			if !bytes.Equal(body(cl[0]), randBytes(256<<10, 1)) || field(cl[0], "Content-Length") != strconv.Itoa(256<<10) {
				t.Errorf("request body differs (%d bytes)", len(body(cl[0])))
			}
			if !bytes.Equal(body(sv[0]), randBytes(512<<10, 2)) || sv[0].ContentType != "application/octet-stream" {
				t.Errorf("response body differs (%d bytes)", len(body(sv[0])))
			}
		},
	},
	{
		name: "encodings",
		handler: func(w http.ResponseWriter, r *http.Request) {
			coding := strings.TrimPrefix(r.URL.Path, "/")
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", coding)
			w.Write(encode(coding, []byte(lorem)))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			for _, coding := range []string{"gzip", "br", "zstd", "deflate"} {
				get(t, c, base+"/"+coding)
			}
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "server", sv, 4)
			wantComplete(t, sv)
			for i, coding := range []string{"gzip", "br", "zstd", "deflate"} {
				m := sv[i]
				if m.ContentEncoding != coding || string(body(m)) != lorem || field(m, "Content-Encoding") != "" ||
					field(m, "Content-Length") != strconv.Itoa(len(lorem)) {
					t.Errorf("%s: encoding %q body %d bytes head %q", coding, m.ContentEncoding, len(body(m)), m.Payload[:min(200, len(m.Payload))])
				}
			}
		},
	},
	{
		name: "trailers",
		handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Checksum")
			w.Write(b)
			w.Header().Set("X-Checksum", strconv.Itoa(len(b))+"-"+r.Trailer.Get("X-Req-Trailer"))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			// A body of unknown length, so the trailers follow it.
			do(t, c, "POST", base+"/trailers", io.MultiReader(strings.NewReader("chunk one;"), strings.NewReader("chunk two")),
				func(r *http.Request) { r.Trailer = http.Header{"X-Req-Trailer": {"req-value"}} })
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 1)
			wantCount(t, "server", sv, 1)
			wantComplete(t, cl)
			wantComplete(t, sv)
			if field(cl[0], "X-Req-Trailer") != "req-value" || string(body(cl[0])) != "chunk one;chunk two" {
				t.Errorf("request %q", cl[0].Payload)
			}
			if field(sv[0], "X-Checksum") != "19-req-value" || string(body(sv[0])) != "chunk one;chunk two" {
				t.Errorf("response %q", sv[0].Payload)
			}
		},
	},
	{
		name: "reset",
		handler: func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/abort":
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // the server resets the stream
			case "/slow":
				b := make([]byte, 4)
				io.ReadFull(r.Body, b)
				w.WriteHeader(202)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			default:
				io.WriteString(w, "ok")
			}
		},
		run: func(t testing.TB, c *http.Client, base string) {
			if resp, err := c.Get(base + "/abort"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			// The client resets a request whose body is still coming.
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			go pw.Write([]byte("part"))
			req, err := http.NewRequestWithContext(ctx, "PUT", base+"/slow", pr)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			resp.Body.Close()
			pw.Close()
			// One more exchange so the reset is on the wire before the
			// connection closes.
			get(t, c, base+"/ok")
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 3)
			wantCount(t, "server", sv, 3)
			for _, m := range cl {
				switch m.StreamID {
				case 1:
					if m.Incomplete || m.Method != "GET" || m.Path != "/abort" {
						t.Errorf("request %+v", m)
					}
				case 3:
					if !m.Incomplete || m.Method != "PUT" || string(body(m)) != "part" {
						t.Errorf("reset request %+v %q", m, m.Payload)
					}
				case 5:
					if m.Incomplete || m.Path != "/ok" {
						t.Errorf("request %+v", m)
					}
				}
			}
			for _, m := range sv {
				switch m.StreamID {
				case 1:
					if !m.Incomplete || m.Status != 200 || string(body(m)) != "partial" {
						t.Errorf("aborted response %+v %q", m, m.Payload)
					}
				case 3:
					// Reset by the client, which this side never sees.
					if !m.Incomplete || m.Status != 202 {
						t.Errorf("slow response %+v", m)
					}
				case 5:
					if m.Incomplete || string(body(m)) != "ok" {
						t.Errorf("response %+v", m)
					}
				}
			}
		},
	},
	{
		name: "early-hints",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(200)
			io.WriteString(w, "<html></html>")
		},
		run: func(t testing.TB, c *http.Client, base string) {
			get(t, c, base+"/page")
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "server", sv, 1)
			wantComplete(t, sv)
			m := sv[0]
			want := "HTTP/2 103\r\nlink: </style.css>; rel=preload; as=style\r\n\r\nHTTP/2 200\r\n"
			if !bytes.HasPrefix(m.Payload, []byte(want)) || m.Status != 200 || m.ContentType != "text/html" ||
				string(body(m)) != "<html></html>" {
				t.Errorf("response %+v %q", m, m.Payload)
			}
		},
	},
	{
		name: "hpack-reuse",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request", r.URL.Path)
			w.Header().Set("Cache-Control", "private, max-age=0")
			io.WriteString(w, r.Header.Get("X-Session"))
		},
		run: func(t testing.TB, c *http.Client, base string) {
			for i := range 40 {
				do(t, c, "GET", fmt.Sprintf("%s/r/%d", base, i), nil, func(r *http.Request) {
					r.Header.Set("X-Session", "session-token-0123456789abcdef0123456789abcdef")
					r.Header.Set("Cookie", "a=1; b=2; c="+strings.Repeat("z", 100))
					r.Header.Set("X-Seq", strconv.Itoa(i))
				})
			}
		},
		check: func(t *testing.T, cl, sv []*Message) {
			wantCount(t, "client", cl, 40)
			wantCount(t, "server", sv, 40)
			wantComplete(t, cl)
			wantComplete(t, sv)
			for i, m := range cl {
				if m.Path != fmt.Sprintf("/r/%d", i) || field(m, "x-session") != "session-token-0123456789abcdef0123456789abcdef" ||
					field(m, "cookie") != "a=1; b=2; c="+strings.Repeat("z", 100) || field(m, "x-seq") != strconv.Itoa(i) {
					t.Errorf("request %d: %q", i, m.Payload)
				}
			}
			for i, m := range sv {
				if field(m, "x-request") != fmt.Sprintf("/r/%d", i) || field(m, "cache-control") != "private, max-age=0" {
					t.Errorf("response %d: %q", i, m.Payload)
				}
			}
		},
	},
}

// TestLive runs every scenario between x/net/http2's client and server and
// decodes the bytes as they were written, one chunk per Write.
func TestLive(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			cp := record(t, sc.handler, func(c *http.Client, base string) { sc.run(t, c, base) })
			cl, _ := decodeAll(Client, Limits{}, cp.Client, chunkIndex)
			sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
			sc.check(t, cl, sv)
		})
	}
}

// Other HTTP/2 implementations encode differently from Go's: nghttp2 (in
// nghttp and curl) sends PRIORITY frames, Huffman-codes otherwise, and
// splits cookies.

// seen is what the server's handler got.
type seen struct {
	method, uri, body string
	header            http.Header
}

// recordTool serves h2c on 127.0.0.1 and runs a client tool against it,
// recording what the server read (the client side) and wrote.
func recordTool(t *testing.T, args func(base string) []string) (*capture, map[string]seen) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cp := new(capture)
	got := map[string]seen{}
	closed := make(chan struct{}, 1)
	srv := &http.Server{
		Protocols: h2c(),
		Handler: noDate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got[r.URL.RequestURI()] = seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Clone()}
			mu.Unlock()
			if p, ok := w.(http.Pusher); ok && r.URL.Path == "/page" {
				if err := p.Push("/style.css", nil); err != nil {
					t.Error(err)
				}
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "resp:"+r.URL.RequestURI())
		})),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				select {
				case closed <- struct{}{}:
				default:
				}
			}
		},
	}
	rl := &readRecListener{recListener{Listener: ln, mu: &mu, chunks: &cp.Server}, &cp.Client}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(rl) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := args("http://" + ln.Addr().String())
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", a[0], err, out)
	}
	<-closed
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return cp, got
}

// readRecListener records reads as well: the client's bytes, as the
// server received them.
type readRecListener struct {
	recListener
	reads *[][]byte
}

func (l *readRecListener) Accept() (net.Conn, error) {
	c, err := l.recListener.Accept()
	if err != nil {
		return nil, err
	}
	return &readRecConn{c.(*recConn), l.reads}, nil
}

type readRecConn struct {
	*recConn
	reads *[][]byte
}

func (c *readRecConn) Read(p []byte) (int, error) {
	n, err := c.recConn.Read(p)
	if n > 0 {
		c.mu.Lock()
		*c.reads = append(*c.reads, append([]byte(nil), p[:n]...))
		c.mu.Unlock()
	}
	return n, err
}

type tool struct {
	name string
	args func(base string) []string
}

func tools(t *testing.T) []tool {
	post := filepath.Join(t.TempDir(), "post")
	if err := os.WriteFile(post, []byte(strings.Repeat("posted data ", 3000)), 0o644); err != nil {
		t.Fatal(err)
	}
	return []tool{
		{"nghttp", func(base string) []string {
			return []string{"nghttp", "-n", "-H", "cookie: a=1; b=2", "-H", "x-tool: nghttp", "-d", post,
				base + "/one", base + "/two?q=1", base + "/three"}
		}},
		{"curl", func(base string) []string {
			// curl 7.88 fails reusing a prior-knowledge connection: one
			// request.
			return []string{"curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "--compressed",
				"-H", "x-tool: curl", "-H", "cookie: a=1; b=2", "--data-binary", "@" + post, base + "/upload?x=y"}
		}},
	}
}

func TestTools(t *testing.T) {
	for _, tool := range tools(t) {
		t.Run(tool.name, func(t *testing.T) {
			cp, got := recordTool(t, tool.args)
			for name, chunks := range map[string][][]byte{"as read": cp.Client, "bytewise": split(flat(cp.Client), 1)} {
				cl, _ := decodeAll(Client, Limits{}, chunks, chunkIndex)
				sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
				if len(cl) != len(got) || len(sv) != len(got) {
					t.Fatalf("%s: %d requests, %d responses, server saw %d:\n%s%s", name, len(cl), len(sv), len(got),
						describe("client", cl), describe("server", sv))
				}
				paths := map[uint32]string{}
				for _, m := range cl {
					s, ok := got[m.Path]
					if m.Type != decoder.HTTP2Request || m.Incomplete || !ok || s.method != m.Method || s.body != string(body(m)) ||
						field(m, "cookie") != "a=1; b=2" || field(m, "x-tool") != tool.name || field(m, "user-agent") != s.header.Get("User-Agent") {
						t.Errorf("%s: request %s:\n%s", name, m.Path, describe("client", []*Message{m}))
					}
					paths[m.StreamID] = m.Path
				}
				for _, m := range sv {
					if m.Status != 200 || m.Incomplete || string(body(m)) != "resp:"+paths[m.StreamID] {
						t.Errorf("%s: response:\n%s", name, describe("server", []*Message{m}))
					}
				}
			}
		})
	}
}

// TestPushReal: net/http's server pushes to nghttp, which accepts pushes.
func TestPushReal(t *testing.T) {
	cp, got := recordTool(t, func(base string) []string { return []string{"nghttp", "-n", base + "/page"} })
	if len(got) != 2 {
		t.Fatalf("server handled %d requests", len(got))
	}
	sv, _ := decodeAll(Server, Limits{}, cp.Server, chunkIndex)
	var push, page, pushed *Message
	for _, m := range sv {
		switch {
		case IsPushPromise(m):
			push = m
		case m.StreamID%2 == 1: // nghttp starts at 13
			page = m
		case m.StreamID%2 == 0:
			pushed = m
		}
	}
	if push == nil || page == nil || pushed == nil || len(sv) != 3 {
		t.Fatalf("got:\n%s", describe("server", sv))
	}
	if push.Method != "GET" || push.Path != "/style.css" || push.Incomplete || pushed.StreamID != push.StreamID ||
		string(body(pushed)) != "resp:/style.css" || string(body(page)) != "resp:/page" || pushed.Incomplete || page.Incomplete {
		t.Errorf("got:\n%s", describe("server", sv))
	}
}

package http2

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/decoder"
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

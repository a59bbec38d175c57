package http1

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/golden"
)

// fuzzLimits are small so that every limit is reached often.
var fuzzLimits = decoder.Limits{MaxHeaderBytes: 256, MaxBodyBytes: 512, MaxBufferBytes: 1024, RawFlushBytes: 300}

func FuzzRequests(f *testing.F)  { fuzzDirection(f, 0) }
func FuzzResponses(f *testing.F) { fuzzDirection(f, 1) }

// fuzzDirection checks one direction against arbitrary input. Odd seeds
// feed it in random pieces with random gaps, idle flushes and answers from
// the other direction; even seeds feed it in random pieces only, and the
// messages must then be the same as when the input comes in one piece.
// Either way memory must stay within the limits after every call, and
// nothing but a valid message start may be emitted as HTTP.
func fuzzDirection(f *testing.F, dir int) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint64(1))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) { fuzzOne(t, dir, data, seed) })
}

func fuzzOne(t *testing.T, dir int, data []byte, seed uint64) {
	chaos := seed&1 == 1
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var whole []*decoder.Message
	if !chaos {
		whole = fuzzFeed(t, dir, data, nil)
	}
	pieces := fuzzFeed(t, dir, data, func(s, other *stream, ts int64, emit, otherEmit decoder.Emit) int {
		if chaos {
			switch rng.IntN(16) {
			case 0:
				s.Gap(uint64(1 + rng.IntN(64)))
			case 1:
				s.Flush(ts, decoder.Idle, emit)
			case 2:
				// Answer an Upgrade or CONNECT either way.
				answers := []string{
					"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
					"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
					"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
					"HEAD / HTTP/1.1\r\n\r\n",
				}
				other.Feed(ts, []byte(answers[rng.IntN(len(answers))]), otherEmit)
			}
		}
		return 1 + rng.IntN(300)
	})
	if chaos {
		return
	}
	if len(whole) != len(pieces) {
		t.Fatalf("%d messages in one piece, %d in pieces", len(whole), len(pieces))
	}
	for i := range whole {
		a, b := *whole[i], *pieces[i]
		a.Start, a.End, b.Start, b.End = 0, 0, 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("message %d differs:\none piece: %+v\n%q\npieces: %+v\n%q", i, a, a.Payload, b, b.Payload)
		}
	}
}

// fuzzFeed feeds data to direction dir of a new Conn in pieces whose
// length step returns after doing whatever else it wants, or in one piece
// when step is nil, then closes. It returns dir's messages.
func fuzzFeed(t *testing.T, dir int, data []byte, step func(s, other *stream, ts int64, emit, otherEmit decoder.Emit) int) []*decoder.Message {
	lim := normalize(fuzzLimits)
	c := NewConn(fuzzLimits)
	streams := [2]*stream{&c.req, &c.resp}
	s, other := streams[dir], streams[1-dir]
	var msgs []*decoder.Message
	emit := func(m *decoder.Message) {
		checkMessage(t, dir, m, lim)
		msgs = append(msgs, m)
	}
	otherEmit := func(m *decoder.Message) { checkMessage(t, 1-dir, m, lim) }
	ts := int64(0)
	for len(data) > 0 {
		ts++
		n := len(data)
		if step != nil {
			n = min(n, step(s, other, ts, emit, otherEmit))
		}
		s.Feed(ts, data[:n], emit)
		data = data[n:]
		checkBounds(t, s, lim)
		checkBounds(t, other, lim)
	}
	s.Flush(ts+1, decoder.Close, emit)
	other.Flush(ts+1, decoder.Close, otherEmit)
	checkBounds(t, s, lim)
	return msgs
}

func checkBounds(t *testing.T, s *stream, lim limits) {
	t.Helper()
	switch {
	case cap(s.buf) > lim.buffer:
		t.Fatalf("input buffer capacity %d > %d", cap(s.buf), lim.buffer)
	case cap(s.m.body) > lim.body:
		t.Fatalf("body capacity %d > %d", cap(s.m.body), lim.body)
	case cap(s.dec) > lim.body:
		t.Fatalf("decode buffer capacity %d > %d", cap(s.dec), lim.body)
	case cap(s.garbage) > lim.raw:
		t.Fatalf("garbage capacity %d > %d", cap(s.garbage), lim.raw)
	case len(s.hdr)+len(s.m.trailer) > 2*lim.header:
		t.Fatalf("header %d and trailer %d bytes", len(s.hdr), len(s.m.trailer))
	case len(s.pending) > 4:
		t.Fatalf("%d pending messages", len(s.pending))
	}
}

func checkMessage(t *testing.T, dir int, m *decoder.Message, lim limits) {
	t.Helper()
	if m.Start > m.End {
		t.Fatalf("start %d after end %d", m.Start, m.End)
	}
	if len(m.Payload) > 2*lim.header+lim.body+64 {
		t.Fatalf("payload of %d bytes", len(m.Payload))
	}
	switch m.Type {
	case decoder.Raw:
		if len(m.Payload) == 0 {
			t.Fatalf("empty raw message")
		}
	case decoder.HTTP1Request, decoder.HTTP1Response:
		if want := []decoder.Type{decoder.HTTP1Request, decoder.HTTP1Response}[dir]; m.Type != want {
			t.Fatalf("type %v in direction %d", m.Type, dir)
		}
		if ok, _ := isStart(dir == 1, m.Payload); !ok {
			t.Fatalf("%v payload does not start with a valid start line: %q", m.Type, m.Payload)
		}
	default:
		t.Fatalf("type %v", m.Type)
	}
}

// TestFuzzSeeds checks that the recordings are in the seed corpus, so that
// fuzzing starts from real traffic; -update writes them.
func TestFuzzSeeds(t *testing.T) {
	for _, sc := range scenarios {
		rec := loadRecording(t, sc)
		for i, p := range [][]byte{rec.req, rec.resp} {
			dir := filepath.Join("testdata", "fuzz", []string{"FuzzRequests", "FuzzResponses"}[i])
			golden.Check(t, filepath.Join(dir, sc.name), golden.FuzzSeed(p, uint64(len(p))))
		}
	}
}

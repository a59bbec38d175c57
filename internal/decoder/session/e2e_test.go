package session_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
	"github.com/tlstap/tlstap/internal/golden"
)

// emitted is a message with its direction.
type emitted struct {
	dir capture.Direction
	m   *decoder.Message
}

// run feeds chunks with ts = 1, 2, ... and closes the session.
func run(opts session.Options, rec recording) ([]emitted, *session.Session) {
	var got []emitted
	emit := func(dir capture.Direction, m *decoder.Message) { got = append(got, emitted{dir, m}) }
	s := session.New(opts)
	for i, c := range rec {
		s.Feed(c.dir, int64(i+1), c.data, emit)
	}
	s.Flush(int64(len(rec)+1), decoder.Close, emit)
	return got, s
}

// render prints every field of a message on one line. HTTP payloads show
// their first line, others a quoted prefix; all show a hash of the whole.
func render(e emitted, timed bool) string {
	m := e.m
	var p string
	switch {
	case m.Type.IsRequest() || m.Type.IsResponse():
		line, _, _ := bytes.Cut(m.Payload, []byte("\r\n"))
		p = fmt.Sprintf("%q", line)
	case len(m.Payload) > 40:
		p = fmt.Sprintf("%q...", m.Payload[:40])
	default:
		p = fmt.Sprintf("%q", m.Payload)
	}
	times := ""
	if timed {
		times = fmt.Sprintf(" start=%d end=%d", m.Start, m.End)
	}
	up := ""
	if m.Upgrade != nil {
		up = fmt.Sprintf(" upgrade=%s/%q", m.Upgrade.Protocol, m.Upgrade.Extensions)
	}
	return fmt.Sprintf("%-5s %s%s stream=%d method=%q path=%q host=%q status=%d ctype=%q te=%q ce=%q ws=%d/%d len=%d orig=%d trunc=%t inc=%t%s sha256=%.12x %s",
		e.dir, m.Type, times, m.StreamID, m.Method, m.Path, m.Host, m.Status, m.ContentType,
		m.TransferEncoding, m.ContentEncoding, m.WSOpcode, m.WSCloseCode, len(m.Payload), m.OriginalLength,
		m.Truncated, m.Incomplete, up, sha256.Sum256(m.Payload), p)
}

func renderAll(es []emitted, timed bool) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(render(e, timed) + "\n")
	}
	return b.String()
}

// perDirection renders each direction's messages, untimed: what must not
// depend on chunking.
func perDirection(es []emitted) [2]string {
	var out [2]strings.Builder
	for _, e := range es {
		out[e.dir&1].WriteString(render(e, false) + "\n")
	}
	return [2]string{out[0].String(), out[1].String()}
}

// conversations are recorded over loopback; -update re-records the
// checked-in copies that the golden and chunking tests use.
var conversations = []struct {
	name   string
	record func(t *testing.T) recording
	check  func(t *testing.T, got []emitted, s *session.Session)
}{
	{"http1-keepalive", recordHTTP1, checkHTTP(decoder.HTTP1Request, decoder.HTTP1Response, "http1")},
	{"h2c", recordH2C, checkHTTP(decoder.HTTP2Request, decoder.HTTP2Response, "http2")},
	{"websocket-deflate", recordWebSocket, checkWebSocket},
}

func split(got []emitted) (w, r []*decoder.Message) {
	for _, e := range got {
		if e.dir == capture.Write {
			w = append(w, e.m)
		} else {
			r = append(r, e.m)
		}
	}
	return w, r
}

func checkHTTP(reqType, respType decoder.Type, protocol string) func(*testing.T, []emitted, *session.Session) {
	return func(t *testing.T, got []emitted, s *session.Session) {
		t.Helper()
		if s.Protocol(capture.Write) != protocol || s.Protocol(capture.Read) != protocol {
			t.Fatalf("protocols %q/%q, want %q", s.Protocol(capture.Write), s.Protocol(capture.Read), protocol)
		}
		reqs, resps := split(got)
		if len(reqs) != len(httpExchanges) || len(resps) != len(httpExchanges) {
			t.Fatalf("%d requests, %d responses, want %d each:\n%s", len(reqs), len(resps), len(httpExchanges), renderAll(got, false))
		}
		for i, e := range httpExchanges {
			q, p := reqs[i], resps[i]
			if q.Type != reqType || q.Method != e.method || q.Path != e.path || !bytes.HasSuffix(q.Payload, []byte(e.body)) {
				t.Errorf("request %d: %s", i, render(emitted{capture.Write, q}, false))
			}
			if p.Type != respType || p.Status != uint32(e.status) || p.Incomplete || p.Truncated {
				t.Errorf("response %d: %s", i, render(emitted{capture.Read, p}, false))
			}
			if q.StreamID != p.StreamID {
				t.Errorf("exchange %d: streams %d and %d", i, q.StreamID, p.StreamID)
			}
		}
		// The decoded bodies, as the server sent them before encoding.
		if !bytes.HasSuffix(resps[3].Payload, bytes.Repeat([]byte("compressed text "), 50)) {
			t.Errorf("gzip body not decoded: %s", render(emitted{capture.Read, resps[3]}, false))
		}
		if !bytes.HasSuffix(resps[5].Payload, bytes.Repeat([]byte("0123456789abcdef"), 5000)) {
			t.Errorf("big body wrong: %s", render(emitted{capture.Read, resps[5]}, false))
		}
	}
}

func checkWebSocket(t *testing.T, got []emitted, s *session.Session) {
	t.Helper()
	if s.Protocol(capture.Write) != "websocket" || s.Protocol(capture.Read) != "websocket" {
		t.Fatalf("protocols %q/%q", s.Protocol(capture.Write), s.Protocol(capture.Read))
	}
	w, r := split(got)
	if len(w) != len(wsMessages)+3 || len(r) != len(wsMessages)+3 {
		t.Fatalf("%d/%d messages:\n%s", len(w), len(r), renderAll(got, false))
	}
	if w[0].Type != decoder.HTTP1Request || w[0].Path != "/chat" {
		t.Errorf("upgrade request: %s", render(emitted{capture.Write, w[0]}, false))
	}
	if r[0].Type != decoder.HTTP1Response || r[0].Status != 101 || r[0].Upgrade == nil ||
		!strings.Contains(r[0].Upgrade.Extensions, "permessage-deflate") {
		t.Errorf("101: %s", render(emitted{capture.Read, r[0]}, false))
	}
	for _, side := range [][]*decoder.Message{w[1:], r[1:]} {
		for i, text := range wsMessages {
			if m := side[i]; m.Type != decoder.WebSocket || m.WSOpcode != 1 || string(m.Payload) != text {
				t.Errorf("message %d: %s", i, render(emitted{0, m}, false))
			}
		}
		ctl := side[len(wsMessages):]
		if ctl[0].WSOpcode != 9 && ctl[0].WSOpcode != 10 || string(ctl[0].Payload) != "1" {
			t.Errorf("ping/pong: %s", render(emitted{0, ctl[0]}, false))
		}
		if ctl[1].WSOpcode != 8 || ctl[1].WSCloseCode != 1000 || string(ctl[1].Payload) != "done" {
			t.Errorf("close: %s", render(emitted{0, ctl[1]}, false))
		}
	}
}

// TestConversations decodes freshly recorded conversations and checks them
// against what the programs sent.
func TestConversations(t *testing.T) {
	for _, c := range conversations {
		t.Run(c.name, func(t *testing.T) {
			rec := c.record(t)
			got, s := run(session.Options{}, rec)
			c.check(t, got, s)
			if *golden.Update {
				if err := rec.save(filepath.Join("testdata", c.name+".rec")); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func loadConversation(t testing.TB, name string) recording {
	t.Helper()
	rec, err := loadRecording(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestConversationGolden pins every field of every message of the
// checked-in recordings, interleaved as they were emitted.
func TestConversationGolden(t *testing.T) {
	if *golden.Update {
		defer writeSessionSeeds(t)
	}
	for _, c := range conversations {
		t.Run(c.name, func(t *testing.T) {
			got, s := run(session.Options{}, loadConversation(t, c.name))
			c.check(t, got, s)
			golden.Check(t, filepath.Join("testdata", c.name+".golden"), []byte(renderAll(got, true)))
		})
	}
}

// rechunk splits every chunk at random points, or merges runs of chunks of
// one direction, keeping the order of the directions' bytes.
func rechunk(rec recording, r *rand.Rand) recording {
	var out recording
	if r.IntN(2) == 0 {
		for _, c := range rec {
			if n := len(out); n > 0 && out[n-1].dir == c.dir {
				out[n-1].data = append(bytes.Clone(out[n-1].data), c.data...)
				continue
			}
			out = append(out, c)
		}
		return out
	}
	for _, c := range rec {
		d := c.data
		for len(d) > 0 {
			k := 1 + r.IntN(min(len(d), 1+r.IntN(64)))
			out = append(out, chunk{c.dir, d[:k]})
			d = d[k:]
		}
	}
	return out
}

// TestConversationChunking: how reads and writes were cut must not change
// any direction's messages.
func TestConversationChunking(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range conversations {
		t.Run(c.name, func(t *testing.T) {
			rec := loadConversation(t, c.name)
			base, _ := run(session.Options{}, rec)
			want := perDirection(base)
			for k := range 30 {
				got, s := run(session.Options{}, rechunk(rec, r))
				if g := perDirection(got); g != want {
					t.Fatalf("rechunk %d:\n%s\n%s\nwant:\n%s\n%s", k, g[0], g[1], want[0], want[1])
				}
				c.check(t, got, s)
			}
		})
	}
}

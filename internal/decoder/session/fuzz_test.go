package session_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/session"
)

// schedule turns fuzz input into a recording: each two bytes of sched
// give a direction (low bit) and a chunk length (the rest); whatever
// data is left after sched runs out goes to the last direction.
func schedule(data, sched []byte) recording {
	var rec recording
	dir := capture.Write
	for len(sched) >= 2 && len(data) > 0 {
		v := binary.BigEndian.Uint16(sched)
		sched = sched[2:]
		dir = capture.Direction(v & 1)
		n := min(int(v>>1)+1, len(data))
		rec = append(rec, chunk{dir, data[:n]})
		data = data[n:]
	}
	if len(data) > 0 {
		rec = append(rec, chunk{dir, data})
	}
	return rec
}

// unschedule is schedule's inverse, for seeds.
func unschedule(rec recording) (data, sched []byte) {
	for _, c := range rec {
		for d := c.data; len(d) > 0; {
			n := min(len(d), 1<<15)
			sched = binary.BigEndian.AppendUint16(sched, uint16(n-1)<<1|uint16(c.dir&1))
			data = append(data, d[:n]...)
			d = d[n:]
		}
	}
	return data, sched
}

// FuzzSession feeds arbitrary bytes to both directions, interleaved and cut
// as sched says, under tight limits, with idle flushes and gaps sprinkled
// in by flags. It must not panic, the same input must give the same output
// twice (no hidden state, no map order), and cutting every read in two
// must not change any direction's messages.
func FuzzSession(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzSession, written by writeSessionSeeds from
	// the recorded conversations and the detection inputs.
	f.Fuzz(func(t *testing.T, data, sched []byte, flags uint8) {
		rec := schedule(data, sched)
		once := func() string {
			opts := session.Options{}
			if flags&1 != 0 {
				opts.Limits = decoder.Limits{MaxHeaderBytes: 256, MaxBodyBytes: 512, MaxBufferBytes: 1024, MaxStreams: 4, MaxHPACKTable: 256, RawFlushBytes: 300}
			}
			var out []byte
			emit := func(dir capture.Direction, m *decoder.Message) {
				if opts.Limits.MaxBodyBytes > 0 && m.Type == decoder.WebSocket && len(m.Payload) > opts.Limits.MaxBodyBytes {
					t.Fatalf("websocket payload %d over limit", len(m.Payload))
				}
				out = fmt.Appendf(out, "%s\n%s\n", render(emitted{dir, m}, true), m.Payload)
			}
			s := session.New(opts)
			for i, c := range rec {
				s.Feed(c.dir, int64(i), c.data, emit)
				switch {
				case flags&2 != 0 && i%3 == 2:
					s.Flush(int64(i), decoder.Idle, emit)
				case flags&4 != 0 && i%4 == 3:
					s.Gap(c.dir, 7)
				}
			}
			s.Flush(int64(len(rec)), decoder.Close, emit)
			for _, d := range []capture.Direction{capture.Read, capture.Write} {
				switch s.Protocol(d) {
				case "", "raw", "http1", "http2", "websocket":
				default:
					t.Fatalf("protocol %q", s.Protocol(d))
				}
			}
			return string(out)
		}
		if a, b := once(), once(); a != b {
			t.Fatalf("same input, different output")
		}
		if flags&6 != 0 {
			return // idle flushes and gaps are placed by chunk index
		}
		// Cutting reads further must not change any direction's messages.
		opts := session.Options{}
		whole, s := run(opts, rec)
		if s.Protocol(capture.Read) == "http2" || s.Protocol(capture.Write) == "http2" {
			// decoder/http2's raw fallback still drops a byte depending on
			// where a read ended (reported); this property is about the
			// session's own dispatch.
			return
		}
		var finer recording
		for _, c := range rec {
			k := len(c.data) / 2
			finer = append(finer, chunk{c.dir, c.data[:k]}, chunk{c.dir, c.data[k:]})
		}
		cut, _ := run(opts, finer)
		if a, b := perDirection(whole), perDirection(cut); a != b {
			t.Fatalf("finer reads changed the messages:\n%s\n%s\nvs\n%s\n%s", b[0], b[1], a[0], a[1])
		}
	})
}

// writeSessionSeeds checks in the seed corpus (under -update).
func writeSessionSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzSession")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	add := func(name string, rec recording, flags uint8) {
		data, sched := unschedule(rec)
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nbyte(%q)\n", data, sched, rune(flags))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conversations {
		rec := loadConversation(t, c.name)
		if len(rec) > 12 {
			rec = rec[:12] // keep seeds small: the fuzzer mutates them
		}
		add(c.name, rec, 0)
		add(c.name+"-tight-idle", rec, 3)
	}
	for i, tc := range detectCases(t)[:14] {
		add(fmt.Sprintf("detect-%02d", i), recording{{capture.Write, tc.in}, {capture.Read, http1Response(t)}}, 4)
	}
}

package websocket_test

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	cws "github.com/coder/websocket"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
	"github.com/tlstap/tlstap/internal/golden"
)

// fixtures are small recorded sessions, checked in so that the golden
// output (including timestamps, which follow the recorded chunking) is
// stable. -update records them afresh over loopback.
var fixtures = []struct {
	name   string
	record func(t *testing.T) recording
}{
	{"coder-plain", func(t *testing.T) recording { return runCoder(t, cws.CompressionDisabled, 0, smallScript()) }},
	{"coder-takeover", func(t *testing.T) recording { return runCoder(t, cws.CompressionContextTakeover, 1, smallScript()) }},
	{"coder-no-takeover", func(t *testing.T) recording {
		return runCoder(t, cws.CompressionNoContextTakeover, 1, smallScript())
	}},
	{"gorilla-deflate", func(t *testing.T) recording { return runGorilla(t, true, smallScript()) }},
}

func loadFixture(t *testing.T, name string) recording {
	t.Helper()
	rec, err := loadRecording(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// sideOptions returns the decoder options of both directions.
func sideOptions(ext string) [2]websocket.Options {
	return [2]websocket.Options{{FromClient: true, Extensions: ext}, {Extensions: ext}}
}

func TestGolden(t *testing.T) {
	if *golden.Update {
		defer writeSeeds(t)
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			recPath := filepath.Join("testdata", fx.name+".rec")
			if *golden.Update {
				if err := fx.record(t).save(recPath); err != nil {
					t.Fatal(err)
				}
			}
			c2s, s2c, ext := splitHandshake(t, loadFixture(t, fx.name))
			var out strings.Builder
			out.WriteString("extensions: " + ext + "\n")
			opts := sideOptions(ext)
			for i, side := range []wsSide{c2s, s2c} {
				dir := [2]string{"c2s", "s2c"}[i]
				for _, m := range decodeChunks(opts[i], decoder.DefaultLimits(), side.chunks) {
					out.WriteString(dir + " " + render(m) + "\n")
				}
			}
			golden.Check(t, filepath.Join("testdata", fx.name+".golden"), []byte(out.String()))
		})
	}
}

// untimed renders messages without their timestamps, which depend on how
// the bytes were chunked.
func untimed(ms []*decoder.Message) string {
	var b strings.Builder
	for _, m := range ms {
		c := *m
		c.Start, c.End = 0, 0
		b.WriteString(render(&c) + "\n")
		b.Write(m.Payload) // whole payload, not only render's prefix
		b.WriteByte('\n')
	}
	return b.String()
}

// TestSplitEverywhere feeds each fixture direction cut at every byte
// offset, and one byte at a time: the messages must not depend on where
// the reads ended.
func TestSplitEverywhere(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			c2s, s2c, ext := splitHandshake(t, loadFixture(t, fx.name))
			opts := sideOptions(ext)
			l := decoder.DefaultLimits()
			for i, side := range []wsSide{c2s, s2c} {
				stream := side.bytes()
				want := untimed(decodeChunks(opts[i], l, [][]byte{stream}))
				if strings.Contains(want, "incomplete=true") || strings.Contains(want, "type=raw") {
					t.Fatalf("direction %d does not decode cleanly:\n%s", i, want)
				}
				for cut := range len(stream) + 1 {
					got := untimed(decodeChunks(opts[i], l, [][]byte{stream[:cut], stream[cut:]}))
					if got != want {
						t.Fatalf("direction %d cut at %d:\n%s\nwant:\n%s", i, cut, got, want)
					}
				}
				var bytewise [][]byte
				for j := range stream {
					bytewise = append(bytewise, stream[j:j+1])
				}
				if got := untimed(decodeChunks(opts[i], l, bytewise)); got != want {
					t.Fatalf("direction %d byte by byte:\n%s\nwant:\n%s", i, got, want)
				}
			}
		})
	}
}

// rechunk cuts b at n random offsets.
func rechunk(b []byte, n int, r *rand.Rand) [][]byte {
	var out [][]byte
	for range n {
		if len(b) == 0 {
			break
		}
		k := r.IntN(len(b) + 1)
		out = append(out, b[:k])
		b = b[k:]
	}
	return append(out, b)
}

// TestRandomChunking re-chunks a large live session many ways.
func TestRandomChunking(t *testing.T) {
	script := bigScript()
	c2s, s2c, ext := splitHandshake(t, runCoder(t, cws.CompressionContextTakeover, 64, script))
	opts := sideOptions(ext)
	l := decoder.DefaultLimits()
	r := rand.New(rand.NewPCG(1, 2))
	for i, side := range []wsSide{c2s, s2c} {
		stream := side.bytes()
		want := untimed(decodeChunks(opts[i], l, [][]byte{stream}))
		for range 20 {
			if got := untimed(decodeChunks(opts[i], l, rechunk(stream, 1+r.IntN(200), r))); got != want {
				t.Fatalf("direction %d: random chunking changed the messages", i)
			}
		}
		if !bytes.Contains([]byte(want), []byte("op=8 code=4000")) {
			t.Fatalf("direction %d: no close message", i)
		}
	}
}

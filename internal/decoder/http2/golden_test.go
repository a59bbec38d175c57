package http2

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/golden"
)

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

package http2

import (
	"bytes"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
)

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

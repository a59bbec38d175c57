package websocket_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
)

// fuzzExtensions are the negotiations FuzzFrames picks from.
var fuzzExtensions = []string{
	"",
	"permessage-deflate",
	"permessage-deflate; client_no_context_takeover; server_no_context_takeover",
}

// FuzzFrames feeds arbitrary bytes, whole and cut in two, under tight and
// default limits. Beyond not panicking, the messages must respect the
// limits and must not depend on the cut.
func FuzzFrames(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzFrames, written by writeSeeds from the
	// recorded fixtures.
	f.Fuzz(func(t *testing.T, data []byte, fromClient bool, ext uint8, tight bool, cut uint16) {
		l := decoder.DefaultLimits()
		if tight {
			l.MaxBodyBytes, l.MaxBufferBytes, l.RawFlushBytes = 64, 128, 256
		}
		opts := websocket.Options{FromClient: fromClient, Extensions: fuzzExtensions[int(ext)%len(fuzzExtensions)]}
		whole := decodeChunks(opts, l, [][]byte{data})
		for _, m := range whole {
			limit := l.MaxBodyBytes
			if m.Type == decoder.Raw {
				limit = max(l.RawFlushBytes, 14) // a failed header is at most 14 bytes
			}
			if len(m.Payload) > limit {
				t.Fatalf("%s: payload over limit %d", render(m), limit)
			}
		}
		k := min(int(cut), len(data))
		split := decodeChunks(opts, l, [][]byte{data[:k], data[k:]})
		if a, b := untimed(whole), untimed(split); a != b {
			t.Fatalf("cut at %d changed the messages:\n%s\nvs whole:\n%s", k, b, a)
		}
	})
}

// writeSeeds checks the fuzz seed corpus in: go test's corpus file format,
// one file per fixture direction. Called under -update.
func writeSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrames")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, fx := range fixtures {
		c2s, s2c, ext := splitHandshake(t, loadFixture(t, fx.name))
		e := 0
		if ext != "" {
			e = 1
		}
		for i, side := range []wsSide{c2s, s2c} {
			b := side.bytes()
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%t)\nbyte(%q)\nbool(%t)\nuint16(%d)\n",
				b, i == 0, rune(e), i == 1, len(b)/3)
			name := fmt.Sprintf("%s-%d", fx.name, i)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

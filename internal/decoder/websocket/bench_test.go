package websocket_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tlstap/tlstap/internal/decoder"
	"github.com/tlstap/tlstap/internal/decoder/websocket"
)

// BenchmarkSmallText decodes a client stream of 1000 small JSON-like text
// messages, fed in 4 KiB reads, with and without permessage-deflate.
// One op is the whole stream; msgs/s and allocs/msg are per message.
func BenchmarkSmallText(b *testing.B) {
	const n = 1000
	for _, mode := range []struct {
		name string
		ext  string
		z    *deflater
	}{
		{"plain", "", nil},
		{"deflate-takeover", "permessage-deflate", newDeflater(true)},
		{"deflate-no-takeover", "permessage-deflate; client_no_context_takeover", newDeflater(false)},
	} {
		var stream []byte
		for i := range n {
			msg := fmt.Appendf(nil, `{"id":%d,"op":"update","path":"/v1/items/%d","value":%d}`, i, i%17, i*31)
			if mode.z != nil {
				stream = append(stream, frame(true, true, 1, key, mode.z.compress(msg))...)
			} else {
				stream = append(stream, frame(true, false, 1, key, msg)...)
			}
		}
		b.Run(mode.name, func(b *testing.B) {
			opts := websocket.Options{FromClient: true, Extensions: mode.ext}
			l := decoder.DefaultLimits()
			got := 0
			emit := func(*decoder.Message) { got++ }
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for range b.N {
				d := websocket.New(opts, l)
				for p := stream; len(p) > 0; {
					k := min(4096, len(p))
					d.Feed(1, p[:k], emit)
					p = p[k:]
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			if got != n*b.N {
				b.Fatalf("%d messages, want %d", got, n*b.N)
			}
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(got), "allocs/msg")
		})
	}
}

package http2

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/decoder"
)

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

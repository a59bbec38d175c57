package http2

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"

	"github.com/tlstap/tlstap/internal/decoder"
)

// TestFramingError: a connection error switches the side to raw for good.
// Streams in flight come out Incomplete, the bytes from the bad frame on
// come out raw, and nothing after it is taken for HTTP.
func TestFramingError(t *testing.T) {
	tests := []struct {
		name string
		bad  func(f *frames)
		// fromFrame: the raw bytes start with the bad frame's header.
		fromFrame bool
		// reason is the one failure counted.
		reason decoder.Reason
	}{
		{"ping length 7", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FramePing, 0, 0, make([]byte, 7))) }, true, decoder.HTTP2FramePingLength},
		{"settings on a stream", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameSettings, 0, 3, nil)) }, true, decoder.HTTP2FrameSettingsStreamNonzero},
		{"settings length 5", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameSettings, 0, 0, make([]byte, 5))) }, true, decoder.HTTP2FrameSettingsLength},
		{"data on stream 0", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameData, 0, 0, []byte("x"))) }, true, decoder.HTTP2FrameDataStream0},
		{"window update length 3", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 0, make([]byte, 3))) }, true, decoder.HTTP2FrameWindowUpdateLength},
		{"continuation without headers", func(f *frames) {
			f.ok(f.fr.WriteContinuation(7, true, f.block(reqFields...)))
		}, true, decoder.HTTP2FrameContinuationUnexpected},
		{"data inside a header block", func(f *frames) {
			f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: f.block(reqFields...)}))
			f.ok(f.fr.WriteData(7, true, []byte("x")))
		}, false, decoder.HTTP2FrameContinuationExpected},
		{"continuation of another stream", func(f *frames) {
			f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: f.block(reqFields...)}))
			f.ok(f.fr.WriteContinuation(9, true, nil))
		}, false, decoder.HTTP2FrameContinuationExpected},
		{"padding longer than frame", func(f *frames) {
			f.ok(f.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, 1, []byte{9, 'a', 'b'}))
		}, true, decoder.HTTP2FramePadTooLong},
		// Found in the middle of the frame: the raw bytes start there.
		{"enable push 2", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameSettings, 0, 0, setting(2, 2))) }, false, decoder.HTTP2FrameSettingsValue},
		{"push promise from client", func(f *frames) {
			f.ok(f.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true, BlockFragment: f.block(reqFields...)}))
		}, true, decoder.HTTP2FramePushPromiseFromClient},
		{"request on an even stream", func(f *frames) { f.headers(2, true, reqFields...) }, true, decoder.HTTP2FrameHeadersStreamEven},
		{"headers on stream 0", func(f *frames) { f.headers(0, true, reqFields...) }, true, decoder.HTTP2FrameHeadersStream0},
		{"priority on stream 0", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FramePriority, 0, 0, make([]byte, 5))) }, true, decoder.HTTP2FramePriorityStream0},
		{"priority length 4", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FramePriority, 0, 3, make([]byte, 4))) }, true, decoder.HTTP2FramePriorityLength},
		{"rst_stream on stream 0", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameRSTStream, 0, 0, make([]byte, 4))) }, true, decoder.HTTP2FrameRSTStreamStream0},
		{"rst_stream length 5", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameRSTStream, 0, 3, make([]byte, 5))) }, true, decoder.HTTP2FrameRSTStreamLength},
		{"push promise on stream 0", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FramePushPromise, 0, 0, make([]byte, 4))) }, true, decoder.HTTP2FramePushPromiseStream0},
		{"continuation on stream 0", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameContinuation, 0, 0, nil)) }, true, decoder.HTTP2FrameContinuationStream0},
		{"ping on a stream", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FramePing, 0, 5, make([]byte, 8))) }, true, decoder.HTTP2FramePingStreamNonzero},
		{"goaway on a stream", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameGoAway, 0, 5, make([]byte, 8))) }, true, decoder.HTTP2FrameGoAwayStreamNonzero},
		{"goaway length 7", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameGoAway, 0, 0, make([]byte, 7))) }, true, decoder.HTTP2FrameGoAwayLength},
		{"padded data length 0", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FrameData, http2.FlagDataPadded, 1, nil)) }, true, decoder.HTTP2FrameDataLength},
		{"padded priority headers length 5", func(f *frames) {
			f.ok(f.fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersPriority, 3, make([]byte, 5)))
		}, true, decoder.HTTP2FrameHeadersLength},
		{"push promise length 3", func(f *frames) { f.ok(f.fr.WriteRawFrame(http2.FramePushPromise, 0, 1, make([]byte, 3))) }, true, decoder.HTTP2FramePushPromiseLength},
		{"bad hpack index", func(f *frames) {
			f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, EndHeaders: true, EndStream: true, BlockFragment: []byte{0xff, 0x7f}}))
		}, false, decoder.HTTP2HPACKInvalid},
		{"truncated hpack field", func(f *frames) {
			f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, EndHeaders: true, EndStream: true, BlockFragment: []byte{0x40, 0x05, 'a'}}))
		}, false, decoder.HTTP2HPACKInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFrames(t)
			start(f)
			f.fr.AllowIllegalWrites = true
			f.headers(1, false, reqFields...) // in flight when the error comes
			good := f.chunk()
			tt.bad(f)
			bad := f.chunk()
			f.headers(11, true, reqFields...) // after the error: must stay raw
			after := f.chunk()

			var ms []*Message
			var counts decoder.Counts
			d := newDecoder(Client, Limits{Errors: &counts})
			emit := func(m *Message) { ms = append(ms, m) }
			d.Feed(1, good, emit)
			d.Feed(2, bad, emit)
			d.Feed(3, after, emit)
			d.Flush(4, decoder.Close, emit)

			if len(ms) < 2 || ms[0].Type != decoder.HTTP2Request || ms[0].StreamID != 1 || !ms[0].Incomplete {
				t.Fatalf("want stream 1 incomplete first:\n%s", describe("got", ms))
			}
			// Streams in flight (the bad frame's own, perhaps) come out
			// Incomplete, then only raw.
			sawRaw := false
			for _, m := range ms[1:] {
				sawRaw = sawRaw || m.Type == decoder.Raw
				if m.Type != decoder.Raw && (sawRaw || !m.Incomplete) {
					t.Fatalf("HTTP after the error:\n%s", describe("got", ms))
				}
			}
			raw := rawPayload(ms)
			want := append(bytes.Clone(bad), after...)
			if !bytes.HasSuffix(want, raw) || len(raw) < len(after) {
				t.Errorf("raw %x is not a tail of %x", raw, want)
			}
			if tt.fromFrame && !bytes.Equal(raw, want) {
				t.Errorf("raw %x, want %x", raw, want)
			}
			if d.Stats().RawBytes != uint64(len(raw)) {
				t.Errorf("RawBytes %d, want %d", d.Stats().RawBytes, len(raw))
			}
			if got := counts.Counted(); len(got) != 1 || got[0] != tt.reason || counts.Get(tt.reason) != 1 {
				t.Errorf("counted %v, want %s once", got, tt.reason)
			}
		})
	}
}

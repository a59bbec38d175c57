package http2

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// frames writes frames with x/net/http2's Framer and header blocks with its
// hpack.Encoder, for what the real client and server never send: server
// push, padding, CONTINUATION, dynamic table size updates, bad frames.
type frames struct {
	t   testing.TB
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newFrames(t testing.TB) *frames {
	f := &frames{t: t}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

// block HPACK-encodes name, value pairs.
func (f *frames) block(kv ...string) []byte {
	f.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		f.ok(f.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}))
	}
	return bytes.Clone(f.hb.Bytes())
}

func (f *frames) ok(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// chunk returns what was written since the last chunk.
func (f *frames) chunk() []byte {
	b := bytes.Clone(f.buf.Bytes())
	f.buf.Reset()
	return b
}

func (f *frames) preface() { f.buf.WriteString(clientPreface) }

func (f *frames) headers(stream uint32, end bool, kv ...string) {
	f.ok(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: f.block(kv...), EndStream: end, EndHeaders: true}))
}

// pushCapture: the server pushes a stylesheet with the page that needs it.
func pushCapture(t testing.TB) *capture {
	cl, sv := newFrames(t), newFrames(t)
	cl.preface()
	cl.ok(cl.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}))
	cl.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/index.html")
	cl.ok(cl.fr.WriteSettingsAck())

	sv.ok(sv.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}))
	first := sv.chunk()
	sv.ok(sv.fr.WriteSettingsAck())
	sv.headers(1, false, ":status", "200", "content-type", "text/html")
	sv.ok(sv.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true,
		BlockFragment: sv.block(":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/style.css")}))
	sv.ok(sv.fr.WriteData(1, true, []byte(`<html><link rel="stylesheet" href="/style.css"></html>`)))
	sv.headers(2, false, ":status", "200", "content-type", "text/css")
	sv.ok(sv.fr.WriteData(2, true, []byte("body { color: red }")))
	return &capture{Client: [][]byte{cl.chunk()}, Server: [][]byte{first, sv.chunk()}}
}

// paddingCapture pads every frame that can be, splits a header block over
// CONTINUATION frames and mixes in every other frame type, an unknown one
// included.
func paddingCapture(t testing.TB) *capture {
	cl, sv := newFrames(t), newFrames(t)
	cl.preface()
	cl.ok(cl.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192}, http2.Setting{ID: 0x99, Val: 7}))
	blk := cl.block(":method", "POST", ":scheme", "https", ":authority", "api.example.com", ":path", "/submit",
		"content-type", "application/json", "x-trace-id", "4bf92f3577b34da6a3ce929d0e0e4736",
		"authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo")
	cl.ok(cl.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:10], PadLength: 7,
		Priority: http2.PriorityParam{StreamDep: 0, Weight: 15, Exclusive: true}}))
	cl.ok(cl.fr.WriteContinuation(1, false, blk[10:40]))
	cl.ok(cl.fr.WriteContinuation(1, true, blk[40:]))
	cl.ok(cl.fr.WritePriority(1, http2.PriorityParam{Weight: 200}))
	cl.ok(cl.fr.WriteRawFrame(0xfa, 0x3, 1, []byte("an extension frame")))
	cl.ok(cl.fr.WriteDataPadded(1, false, []byte(`{"hello":`), make([]byte, 10)))
	cl.ok(cl.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	cl.ok(cl.fr.WriteWindowUpdate(0, 1<<20))
	cl.ok(cl.fr.WriteDataPadded(1, true, []byte(`"world"}`), []byte{}))
	cl.ok(cl.fr.WriteGoAway(0, http2.ErrCodeNo, []byte("bye")))

	sv.ok(sv.fr.WriteSettings())
	sv.ok(sv.fr.WriteSettingsAck())
	sv.ok(sv.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, PadLength: 3, EndHeaders: true,
		BlockFragment: sv.block(":status", "201", "location", "/items/7")}))
	sv.ok(sv.fr.WriteDataPadded(1, true, []byte(`{"id":7}`), make([]byte, 255)))
	sv.ok(sv.fr.WritePing(true, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	return &capture{Client: [][]byte{cl.chunk()}, Server: [][]byte{sv.chunk()}}
}

// tableSizeCapture changes the HPACK table size between requests: up, then
// to zero (emptying it) and back, two updates at the start of one block.
func tableSizeCapture(t testing.TB) *capture {
	cl, sv := newFrames(t), newFrames(t)
	cl.preface()
	cl.ok(cl.fr.WriteSettings())
	sv.ok(sv.fr.WriteSettings())
	fields := []string{":method", "GET", ":scheme", "https", ":authority", "cdn.example.com", ":path", "/a.js",
		"x-long", string(bytes.Repeat([]byte("v"), 600)), "x-request-id", "r-1"}
	var chunks [][]byte
	req := func(id uint32) {
		cl.headers(id, true, fields...)
		chunks = append(chunks, cl.chunk())
		sv.headers(id, true, ":status", "204", "x-request-id", fields[len(fields)-1])
	}
	req(1)
	req(3) // from the dynamic table
	cl.enc.SetMaxDynamicTableSizeLimit(16384)
	cl.enc.SetMaxDynamicTableSize(16384)
	fields[len(fields)-1] = "r-5"
	req(5)
	cl.enc.SetMaxDynamicTableSize(0)
	cl.enc.SetMaxDynamicTableSize(2048)
	fields[len(fields)-1] = "r-7"
	req(7)
	fields[len(fields)-1] = "r-9"
	req(9)
	return &capture{Client: chunks, Server: [][]byte{sv.chunk()}}
}

var crafted = []struct {
	name string
	make func(testing.TB) *capture
}{
	{"push", pushCapture},
	{"padding", paddingCapture},
	{"table-size", tableSizeCapture},
}

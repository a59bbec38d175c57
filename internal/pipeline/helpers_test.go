package pipeline_test

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/capture"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// collect is a Broker that keeps every event and checks that each one
// marshals, as the broker would.
type collect struct {
	t      testing.TB
	mu     sync.Mutex
	events []*eventpb.Event
}

func (c *collect) Publish(m *eventpb.LogEntry) {
	if _, err := proto.Marshal(m); err != nil {
		c.t.Errorf("entry does not marshal: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, m.GetEventPayload())
}

func (c *collect) all() []*eventpb.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*eventpb.Event(nil), c.events...)
}

var (
	local  = netip.MustParseAddrPort("127.0.0.1:40000")
	remote = netip.MustParseAddrPort("127.0.0.2:443")
)

const ms = int64(1e6)

// chunk builds a data chunk of connection conn of pid 100.
func chunk(t int64, conn uint64, dir capture.Direction, data string) capture.Chunk {
	return capture.Chunk{
		Time: t, PID: 100, TID: 101, UID: 1000, Comm: "curl", FD: 5, Conn: conn,
		Local: local, Remote: remote, Dir: dir, TLSVersion: 0x0304, Data: []byte(data),
	}
}

func closeChunk(t int64, conn uint64) capture.Chunk {
	c := chunk(t, conn, capture.Read, "")
	c.Kind = capture.Close
	return c
}

// h2 writes HTTP/2 frames.
type h2 struct {
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newH2() *h2 {
	h := &h2{}
	h.fr = http2.NewFramer(&h.buf, nil)
	h.enc = hpack.NewEncoder(&h.hb)
	return h
}

func (h *h2) preface() *h2 {
	h.buf.WriteString(http2.ClientPreface)
	return h.settings()
}

func (h *h2) settings() *h2 {
	_ = h.fr.WriteSettings()
	return h
}

// headers writes a HEADERS frame of name, value pairs.
func (h *h2) headers(stream uint32, end bool, kv ...string) *h2 {
	h.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	_ = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: h.hb.Bytes(), EndStream: end, EndHeaders: true})
	return h
}

func (h *h2) data(stream uint32, end bool, p string) *h2 {
	_ = h.fr.WriteData(stream, end, []byte(p))
	return h
}

// take returns the frames written so far and starts afresh.
func (h *h2) take() string {
	s := h.buf.String()
	h.buf.Reset()
	return s
}

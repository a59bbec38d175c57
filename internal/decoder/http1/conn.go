package http1

import (
	"cmp"

	"github.com/tlstap/tlstap/internal/decoder"
)

// reqFlags is what a response needs to know about the request it answers.
type reqFlags uint8

const (
	flagHead reqFlags = 1 << iota
	flagConnect
	flagUpgrade
)

// maxQueued bounds the requests remembered while their responses are
// outstanding. Pipelining depth in practice is a handful; beyond the bound
// new requests are not remembered and their responses are decoded as
// answers to GET.
const maxQueued = 256

// Conn holds the state shared by both directions of one HTTP/1.x
// connection: the queue of outstanding requests and a pending protocol
// switch. It is not safe for concurrent use.
type Conn struct {
	req, resp stream
	queue     [maxQueued]reqFlags
	head, n   int
}

// NewConn returns the decoders' shared state for one connection. Zero
// fields of l take their values from decoder.DefaultLimits.
func NewConn(l decoder.Limits) *Conn {
	c := &Conn{}
	lim := normalize(l)
	c.req = stream{conn: c, lim: lim}
	c.resp = stream{conn: c, lim: lim, resp: true}
	return c
}

// Requests returns the decoder of the client→server direction.
func (c *Conn) Requests() decoder.Decoder { return &c.req }

// Responses returns the decoder of the server→client direction.
func (c *Conn) Responses() decoder.Decoder { return &c.resp }

// Detach stops the decoder of dir (0 requests, 1 responses) and returns the
// bytes it buffered but did not decode: after a response that carried
// Message.Upgrade, the first bytes of the new protocol. The decoder ignores
// everything fed to it afterwards.
func (c *Conn) Detach(dir int) []byte {
	var s *stream
	switch dir {
	case 0:
		s = &c.req
	case 1:
		s = &c.resp
	default:
		return nil
	}
	b := s.buf
	*s = stream{conn: c, lim: s.lim, resp: s.resp, st: stDetached}
	return b
}

func (c *Conn) push(f reqFlags) {
	if c.n == maxQueued {
		return
	}
	c.queue[(c.head+c.n)%maxQueued] = f
	c.n++
}

// pop returns the flags of the oldest outstanding request, zero (a GET) if
// none is known: the capture may have started after the request.
func (c *Conn) pop() reqFlags {
	if c.n == 0 {
		return 0
	}
	f := c.queue[c.head]
	c.head = (c.head + 1) % maxQueued
	c.n--
	return f
}

// forget drops the outstanding requests: responses were lost, so which
// request the next response answers is unknown.
func (c *Conn) forget() { c.head, c.n = 0, 0 }

// switchProtocols stops both directions after the response being finished
// switched the connection to another protocol.
func (c *Conn) switchProtocols() {
	c.req.switchNow()
	c.resp.switchNow()
}

// limits are decoder.Limits with defaults applied.
type limits struct {
	header, body, buffer, raw int
	// stream: emit messages whose body is still arriving in parts of at
	// most part bytes.
	stream bool
	part   int
	after  int64
	errs   decoder.ErrorCounter
}

// count reports a failure (see decoder.Reason).
func (l limits) count(r decoder.Reason) {
	if l.errs != nil {
		l.errs.CountError(r)
	}
}

func normalize(l decoder.Limits) limits {
	d := decoder.DefaultLimits()
	pick := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	lim := limits{
		header: pick(l.MaxHeaderBytes, d.MaxHeaderBytes),
		body:   pick(l.MaxBodyBytes, d.MaxBodyBytes),
		buffer: pick(l.MaxBufferBytes, d.MaxBufferBytes),
		raw:    pick(l.RawFlushBytes, d.RawFlushBytes),
		stream: l.StreamParts,
		part:   pick(l.MaxPartBytes, d.MaxPartBytes),
		after:  int64(cmp.Or(l.StreamAfter, d.StreamAfter)),
		errs:   l.Errors,
	}
	// A header section waits in the input buffer until it is complete.
	lim.header = min(lim.header, lim.buffer)
	return lim
}

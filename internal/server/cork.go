package server

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
)

// corkConn holds a stream client's writes back while its writer has more
// entries queued (client.pump), so a batch of WebSocket messages, which
// coder/websocket flushes one by one, goes out in one write: one system
// call and one wake-up of the client per batch instead of per message.
// Under h2load these per-message writes were the largest part of tlstap's
// CPU after decoding (docs/benchmarks.md, issue 19, session 5). Uncorked,
// which is whenever the writer's queue is empty, it writes through.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// corkMax bounds what a corked connection holds: a longer batch goes out
// in writes of about this size.
const corkMax = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked && len(c.buf)+len(p) > corkMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if c.corked && len(p) <= corkMax {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// cork holds writes back until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes out what was held back and lets later writes through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

// corkListener makes every accepted connection a corkConn (below TLS, so
// a batch is also one write of TLS records).
type corkListener struct{ net.Listener }

func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &corkConn{Conn: c}, nil
}

type corkKey struct{}

// withCork is http.Server.ConnContext: it lets a WebSocket handler find
// its connection's corkConn (r.Context()).
func withCork(ctx context.Context, c net.Conn) context.Context {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	if cc, ok := c.(*corkConn); ok {
		return context.WithValue(ctx, corkKey{}, cc)
	}
	return ctx
}

// corkOf returns the request's corkConn, or nil.
func corkOf(ctx context.Context) *corkConn {
	cc, _ := ctx.Value(corkKey{}).(*corkConn)
	return cc
}

package sink

import (
	"bufio"
	"context"
	"io"
	"net"
	"time"
)

type tcpConn struct {
	c       net.Conn
	w       *bufio.Writer
	timeout time.Duration
	done    chan struct{}
}

func dialTCP(ctx context.Context, hostport string, o *Options) (conn, error) {
	d := net.Dialer{Timeout: o.DialTimeout, KeepAlive: 15 * time.Second}
	dial := d.DialContext
	if o.DialContext != nil {
		dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
		defer cancel()
		ctx, dial = dctx, o.DialContext
	}
	c, err := dial(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	t := &tcpConn{c: c, w: bufio.NewWriterSize(c, 64<<10), timeout: o.WriteTimeout, done: make(chan struct{})}
	// The peer never sends; reading only tells us when it goes away, so
	// the next write fails at once instead of vanishing into a socket
	// the peer has already closed.
	go func() {
		defer close(t.done)
		io.Copy(io.Discard, c)
		c.SetWriteDeadline(time.Unix(1, 0))
	}()
	return t, nil
}

func (t *tcpConn) write(_ context.Context, b []byte, _ bool) error {
	t.c.SetWriteDeadline(time.Now().Add(t.timeout))
	_, err := t.w.Write(b)
	return err
}

func (t *tcpConn) flush() error {
	t.c.SetWriteDeadline(time.Now().Add(t.timeout))
	return t.w.Flush()
}

func (t *tcpConn) close() error {
	err := t.c.Close()
	<-t.done
	return err
}

package sink

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

type wsConn struct {
	c      *websocket.Conn
	closed context.Context
	opts   *Options
}

func dialWS(ctx context.Context, addr string, o *Options) (conn, error) {
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	var hc *http.Client
	if o.TLS != nil || o.DialContext != nil {
		t := &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: o.DialContext}
		if o.TLS != nil {
			t.TLSClientConfig = o.TLS.Clone()
		}
		hc = &http.Client{Transport: t}
	}
	c, _, err := websocket.Dial(dctx, addr, &websocket.DialOptions{
		HTTPClient:      hc,
		HTTPHeader:      http.Header{"User-Agent": {"tlstap"}},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	// CloseRead answers pings and notices the peer closing; the sink
	// itself never reads.
	return &wsConn{c: c, closed: c.CloseRead(context.Background()), opts: o}, nil
}

func (w *wsConn) write(ctx context.Context, b []byte, binary bool) error {
	if err := w.closed.Err(); err != nil {
		return context.Cause(w.closed)
	}
	typ := websocket.MessageText
	if binary {
		typ = websocket.MessageBinary
	}
	wctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	defer cancel()
	return w.c.Write(wctx, typ, b)
}

func (*wsConn) flush() error { return nil }

func (w *wsConn) close() error {
	if w.closed.Err() != nil {
		return w.c.CloseNow()
	}
	return w.c.Close(websocket.StatusNormalClosure, "")
}

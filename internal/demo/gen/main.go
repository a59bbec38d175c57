// Command gen synthesises the demo recording from real traffic between
// real client and server implementations on loopback. See package demo.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/recording"
)

func main() {
	out := flag.String("o", "demo.rec", "output recording")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

// proc is the invented identity of a traced client process.
type proc struct {
	pid, tid uint32
	comm     string
	uid      uint32
}

// recorder collects chunks from every traced connection.
type recorder struct {
	mu     sync.Mutex
	chunks []capture.Chunk
	conns  uint64
	fds    int32
}

// tracedConn records every Read and Write as the client process's SSL
// calls would have been seen by tlstap.
type tracedConn struct {
	net.Conn
	r    *recorder
	p    proc
	id   uint64
	fd   int32
	once sync.Once
}

func (r *recorder) wrap(c net.Conn, p proc) net.Conn {
	r.mu.Lock()
	r.conns++
	r.fds++
	id := 0x55d0c0a00000 + r.conns*0x1400
	fd := 4 + r.fds
	r.mu.Unlock()
	return &tracedConn{Conn: c, r: r, p: p, id: id, fd: fd}
}

func (t *tracedConn) add(dir capture.Direction, kind capture.Kind, b []byte) {
	local, _ := netip.ParseAddrPort(t.LocalAddr().String())
	remote, _ := netip.ParseAddrPort(t.RemoteAddr().String())
	c := capture.Chunk{
		Time: time.Now().UnixNano(), PID: t.p.pid, TID: t.p.tid, UID: t.p.uid, Comm: t.p.comm,
		FD: t.fd, Conn: t.id, Local: local, Remote: remote, Dir: dir, Kind: kind,
		TLSVersion: 0x0304, Data: append([]byte(nil), b...),
	}
	t.r.mu.Lock()
	t.r.chunks = append(t.r.chunks, c)
	t.r.mu.Unlock()
}

func (t *tracedConn) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if n > 0 {
		t.add(capture.Read, capture.Data, b[:n])
	}
	return n, err
}

func (t *tracedConn) Write(b []byte) (int, error) {
	// Record before sending: once the bytes are out, the peer's answer
	// may be read (and recorded) by another goroutine before Write returns.
	if len(b) > 0 {
		t.add(capture.Write, capture.Data, b)
	}
	return t.Conn.Write(b)
}

func (t *tracedConn) Close() error {
	t.once.Do(func() { t.add(capture.Write, capture.Close, nil) })
	return t.Conn.Close()
}

func run(out string) error {
	rec := &recorder{}
	if err := http1(rec); err != nil {
		return fmt.Errorf("http/1.1: %w", err)
	}
	pause()
	if err := h2(rec); err != nil {
		return fmt.Errorf("http/2: %w", err)
	}
	pause()
	if err := ws(rec); err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	pause()
	if err := binaryProto(rec); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w, err := recording.NewWriter(f, "tlstap demo generator (internal/demo/gen)")
	if err != nil {
		return err
	}
	for i := range rec.chunks {
		if err := w.Write(&rec.chunks[i]); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	log.Printf("wrote %d chunks to %s", len(rec.chunks), out)
	return f.Close()
}

func pause() { time.Sleep(150 * time.Millisecond) }

// listen serves h on a fresh loopback listener of network ("tcp4"/"tcp6").
func listen(network, addr string) (net.Listener, error) { return net.Listen(network, addr) }

// ---- HTTP/1.1: keep-alive, JSON, gzip, chunked, POST, 404 ----

func shopHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>shop</title><h1>Welcome to the demo shop</h1>\n")
	})
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		fmt.Fprint(gz, `{"products":[`)
		for i := 1; i <= 20; i++ {
			if i > 1 {
				fmt.Fprint(gz, ",")
			}
			fmt.Fprintf(gz, `{"id":%d,"name":"Product %d","price_cents":%d}`, i, i, 999+i*100)
		}
		fmt.Fprint(gz, "]}\n")
		gz.Close()
	})
	mux.HandleFunc("POST /api/login", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=4f3c2a1b; Path=/; HttpOnly; Secure")
		sum := sha256.Sum256(body)
		fmt.Fprintf(w, `{"ok":true,"token":"%x"}`+"\n", sum[:8])
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "event: tick\ndata: {\"n\":%d}\n\n", i)
			fl.Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	return mux
}

func http1(rec *recorder) error {
	ln, err := listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: shopHandler()}
	go srv.Serve(ln)
	defer srv.Close()

	curl := proc{pid: 4242, tid: 4242, comm: "curl", uid: 1000}
	tr := &http.Transport{
		DisableCompression: true, // send Accept-Encoding ourselves, like curl --compressed
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return rec.wrap(c, curl), nil
		},
	}
	client := &http.Client{Transport: tr}
	base := "http://" + ln.Addr().String()
	reqs := []struct {
		method, path, ctype, body string
	}{
		{"GET", "/", "", ""},
		{"GET", "/api/products", "", ""},
		{"POST", "/api/login", "application/json", `{"user":"alice","password":"s3cret"}`},
		{"GET", "/api/events", "", ""},
		{"GET", "/missing", "", ""},
	}
	for _, rq := range reqs {
		req, _ := http.NewRequest(rq.method, base+rq.path, strings.NewReader(rq.body))
		if rq.body == "" {
			req.Body = nil
		}
		req.Host = "shop.example.com"
		req.Header.Set("User-Agent", "curl/7.88.1")
		req.Header.Set("Accept", "*/*")
		req.Header.Set("Accept-Encoding", "gzip")
		if rq.ctype != "" {
			req.Header.Set("Content-Type", rq.ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(40 * time.Millisecond)
	}
	tr.CloseIdleConnections()
	return nil
}

// ---- HTTP/2 (h2c over loopback IPv6): concurrent streams ----

func h2(rec *recorder) error {
	ln, err := listen("tcp6", "[::1]:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		time.Sleep(10 * time.Millisecond)
		fmt.Fprintf(w, `{"id":%q,"name":"user-%s","roles":["reader"]}`+"\n", r.PathValue("id"), r.PathValue("id"))
	})
	mux.HandleFunc("GET /v1/report", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		fmt.Fprintln(gz, "day,orders,revenue")
		for d := 1; d <= 30; d++ {
			fmt.Fprintf(gz, "2026-11-%02d,%d,%d.%02d\n", d, 100+d*7, 2000+d*113, d)
		}
		gz.Close()
	})
	mux.HandleFunc("POST /v1/orders", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"order":"ord_1029","received_bytes":%d}`+"\n", len(body))
	})
	// HTTP/2 with prior knowledge (h2c): the bytes TLS+ALPN "h2" carries.
	var h2only http.Protocols
	h2only.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &h2only}
	go srv.Serve(ln)
	defer srv.Close()

	client := proc{pid: 5150, tid: 5151, comm: "python3", uid: 1000}
	tr := &http.Transport{
		Protocols:          &h2only,
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return rec.wrap(c, client), nil
		},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	base := "http://" + ln.Addr().String()
	do := func(method, path, body string) error {
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rb)
		req.Host = "api.example.com"
		req.Header.Set("User-Agent", "python-httpx/0.27")
		req.Header.Set("Accept-Encoding", "gzip")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	// Warm the connection so every concurrent stream shares it.
	if err := do("GET", "/v1/users/1", ""); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 2; i <= 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- do("GET", fmt.Sprintf("/v1/users/%d", i), "")
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); errs <- do("GET", "/v1/report", "") }()
	go func() {
		defer wg.Done()
		errs <- do("POST", "/v1/orders", `{"items":[{"sku":"A-1","qty":2}],"currency":"EUR"}`)
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- WebSocket with permessage-deflate ----

func ws(rec *recorder) error {
	ln, err := listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionContextTakeover})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			reply := msg
			if typ == websocket.MessageText {
				reply = []byte(`{"echo":` + string(msg) + `,"server_time":"2026-11-25T12:00:00Z"}`)
			}
			if err := c.Write(ctx, typ, reply); err != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	node := proc{pid: 6060, tid: 6060, comm: "node", uid: 1000}
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return rec.wrap(c, node), nil
		},
	}}
	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/chat", &websocket.DialOptions{
		HTTPClient:      hc,
		Host:            "chat.example.com",
		CompressionMode: websocket.CompressionContextTakeover,
	})
	if err != nil {
		return err
	}
	msgs := []string{`{"type":"hello","user":"alice"}`, `{"type":"message","text":"hi everyone"}`, `{"type":"message","text":"hi everyone"}`}
	for _, m := range msgs {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			return err
		}
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
		time.Sleep(30 * time.Millisecond)
	}
	bin := make([]byte, 64)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	if err := c.Write(ctx, websocket.MessageBinary, bin); err != nil {
		return err
	}
	if _, _, err := c.Read(ctx); err != nil {
		return err
	}
	// Ping needs a reader for the pong; CloseRead provides one.
	c.CloseRead(ctx)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		return err
	}
	return c.Close(websocket.StatusNormalClosure, "bye")
}

// ---- A binary protocol: length-prefixed records ----

func binaryProto(rec *recorder) error {
	ln, err := listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			var n uint32
			if err := binary.Read(br, binary.BigEndian, &n); err != nil {
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			// Reply with the record reversed, as an opaque binary payload.
			for i, j := 0, len(body)-1; i < j; i, j = i+1, j-1 {
				body[i], body[j] = body[j], body[i]
			}
			binary.Write(c, binary.BigEndian, n)
			c.Write(body)
		}
	}()
	raw, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	c := rec.wrap(raw, proc{pid: 7070, tid: 7071, comm: "redis-cli", uid: 0})
	defer c.Close()
	for i := 0; i < 3; i++ {
		var b bytes.Buffer
		payload := []byte{0x00, 0x01, 0xfe, 0xff, byte(i), 0x80, 0x81}
		binary.Write(&b, binary.BigEndian, uint32(len(payload)))
		b.Write(payload)
		if _, err := c.Write(b.Bytes()); err != nil {
			return err
		}
		reply := make([]byte, 4+len(payload))
		if _, err := io.ReadFull(c, reply); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // longer than the idle timeout: one event per record
	}
	return nil
}

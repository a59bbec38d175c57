package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// The observers (-observer rt) read both outputs on threads of their own at
// real-time priority, with blocking reads, and time each line or message by
// the read that delivered its last byte. The figure is then when tlstap's
// write reached the pipe or the socket, not when the bench's own thread
// next got a CPU: on two vCPUs shared with curl, nginx and tlstap, a woken
// reader of normal priority waited behind them for up to ~9 ms (the bench's
// run queue, not tlstap's latency; docs/benchmarks.md, session 7).

// spareProcs is how many Ps the bench keeps beyond the CPUs (main sets
// GOMAXPROCS). An observer blocked in read(2) is in a system call, and the
// runtime hands its P to other goroutines; when the read returns, Go code
// (the timestamp) runs only once the thread has a P again. With GOMAXPROCS
// at the CPU count (2) and every P taken, the observer's thread went back to
// sleep until another of the bench's threads happened to schedule its
// goroutine: a trace (perf sched, docs/benchmarks.md, session 10) showed
// the stdout observer return from a read, sleep 1.5 ms with three more lines
// in its pipe, and be woken by the bench's goroutine that waited for curl's
// exit. Idle Ps cost nothing; with some always free, exitsyscall takes one
// at once, and the runtime does not take a P away from a thread in a system
// call (its first 10 ms) while others are idle.
const spareProcs = 4

// realtime locks the calling goroutine to its thread and makes the thread
// SCHED_FIFO, for the rest of the goroutine's life: the thread is never
// unlocked, so the runtime retires it when the goroutine ends.
func realtime() error {
	runtime.LockOSThread()
	return unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 50}, 0)
}

// stampedReader records when each Read returned.
type stampedReader struct {
	r    io.Reader
	last int64 // Unix ns
}

func (s *stampedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.last = time.Now().UnixNano()
	return n, err
}

// readStdoutRT is readStdout on a real-time thread. r must be in blocking
// mode (startTool), so the read blocks this thread in the kernel and the
// pipe write wakes it directly.
func (t *tool) readStdoutRT(r io.Reader) {
	if err := realtime(); err != nil {
		fmt.Fprintln(os.Stderr, "latency: stdout observer not real-time:", err)
	}
	sr := &stampedReader{r: r}
	sc := bufio.NewScanner(sr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		// The Scanner reads only when it holds no whole line, so the
		// last read delivered this line's end.
		t.arrived(bytes.Clone(sc.Bytes()), sr.last, false)
	}
}

// arrival is an output the observer read, not parsed yet: the real-time
// observers only read, time and copy, so that parsing a line or a message
// (tens of µs on these vCPUs) never preempts tlstap between its writes.
type arrival struct {
	b      []byte
	now    int64 // Unix ns
	stream bool
}

// arrived queues one line of standard output (stream false) or one stream
// message that arrived at now; parse reads it later. b is kept: a caller
// whose buffer is reused (a Scanner's) passes a copy.
func (t *tool) arrived(b []byte, now int64, stream bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, arrival{b: b, now: now, stream: stream})
}

// parse turns the queued arrivals into samples. t.mu must be held.
func (t *tool) parse() {
	for _, a := range t.pending {
		if !a.stream {
			t.line(a.b, a.now)
			continue
		}
		var m eventpb.LogEntry
		if proto.Unmarshal(a.b, &m) == nil {
			t.message(&m, a.now)
		}
	}
	t.pending = t.pending[:0]
}

// line records one JSON line of standard output that arrived at now.
// t.mu must be held.
func (t *tool) line(b []byte, now int64) {
	var ev struct {
		Timestamp int64  `json:"timestamp"`
		Pname     string `json:"pname"`
		Type      int    `json:"type"`
	}
	if json.Unmarshal(b, &ev) != nil || ev.Timestamp == 0 {
		return
	}
	d := time.Duration(now - ev.Timestamp)
	t.stdout = append(t.stdout, d)
	t.samples = append(t.samples, sample{output: "stdout", pname: ev.Pname, typ: ev.Type, ts: ev.Timestamp, d: d})
	t.lines++
}

// message records one stream message that arrived at now. t.mu must be
// held.
func (t *tool) message(m *eventpb.LogEntry, now int64) {
	ev := m.GetEventPayload()
	if ev == nil {
		return
	}
	d := time.Duration(now - ev.GetTimestamp())
	t.stream = append(t.stream, d)
	t.samples = append(t.samples, sample{output: "stream", pname: ev.GetPname(), typ: int(ev.GetType()), ts: ev.GetTimestamp(), d: d})
}

// dialStreamRT connects a stream subscriber whose socket is read with
// blocking reads, for readStreamRT.
func dialStreamRT(ctx context.Context, url string) (*websocket.Conn, *blockingConn, error) {
	var bc *blockingConn
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		// File returns a duplicate in blocking mode; the socket lives on
		// in it once c is closed.
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			return nil, err
		}
		bc = &blockingConn{f: f, fd: int(f.Fd()), local: c.LocalAddr(), remote: c.RemoteAddr()}
		return bc, nil
	}}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		return nil, nil, err
	}
	ws.SetReadLimit(64 << 20)
	return ws, bc, nil
}

// readStreamRT reads the stream on a real-time thread: coder/websocket
// reads in the caller's goroutine, so every read of the socket blocks this
// thread, which the arriving segment wakes directly.
func (t *tool) readStreamRT(ctx context.Context, ws *websocket.Conn, bc *blockingConn) {
	defer ws.CloseNow()
	if err := realtime(); err != nil {
		fmt.Fprintln(os.Stderr, "latency: stream observer not real-time:", err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		// A message's last byte came with the latest read: later
		// messages already buffered are read without one.
		t.arrived(b, bc.last.Load(), true) // ws.Read returns a new slice per message
	}
}

// blockingConn is a net.Conn over a blocking socket descriptor that
// records when each read returned. Deadlines are not supported (the bench
// needs none); Close shuts the socket down, which ends a blocked read.
type blockingConn struct {
	f             *os.File
	fd            int
	local, remote net.Addr
	last          atomic.Int64
	closed        atomic.Bool
}

func (c *blockingConn) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(c.fd, p)
		c.last.Store(time.Now().UnixNano())
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c *blockingConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(c.fd, p[written:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

func (c *blockingConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	return c.f.Close()
}

func (c *blockingConn) LocalAddr() net.Addr                { return c.local }
func (c *blockingConn) RemoteAddr() net.Addr               { return c.remote }
func (c *blockingConn) SetDeadline(t time.Time) error      { return nil }
func (c *blockingConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *blockingConn) SetWriteDeadline(t time.Time) error { return nil }

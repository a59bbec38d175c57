package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/tlstap/tlstap/internal/broker"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// HeartbeatMessage is the message field of every heartbeat.
const HeartbeatMessage = "tlstap"

// wsHandler upgrades stream requests. Authentication has already happened
// in the middleware; here are the origin policy, the query and the client
// cap.
func (s *Server) wsHandler(listener string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, reason := s.originCheck(listener, r); !ok {
			http.Error(w, "403 forbidden: "+reason, http.StatusForbidden)
			return
		}
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			s.m.rejected["bad_request"].Inc()
			http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !s.admit() {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "503 service unavailable: too many clients or shutting down", http.StatusServiceUnavailable)
			return
		}
		defer s.leave()
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			// Origins were judged above by originCheck: coder/websocket's
			// own check would refuse the eCaptureQ GUI, whose Origin
			// (http://localhost/) never matches the Host it dials.
			InsecureSkipVerify: true,
		})
		if err != nil {
			return // Accept wrote the response
		}
		s.m.total[listener].Inc()
		g := s.m.clients[listener]
		g.Add(1)
		defer g.Add(-1)
		s.log.Debug("client connected", "listener", listener, "remote", r.RemoteAddr)
		reason := s.serveConn(ws, &q, corkOf(r.Context()))
		s.log.Debug("client disconnected", "listener", listener, "remote", r.RemoteAddr, "reason", reason)
	})
}

// originCheck applies the listener's Origin (and, on the eCaptureQ
// listener, Host) policy, counting and logging each refusal.
func (s *Server) originCheck(listener string, r *http.Request) (bool, string) {
	var ok, badHost bool
	var reason string
	if listener == listenerMain {
		ok, reason = originAllowed(r, s.opts.AllowOrigins)
	} else {
		ok, reason, badHost = ecqAllowed(r, s.opts.AllowOrigins, s.ecq.Addr)
	}
	if ok {
		return true, ""
	}
	if badHost {
		s.m.rejected["forbidden_host"].Inc()
	} else {
		s.m.rejected["forbidden_origin"].Inc()
	}
	s.log.Warn("refused WebSocket upgrade", "listener", listener, "remote", r.RemoteAddr,
		"origin", r.Header.Get("Origin"), "host", r.Host, "reason", reason)
	return false, reason
}

// admit registers a client unless the server is shutting down or full. The
// WaitGroup is only added to under mu while not closing, so Run's Wait
// never races with an Add.
func (s *Server) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.m.rejected["shutting_down"].Inc()
		return false
	}
	if s.nclients.Load() >= int64(s.opts.MaxClients) {
		s.m.rejected["too_many_clients"].Inc()
		return false
	}
	s.nclients.Add(1)
	s.clients.Add(1)
	return true
}

func (s *Server) leave() {
	s.nclients.Add(-1)
	s.clients.Done()
}

// client is one WebSocket connection being served.
type client struct {
	s    *Server
	ws   *websocket.Conn
	cork *corkConn // nil: every message is written at once
	// writing is the Unix ns time the current write started, 0 when idle;
	// the keeper reads it to find clients that stopped reading.
	writing atomic.Int64
	hbCount int64
	// slow is set by the keeper when it disconnected the client.
	slow atomic.Bool
}

// serveConn streams to ws until the client leaves, stops reading or the
// server shuts down, and returns why. Three goroutines serve a client:
// this one writes entries, a reader discards what the client sends, and a
// keeper writes heartbeats and watches for stalled writes. Both helpers
// end before serveConn returns.
func (s *Server) serveConn(ws *websocket.Conn, q *Query, cork *corkConn) string {
	ws.SetReadLimit(s.opts.ReadLimit)
	c := &client{s: s, ws: ws, cork: cork}
	ctx, cancel := context.WithCancel(s.connCtx)
	defer cancel()

	// Without since, resume from the newest event published before the
	// subscription: the broker replays anything published in between, so
	// the stream starts without a gap right after the last_seq the first
	// heartbeat announces, and a client can later resume from there.
	start := s.b.LastSeq()
	since := start
	var restarted *broker.Entry
	if q.HasSince {
		since = q.Since
		if since > start {
			// Sequence numbers restart with every run: a resume point
			// ahead of the newest event means the client saw an earlier
			// run. Everything this run retains is new to it.
			restarted = broker.Notice(fmt.Sprintf("resume: seq %d is ahead of this run's newest event %d; the server restarted, replaying this run from the start", since, start))
			since = 0
		}
	}
	sub := s.b.Subscribe(broker.SubOptions{
		Name:       "ws",
		Queue:      s.opts.ClientQueue,
		QueueBytes: s.opts.ClientQueueBytes,
		Policy:     broker.Drop,
		Filter:     q.Match,
		Backlog:    q.Logs,
		Resume:     true,
		Since:      since,
	})
	defer sub.Close()

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel() // the client went away: stop writing
		c.discard()
	}()

	err := c.heartbeat(start)
	if err == nil && restarted != nil {
		err = c.write(restarted.Bytes)
	}
	if err == nil {
		writerDone := make(chan struct{})
		keeperDone := make(chan struct{})
		go func() {
			defer close(keeperDone)
			c.keep(ctx, writerDone)
		}()
		err = c.pump(ctx, sub)
		close(writerDone)
		<-keeperDone
	}

	reason := "client closed"
	switch {
	case c.slow.Load():
		reason = "too slow"
	case s.connCtx.Err() != nil || errors.Is(err, broker.ErrClosed):
		reason = "shutdown"
		_ = ws.Close(websocket.StatusGoingAway, "tlstap server shutting down")
	default:
		if ctx.Err() == nil {
			reason = err.Error()
		}
		_ = ws.CloseNow()
	}
	<-readDone
	return reason
}

// pump writes the subscription's entries until ctx ends, the broker
// closes or a write fails.
//
// While more entries are queued behind the one it writes, the connection
// is corked, so a batch (the events of one drain of the capture ring,
// which the broker wakes the pump for once) goes out in one write; it is
// uncorked as soon as the queue is empty, so no message waits for a later
// one, and before the pump returns, so the close frame goes out.
func (c *client) pump(ctx context.Context, sub *broker.Subscription) (err error) {
	corked := false
	defer func() {
		if corked {
			if uerr := c.uncork(); err == nil {
				err = uerr
			}
		}
	}()
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if !corked && c.cork != nil && sub.Len() > 0 {
			c.cork.cork()
			corked = true
		}
		if err := c.write(e.Bytes); err != nil {
			return err
		}
		if corked && sub.Len() == 0 {
			corked = false
			if err := c.uncork(); err != nil {
				return err
			}
		}
	}
}

// uncork writes out what the corked connection held back, watched by the
// keeper like any write.
func (c *client) uncork() error {
	c.writing.Store(time.Now().UnixNano())
	err := c.cork.uncork()
	c.writing.Store(0)
	return err
}

// write sends one message. It carries no deadline of its own (which would
// cost a timer per message); the keeper watches c.writing instead.
func (c *client) write(p []byte) error {
	c.writing.Store(time.Now().UnixNano())
	err := c.ws.Write(context.Background(), websocket.MessageBinary, p)
	c.writing.Store(0)
	if err == nil {
		c.s.m.sent.Inc()
		c.s.m.sentB.Add(uint64(len(p)))
	}
	return err
}

// heartbeat writes the next heartbeat of this connection.
func (c *client) heartbeat(lastSeq uint64) error {
	c.hbCount++
	b, err := proto.Marshal(&eventpb.LogEntry{
		LogType: eventpb.LogType_LOG_TYPE_HEARTBEAT,
		Payload: &eventpb.LogEntry_HeartbeatPayload{HeartbeatPayload: &eventpb.Heartbeat{
			Timestamp: time.Now().UnixNano(),
			Count:     c.hbCount,
			Message:   HeartbeatMessage,
			LastSeq:   lastSeq,
		}},
	})
	if err != nil {
		return err
	}
	// Unlike entries, heartbeats are rare enough to carry their own
	// deadline; when it expires coder/websocket closes the connection.
	ctx, cancel := context.WithTimeout(context.Background(), c.s.opts.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		return err
	}
	c.s.m.heartbeats.Inc()
	c.s.m.sent.Inc()
	c.s.m.sentB.Add(uint64(len(b)))
	return nil
}

// keep writes heartbeats and disconnects the client once a write has been
// blocked for WriteTimeout: its socket buffer is full because it stopped
// reading. The close frame is best effort, since the peer is not reading.
// After shutdown begins the writer gets a short grace instead.
func (c *client) keep(ctx context.Context, writerDone <-chan struct{}) {
	o := c.s.opts
	tick := max(min(o.Heartbeat, o.WriteTimeout/4), 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	nextHB := time.Now().Add(o.Heartbeat)
	limit := o.WriteTimeout
	done := ctx.Done()
	for {
		select {
		case <-writerDone:
			return
		case <-done:
			// The writer leaves on its own unless it is stuck in a write.
			limit = min(limit, time.Second)
			done = nil
			continue
		case now := <-t.C:
			started := c.writing.Load()
			if started != 0 && now.UnixNano()-started >= int64(limit) {
				c.disconnectSlow(now.Sub(time.Unix(0, started)))
				return
			}
			// While the writer is busy the stream itself shows the
			// connection is alive and a heartbeat would queue behind it;
			// it waits, but not beyond one more interval.
			due := !now.Before(nextHB)
			if due && done != nil && (started == 0 || now.Sub(nextHB) >= o.Heartbeat) {
				nextHB = now.Add(o.Heartbeat)
				if err := c.heartbeat(c.s.b.LastSeq()); err != nil {
					if errors.Is(err, context.DeadlineExceeded) {
						c.slow.Store(true)
						c.s.m.slow.Inc()
					}
					return
				}
			}
		}
	}
}

func (c *client) disconnectSlow(blocked time.Duration) {
	c.slow.Store(true)
	c.s.m.slow.Inc()
	c.s.log.Warn("disconnecting WebSocket client that stopped reading", "blocked", blocked.Round(time.Millisecond))
	// Close waits up to 5 s for the frame writer the stuck write holds,
	// then closes the socket, which unblocks that write.
	_ = c.ws.Close(websocket.StatusPolicyViolation, fmt.Sprintf("client too slow: no progress for %s", blocked.Round(time.Second)))
}

// discard reads and drops everything the client sends; reading is what
// answers pings and close frames. A message over ReadLimit closes the
// connection with 1009.
func (c *client) discard() {
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			c.s.log.Debug("client sent an oversized or broken message", slog.Any("err", err))
			return
		}
	}
}

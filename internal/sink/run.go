package sink

import (
	"bytes"
	"context"
	"errors"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/output"
)

// Run writes entries until ctx ends or the broker closes, reconnecting as
// needed. On return whatever is still queued has been written out, within
// DrainTimeout, if the destination is up.
func (s *Sink) Run(ctx context.Context) error {
	defer func() {
		s.abandoned.Add(uint64(s.sub.Len()))
		s.sub.Close()
	}()
	var (
		pending *broker.Entry
		c       conn
		err     error
		bo      = backoff.Backoff{Min: s.opts.BackoffMin, Max: s.opts.BackoffMax}
	)
	defer func() {
		if c != nil {
			s.drain(c, pending)
			c.close()
			s.up.Add(-1)
		}
	}()
	for {
		if c == nil {
			if c, err = s.open(ctx); err != nil {
				c = nil
				if ctx.Err() != nil {
					return nil
				}
				s.errs.Inc()
				wait := bo.Next()
				s.log.Warn("connect failed", "err", err, "retry_in", wait)
				if !backoff.Sleep(ctx, wait) {
					return nil
				}
				continue
			}
			s.connects.Inc()
			s.up.Add(1)
			s.log.Info("connected")
		}
		pending, err = s.pump(ctx, c, pending, &bo)
		switch {
		case errors.Is(err, broker.ErrClosed):
			return nil
		case ctx.Err() != nil:
			return nil
		}
		s.errs.Inc()
		wait := bo.Next()
		s.log.Warn("write failed, reconnecting", "err", err, "retry_in", wait)
		c.close()
		c = nil
		s.up.Add(-1)
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// pump writes entries to c until an error; it returns the entry that could
// not be written so the next connection sends it first.
func (s *Sink) pump(ctx context.Context, c conn, pending *broker.Entry, bo *backoff.Backoff) (*broker.Entry, error) {
	rot, _ := c.(rotator)
	for {
		e := pending
		pending = nil
		if e == nil {
			var err error
			e, err = s.next(ctx, rot)
			if err != nil {
				if ferr := c.flush(); ferr != nil && !errors.Is(err, broker.ErrClosed) && ctx.Err() == nil {
					return nil, ferr
				}
				return nil, err
			}
			if e == nil { // rotation due
				if err := rot.tick(); err != nil {
					return nil, err
				}
				continue
			}
		}
		b, bin, ok := s.encode(e)
		if !ok {
			continue
		}
		if err := c.write(ctx, b, bin); err != nil {
			return e, err
		}
		s.sent.Inc()
		s.written.Add(1)
		// A healthy connection earns a fresh backoff.
		bo.Reset()
		if s.sub.Len() == 0 {
			if err := c.flush(); err != nil {
				return nil, err
			}
		}
	}
}

// next waits for an entry; it returns nil, nil when rot's time has come.
func (s *Sink) next(ctx context.Context, rot rotator) (*broker.Entry, error) {
	if rot == nil {
		return s.sub.Next(ctx)
	}
	due := rot.due()
	if due.IsZero() {
		return s.sub.Next(ctx)
	}
	tctx, cancel := context.WithDeadline(ctx, due)
	defer cancel()
	e, err := s.sub.Next(tctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, nil
	}
	return e, err
}

// drain writes what is still queued without waiting for more.
func (s *Sink) drain(c conn, pending *broker.Entry) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	for {
		e := pending
		pending = nil
		if e == nil {
			if s.sub.Len() == 0 {
				break
			}
			var err error
			if e, err = s.sub.Next(ctx); err != nil {
				break
			}
		}
		if b, bin, ok := s.encode(e); ok {
			if c.write(ctx, b, bin) != nil {
				return
			}
			s.sent.Inc()
			s.written.Add(1)
		}
	}
	c.flush()
}

// encode renders e in the sink's format into a buffer reused across calls.
func (s *Sink) encode(e *broker.Entry) (b []byte, binary, ok bool) {
	s.enc.Reset()
	switch s.opts.Format {
	case Protobuf:
		if !s.stream {
			return e.Bytes, true, true
		}
		s.frame = AppendFrame(s.frame[:0], e.Bytes)
		return s.frame, true, true
	case JSON, Text:
		ev := e.Event()
		if ev == nil {
			return nil, false, false
		}
		r := output.New(s.opts.Format, false)
		if err := r.Render(&s.enc, ev); err != nil {
			return nil, false, false
		}
		b = s.enc.Bytes()
		if !s.stream && s.opts.Format == JSON {
			b = bytes.TrimSuffix(b, []byte("\n")) // one object per message
		}
		return b, false, true
	}
	return nil, false, false
}

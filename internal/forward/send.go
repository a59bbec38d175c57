package forward

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/broker"
)

// send delivers one event, retrying as the mode allows.
func (f *Forwarder) send(ctx context.Context, d *dest, e *broker.Entry) {
	if !f.guard.release(ctx, e.Seq) {
		return
	}
	build, err := f.builder(d, e)
	if err != nil {
		f.skipped.Inc()
		f.n.failed.Add(1)
		f.log.Debug("not forwarded", "seq", e.Seq, "err", err)
		return
	}
	bo := backoff.Backoff{Min: f.opts.BackoffMin, Max: f.opts.BackoffMax}
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			f.skipped.Inc()
			f.n.failed.Add(1)
			f.log.Debug("not forwarded", "seq", e.Seq, "err", err)
			return
		}
		status, err := f.do(ctx, d, req)
		if ctx.Err() != nil {
			f.n.abandoned.Add(1)
			return
		}
		retry := err != nil || f.retryable(status)
		if !retry {
			f.n.delivered.Add(1)
			return
		}
		if attempt >= f.opts.Retries {
			f.failed.Inc()
			f.n.failed.Add(1)
			f.warn(d, "giving up", "seq", e.Seq, "attempts", attempt+1, "status", status, "err", err)
			return
		}
		f.retries.Inc()
		if !backoff.Sleep(ctx, bo.Next()) {
			f.n.abandoned.Add(1)
			return
		}
	}
}

func (f *Forwarder) warn(d *dest, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := d.lastWarn.Load()
	if now-last < int64(warnEvery) || !d.lastWarn.CompareAndSwap(last, now) {
		d.suppressed.Add(1)
		return
	}
	args = append(args, "dest", d.name)
	if n := d.suppressed.Swap(0); n > 0 {
		args = append(args, "similar_unlogged", n)
	}
	f.log.Warn(msg, args...)
}

// retryable: webhooks retry every 5xx. A replayed request has reached the
// real server when it gets a 5xx other than a gateway error, and repeating
// it would repeat its effects, so proxy mode retries only 502 and 504,
// which is how Burp and mitmproxy report an origin they could not reach.
func (f *Forwarder) retryable(status int) bool {
	if f.opts.Mode == Proxy {
		return status == http.StatusBadGateway || status == http.StatusGatewayTimeout
	}
	return status >= 500
}

func (f *Forwarder) do(ctx context.Context, d *dest, req *http.Request) (int, error) {
	resp, err := d.client.Do(req.WithContext(ctx))
	if err != nil {
		f.st.Counter("tlstap_forward_responses_total", "Forwarder responses by status class ('error': no response).", "mode", string(f.opts.Mode), "class", "error").Inc()
		f.log.Debug("send failed", "dest", d.name, "url", req.URL.Redacted(), "err", err)
		return 0, err
	}
	// Drain a little so the connection can be reused; the body is not ours.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	class := strconv.Itoa(resp.StatusCode/100) + "xx"
	f.st.Counter("tlstap_forward_responses_total", "Forwarder responses by status class ('error': no response).", "mode", string(f.opts.Mode), "class", class).Inc()
	f.log.Debug("forwarded", "dest", d.name, "method", req.Method, "url", req.URL.Redacted(), "status", resp.StatusCode)
	return resp.StatusCode, nil
}

// builder returns a function making a fresh request per attempt.
func (f *Forwarder) builder(d *dest, e *broker.Entry) (func() (*http.Request, error), error) {
	if f.opts.Mode == Proxy {
		r, err := ParseReplay(e.Event(), f.opts.Scheme)
		if err != nil {
			return nil, err
		}
		mark(r.Header.Set, e.Seq)
		return r.Request, nil
	}
	body, ctype, err := f.webhookBody(e)
	if err != nil {
		return nil, err
	}
	return func() (*http.Request, error) {
		req, err := http.NewRequest(f.opts.Method, d.url.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("User-Agent", "tlstap")
		req.Header.Set("X-Tlstap-Seq", strconv.FormatUint(e.Seq, 10))
		mark(req.Header.Set, e.Seq)
		return req, nil
	}, nil
}

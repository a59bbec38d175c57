package webui

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tlstap/tlstap/internal/broker"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/forward"
)

// ResendOptions configure the "Send to proxy" endpoint.
type ResendOptions struct {
	// Broker holds the retained events a request is taken from.
	Broker *broker.Broker
	// Config returns the running configuration; its proxy-mode
	// forwarders are the only proxies a request may be sent through.
	Config func() config.Config
	// DialContext dials the proxy; tlstap passes one that registers the
	// connection as its own, so the capture never sees it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log records every re-sent request.
	Log *slog.Logger
}

// resendRequest is the body of POST /api/v1/ui/resend.
type resendRequest struct {
	// Seq is the request event's seq.
	Seq uint64 `json:"seq"`
	// Proxy is one configured proxy forwarder's URL; "" means the first.
	Proxy string `json:"proxy"`
	// Confirm must be true: the user was told the request is repeated.
	Confirm bool `json:"confirm"`
}

// resendReply is its answer.
type resendReply struct {
	Proxy  string `json:"proxy"`
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// MountResend serves POST /api/v1/ui/resend behind the token: it sends
// one retained request (types 1 and 2) again, through a configured proxy
// forwarder, exactly as the forwarder's proxy mode would, marked with
// forward.MarkHeader so no forwarder re-sends the copy. A browser may call
// it only from the page's own origin, with a JSON body (which a foreign
// page cannot send without a CORS preflight that is never granted) and
// "confirm": true.
func MountResend(m Mux, o ResendOptions) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m.Handle("POST /api/v1/ui/resend", http.HandlerFunc(o.serve), true)
}

func (o ResendOptions) serve(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, rep resendReply) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(rep)
	}
	if !sameOrigin(r) {
		reply(http.StatusForbidden, resendReply{Error: "403 forbidden: foreign Origin"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		reply(http.StatusUnsupportedMediaType, resendReply{Error: "Content-Type must be application/json"})
		return
	}
	var q resendRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		reply(http.StatusBadRequest, resendReply{Error: "body: " + err.Error()})
		return
	}
	if !q.Confirm {
		reply(http.StatusBadRequest, resendReply{Error: `"confirm": true is required: the request is sent again to the real server`})
		return
	}
	proxy, err := o.pickProxy(q.Proxy)
	if err != nil {
		reply(http.StatusConflict, resendReply{Error: err.Error()})
		return
	}
	var ev *broker.Entry
	if q.Seq > 0 {
		if es := o.Broker.Retained(q.Seq-1, q.Seq, make([]*broker.Entry, 0, 1)); len(es) == 1 {
			ev = es[0]
		}
	}
	if ev == nil || ev.Event() == nil {
		reply(http.StatusNotFound, resendReply{Proxy: proxy.String(), Error: fmt.Sprintf("event %d is not retained any more", q.Seq)})
		return
	}
	if t := ev.Event().GetType(); t != 1 && t != 2 || ev.Event().GetPart() != 0 {
		reply(http.StatusBadRequest, resendReply{Proxy: proxy.String(), Error: fmt.Sprintf("event %d is not a whole HTTP request", q.Seq)})
		return
	}
	rp, err := forward.ParseReplay(ev.Event(), "https")
	if err != nil {
		reply(http.StatusBadRequest, resendReply{Proxy: proxy.String(), Error: "the request cannot be re-sent: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, rp.Method, rp.URL.String(), bytes.NewReader(rp.Body))
	if err != nil {
		reply(http.StatusBadRequest, resendReply{Proxy: proxy.String(), Error: err.Error()})
		return
	}
	req.Header = rp.Header.Clone()
	req.Host = rp.Host
	req.Header.Set(forward.MarkHeader, forward.RunNonce+"-ui-"+strconv.FormatUint(q.Seq, 10))
	o.Log.Warn("web UI: re-sending a captured request through the proxy", "seq", q.Seq, "proxy", proxy.String(),
		"method", rp.Method, "url", rp.URL.String(), "by", r.RemoteAddr)
	resp, err := o.client(proxy).Do(req)
	if err != nil {
		reply(http.StatusBadGateway, resendReply{Proxy: proxy.String(), URL: rp.URL.String(), Error: err.Error()})
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	reply(http.StatusOK, resendReply{Proxy: proxy.String(), URL: rp.URL.String(), Status: resp.StatusCode})
}

// pickProxy returns the configured proxy forwarder named want, or the
// first one.
func (o ResendOptions) pickProxy(want string) (*url.URL, error) {
	var cfg config.Config
	if o.Config != nil {
		cfg = o.Config()
	}
	for _, f := range cfg.Forward {
		if f.Mode != string(forward.Proxy) || (want != "" && f.URL != want) {
			continue
		}
		return url.Parse(f.URL)
	}
	if want != "" {
		return nil, fmt.Errorf("no proxy forwarder %q is configured", want)
	}
	return nil, errors.New("no proxy forwarder is configured (--forward-url URL --forward-mode proxy, or forward[] in the config API)")
}

// client sends through proxy as the forwarders' proxy mode does: the
// proxy's made-up certificates are accepted (that is how Burp and
// mitmproxy see inside TLS), nothing is added or decompressed, and a
// redirect is the server's answer.
func (o ResendOptions) client(proxy *url.URL) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyURL(proxy)
	if o.DialContext != nil {
		t.DialContext = o.DialContext
	}
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // see above
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	// One request per click: no idle connection outlives it.
	t.DisableKeepAlives = true
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// sameOrigin accepts requests without Origin (not a browser) and those
// whose Origin names the Host they were sent to, as the page's own do.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && strings.EqualFold(u.Host, r.Host) && literalHost(r.Host)
}

// literalHost reports whether a Host names an IP address or localhost,
// which no DNS rebinding can point at another server (the rule of the
// stream's Origin check).
func literalHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	return net.ParseIP(strings.Trim(host, "[]")) != nil
}

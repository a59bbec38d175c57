package forward

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Replay is a captured request ready to be sent again.
type Replay struct {
	Method string
	// URL is absolute: scheme, authority and the request target as captured.
	URL *url.URL
	// Host is the Host header to send (may differ from URL.Host in case
	// only).
	Host   string
	Header http.Header
	Body   []byte
}

// hopByHop headers describe the captured connection, not the request;
// Content-Length and Transfer-Encoding are recomputed from the body the
// event carries (already de-chunked).
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Proxy-Authorization": true, "Proxy-Authenticate": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Host": true,
}

// ParseReplay turns a request event (types 1 and 2) into a Replay sent to
// scheme ("https" unless the caller knows better).
//
// The payload is the request rendered as HTTP/1.1 text (HTTP/2 requests
// carry "HTTP/2" as version and their :authority as Host). The authority
// is the Host header, else the event's host field, else the destination
// address. Without a port in the Host header, the scheme's default port is
// used; only an authority taken from the destination address carries the
// destination port.
//
// The body is decoded already (Content-Encoding and chunking removed by the
// decoder), so Content-Encoding is dropped when the event says the body was
// decoded, and Content-Length is set from the body.
func ParseReplay(ev *eventpb.Event, scheme string) (*Replay, error) {
	p := ev.GetPayload()
	head, body, ok := bytes.Cut(p, []byte("\r\n\r\n"))
	if !ok {
		if head, body, ok = bytes.Cut(p, []byte("\n\n")); !ok {
			return nil, errors.New("no end of header section")
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	method, target, ok := parseRequestLine(lines[0])
	if !ok {
		return nil, fmt.Errorf("malformed request line %q", truncate(lines[0]))
	}
	if method == http.MethodConnect {
		return nil, errors.New("CONNECT cannot be replayed")
	}

	r := &Replay{Method: method, Header: make(http.Header), Body: body}
	var host string
	var prev string
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && prev != "" {
			// obs-fold: a continuation of the previous value.
			vs := r.Header[prev]
			vs[len(vs)-1] += " " + strings.TrimSpace(l)
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("malformed header line %q", truncate(l))
		}
		if name == "" {
			// An HTTP/2 pseudo-header rendered as-is (":authority: x").
			pname, pvalue, _ := strings.Cut(value, ":")
			if pname == "authority" && host == "" {
				host = strings.TrimSpace(pvalue)
			}
			prev = ""
			continue
		}
		value = strings.TrimSpace(value)
		if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			prev = ""
			continue
		}
		name = http.CanonicalHeaderKey(name)
		if name == "Host" {
			if host == "" {
				host = value
			}
			prev = ""
			continue
		}
		r.Header[name] = append(r.Header[name], value)
		prev = name
	}
	for _, c := range r.Header.Values("Connection") {
		for f := range strings.SplitSeq(c, ",") {
			r.Header.Del(strings.TrimSpace(f))
		}
	}
	for h := range hopByHop {
		delete(r.Header, h)
	}
	if ev.GetContentEncoding() != "" {
		r.Header.Del("Content-Encoding")
	}

	u := &url.URL{Scheme: scheme}
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		// absolute-form, as sent to a proxy: keep its path, and its
		// authority when no Host header came with it.
		abs, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("bad request target: %w", err)
		}
		if host == "" {
			host = abs.Host
		}
		target = abs.RequestURI()
	}
	if !strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("unsupported request target %q", truncate(target))
	}
	if host == "" {
		host = ev.GetHost()
	}
	authority := host
	if host == "" {
		if ev.GetDstIp() == "" {
			return nil, errors.New("no Host header and no destination address")
		}
		port := ev.GetDstPort()
		if port == 0 {
			port = defaultPort(scheme)
		}
		authority = net.JoinHostPort(ev.GetDstIp(), strconv.Itoa(int(port)))
		host = authority
	}
	if !validAuthority(authority) {
		return nil, fmt.Errorf("bad host %q", truncate(authority))
	}
	u.Host = authority
	ru, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("bad request target: %w", err)
	}
	u.Path, u.RawPath, u.RawQuery = ru.Path, ru.RawPath, ru.RawQuery
	r.URL, r.Host = u, host
	if ev.GetTruncated() {
		// The body is cut: say so where the proxy's user will look.
		r.Header.Set("X-Tlstap-Truncated", "original-length="+strconv.FormatUint(ev.GetOriginalLength(), 10))
	}
	return r, nil
}

func parseRequestLine(l string) (method, target string, ok bool) {
	method, rest, ok1 := strings.Cut(l, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !strings.HasPrefix(proto, "HTTP/") || target == "" {
		return "", "", false
	}
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token, like a header name
		return "", "", false
	}
	return method, target, true
}

func validAuthority(a string) bool {
	if a == "" || strings.ContainsAny(a, "/?#@ \t\\") {
		return false
	}
	if _, err := url.Parse("http://" + a + "/"); err != nil {
		return false
	}
	return true
}

func defaultPort(scheme string) uint32 {
	if scheme == "http" {
		return 80
	}
	return 443
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Request builds the outgoing request; the body is fresh each call, for retries.
func (r *Replay) Request() (*http.Request, error) {
	req, err := http.NewRequest(r.Method, r.URL.String(), bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	req.Host = r.Host
	req.Header = r.Header.Clone()
	if _, ok := req.Header["User-Agent"]; !ok {
		// Without this Go would add its own; replay what was captured.
		req.Header["User-Agent"] = []string{""}
	}
	if len(r.Body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	return req, nil
}

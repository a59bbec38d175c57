package server

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
)

// originAllowed decides whether a browser may open a WebSocket on the main
// listener. Requests without Origin come from non-browser clients and are
// allowed (they still need the token).
//
// Same-origin means the Origin's scheme, host and port equal the
// listener's scheme and the request's Host header, and that Host is an IP
// address or "localhost". The last condition defeats DNS rebinding, where
// a hostile page's own name (and thus Origin and Host alike) resolves to
// 127.0.0.1. Anything else must match Options.AllowOrigins.
func originAllowed(r *http.Request, tls bool, patterns []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	if strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host) && literalHost(r.Host) {
		return true
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// literalHost reports whether a Host header names an IP address or
// localhost, names no DNS server can point elsewhere.
func literalHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

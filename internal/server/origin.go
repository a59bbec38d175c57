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
// listener, and if not, says why. Requests without Origin come from
// non-browser clients and are allowed (they still need the token).
//
// Same-origin means the Origin's host and port equal the request's Host
// header, and that Host is an IP address or "localhost". The scheme label
// is not compared: some native clients (Debian 12's websocket-client)
// send "http://HOST:PORT" for a wss:// URL, and the only page served from
// the listener's own address and port, under either scheme, is tlstap's
// own web UI (package webui), which is meant to open the stream. Requiring a literal Host defeats
// DNS rebinding, where a hostile page's own name (and thus Origin and
// Host alike) resolves to 127.0.0.1. Anything else must match
// Options.AllowOrigins.
func originAllowed(r *http.Request, patterns []string) (ok bool, reason string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true, ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false, "Origin is not a URL with a host"
	}
	if (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")) &&
		strings.EqualFold(u.Host, r.Host) && literalHost(r.Host) {
		return true, ""
	}
	if matchOrigin(u, patterns) {
		return true, ""
	}
	if strings.EqualFold(u.Host, r.Host) {
		return false, "Origin names the listener through a DNS name, not an address (DNS rebinding?); see --allow-origin"
	}
	return false, "foreign Origin; see --allow-origin"
}

// ecqOrigins are the Origins the eCaptureQ GUI presents. The native app
// (tokio-tungstenite) sends exactly "http://localhost/": a browser never
// sends that, because a page's Origin has no path and carries the page's
// own port. The Tauri values are what a webview inside a desktop app
// presents; no web page can.
var ecqOrigins = []string{"http://localhost/", "tauri://localhost", "http://tauri.localhost"}

// ecqAllowed decides whether an upgrade on the eCaptureQ listener comes
// from the GUI or another native client, and if not, says why. That
// listener has no token by default, so the Origin is what keeps web pages
// in a local browser out: they cannot omit or forge it. The Host check
// keeps a rebinding page out even if a future browser sent an Origin we
// accept: its Host would name the attacker's domain.
func ecqAllowed(r *http.Request, patterns []string, own string) (ok bool, reason string, host bool) {
	if !ecqHost(r.Host, own) {
		return false, "Host is neither a loopback address nor localhost", true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true, "", false
	}
	for _, o := range ecqOrigins {
		if origin == o {
			return true, "", false
		}
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && matchOrigin(u, patterns) {
		return true, "", false
	}
	return false, "Origin is not the eCaptureQ GUI's (http://localhost/) nor allowed by --allow-origin", false
}

// ecqHost accepts a Host of localhost or a loopback address, any port, or
// the listener's own address when it is bound to a specific one (a
// non-loopback listener, which needs ?token).
func ecqHost(hostport, own string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if a.Unmap().IsLoopback() {
		return true
	}
	o, err := netip.ParseAddrPort(own)
	return err == nil && !o.Addr().IsUnspecified() && o.Addr().Unmap() == a.Unmap()
}

// matchOrigin reports whether u matches one of the --allow-origin
// patterns: path.Match against host[:port], or scheme://host[:port] if the
// pattern contains "://".
func matchOrigin(u *url.URL, patterns []string) bool {
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

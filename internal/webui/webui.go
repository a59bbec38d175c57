package webui

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// CSP is the page's Content-Security-Policy: scripts, styles and
// connections only from the page's own origin (so no inline script and no
// CDN), images also from blob: URLs the page makes for image bodies, and
// the page may not be framed.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Mux is where handlers are mounted; server.Server's Handle has this
// signature, auth meaning "behind the token check".
type Mux interface {
	Handle(pattern string, h http.Handler, auth bool)
}

// Mount serves the page at / and its assets under /ui/ on m. Neither needs
// the token: they hold no secret, and the page asks for the token.
func Mount(m Mux) {
	m.Handle("GET /{$}", Handler(), false)
	m.Handle("GET /ui/", Handler(), false)
}

// Handler serves the page ("/" is index.html) and its assets ("/ui/NAME").
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			var ok bool
			if name, ok = strings.CutPrefix(r.URL.Path, "/ui/"); !ok || name == "" || path.Clean(name) != name || strings.HasSuffix(name, ".mjs") {
				http.NotFound(w, r)
				return
			}
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// The binary's assets change only with the binary.
		h.Set("Cache-Control", "no-cache")
		w.Write(b)
	})
}

// PageURL turns the main stream URL the server prints
// (wss://HOST:PORT/ws?token=T) into the page's URL, the token in the
// fragment: https://HOST:PORT/#token=T. It returns "" for a URL it does
// not recognise.
func PageURL(streamURL string) string {
	u, err := url.Parse(streamURL)
	if err != nil || u.Host == "" {
		return ""
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	default:
		return ""
	}
	// The server writes the token into its URL unescaped, so read it raw:
	// a '+' in a --token is a plus, not a space.
	var tok string
	for kv := range strings.SplitSeq(u.RawQuery, "&") {
		if v, ok := strings.CutPrefix(kv, "token="); ok {
			if tok, err = url.PathUnescape(v); err != nil {
				tok = v
			}
		}
	}
	u.Path, u.RawQuery, u.Fragment = "/", "", ""
	s := u.String()
	if tok != "" {
		s += "#token=" + url.QueryEscape(tok)
	}
	return s
}

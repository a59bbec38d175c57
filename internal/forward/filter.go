package forward

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Filter selects the events a forwarder sends. Its text form is a comma
// separated list of terms:
//
//	content-type=text/*,host=*.example.com,path=/api/*,method=POST|PUT
//
// A term is key=patterns or key!=patterns, the patterns separated by '|'.
// Terms with the same key and '=' are alternatives (any may match); terms
// with different keys must all match; a '!=' term excludes what it
// matches. A bare pattern without a key is a content type, so
// "application/json,text/*" works as one would guess.
//
// Patterns are globs: '*' matches any run of characters, '/' included, and
// '?' one character. Keys:
//
//	content-type  media type without parameters (charset=…), lower case
//	host          Host or :authority; without a port unless the pattern has one
//	path          path without the query string
//	method        request method (on responses: of the paired request)
//	type          event type name (http1-request, …) or number
//	pname         process name
//
// Everything but path and pname is compared case-insensitively.
type Filter struct {
	src   string
	terms []term
}

type term struct {
	key  string
	neg  bool
	pats []string
}

var filterKeys = map[string]string{
	"content-type": "content-type", "ct": "content-type",
	"host": "host", "path": "path", "method": "method",
	"type": "type", "pname": "pname",
}

// ParseFilter parses the --forward-filter syntax; "" matches everything.
func ParseFilter(s string) (*Filter, error) {
	f := &Filter{src: s}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, pats, neg := "content-type", part, false
		if i := strings.IndexByte(part, '='); i >= 0 {
			key, pats = strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
			if k, ok := strings.CutSuffix(key, "!"); ok {
				key, neg = strings.TrimSpace(k), true
			}
			canon, ok := filterKeys[strings.ToLower(key)]
			if !ok {
				return nil, fmt.Errorf("forward filter %q: unknown key %q (want content-type, host, path, method, type or pname)", s, key)
			}
			key = canon
		}
		t := term{key: key, neg: neg}
		for p := range strings.SplitSeq(pats, "|") {
			p = strings.TrimSpace(p)
			if p == "" {
				return nil, fmt.Errorf("forward filter %q: empty pattern in %q", s, part)
			}
			if key != "path" && key != "pname" {
				p = strings.ToLower(p)
			}
			t.pats = append(t.pats, p)
		}
		f.terms = append(f.terms, t)
	}
	return f, nil
}

// String returns the filter's text form.
func (f *Filter) String() string { return f.src }

// Has reports whether the filter has a term for key.
func (f *Filter) Has(key string) bool {
	for _, t := range f.terms {
		if t.key == key {
			return true
		}
	}
	return false
}

// Match reports whether ev passes the filter.
func (f *Filter) Match(ev *eventpb.Event) bool {
	// Positive terms grouped by key: every key needs one match.
	var seen, matched uint8
	for _, t := range f.terms {
		hit := t.match(ev)
		if t.neg {
			if hit {
				return false
			}
			continue
		}
		bit := keyBit(t.key)
		seen |= bit
		if hit {
			matched |= bit
		}
	}
	return seen == matched
}

func keyBit(key string) uint8 {
	switch key {
	case "content-type":
		return 1
	case "host":
		return 2
	case "path":
		return 4
	case "method":
		return 8
	case "type":
		return 16
	}
	return 32 // pname
}

func (t term) match(ev *eventpb.Event) bool {
	for _, p := range t.pats {
		if t.matchOne(p, ev) {
			return true
		}
	}
	return false
}

func (t term) matchOne(p string, ev *eventpb.Event) bool {
	switch t.key {
	case "content-type":
		return glob(p, mediaType(ev.GetContentType()), true)
	case "host":
		h := ev.GetHost()
		if !strings.Contains(p, ":") {
			h = hostOnly(h)
		}
		return glob(p, h, true)
	case "path":
		path, _, _ := strings.Cut(ev.GetPath(), "?")
		return glob(p, path, false)
	case "method":
		return glob(p, ev.GetMethod(), true)
	case "type":
		typ := decoder.Type(ev.GetType())
		return glob(p, typ.String(), true) || p == strconv.FormatUint(uint64(ev.GetType()), 10)
	case "pname":
		return glob(p, ev.GetPname(), false)
	}
	return false
}

// mediaType returns the media type of a Content-Type value: parameters
// and surrounding space removed. Matching folds case, so no lowering here:
// this runs on the publisher's goroutine and should not allocate.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}

// hostOnly strips a port from host, keeping IPv6 literals whole.
func hostOnly(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		return host[:i] // one colon: host:port; more: a bare IPv6 address
	}
	return host
}

// glob matches s against p, where '*' is any run of bytes and '?' one
// rune; with fold, ASCII letters of s match p's lower-case ones. Linear in
// practice: one '*' is remembered for backtracking.
func glob(p, s string, fold bool) bool {
	var pi, si int
	star, next := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; {
			case c == '*':
				star, next = pi, si
				pi++
				continue
			case c == '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				pi, si = pi+1, si+n
				continue
			case c == s[si] || fold && c == lower(s[si]):
				pi, si = pi+1, si+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		next++
		pi, si = star+1, next
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

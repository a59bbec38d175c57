package forward

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tlstap/tlstap/internal/filter"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Filter selects the events a forwarder sends. It is a filter of the one
// filter model (internal/filter, docs/filters.md); its text is either an
// expression ("~m POST & host=*.example.com") or the older
// --forward-filter syntax, a comma separated list of terms:
//
//	content-type=text/*,host=*.example.com,path=/api/*,method=POST|PUT
//
// An old term is key=patterns or key!=patterns, the patterns separated by
// '|'. Terms with the same key and '=' are alternatives (any may match);
// terms with different keys must all match; a '!=' term excludes what it
// matches. A bare pattern without a key is a content type, so
// "application/json,text/*" works as one would guess. The old keys are
// content-type (ct), host, path, method, type and pname, and each means
// what the key of that name means in the model. How the two syntaxes are
// told apart is in docs/filters.md ("Older spellings").
type Filter struct {
	src string
	m   *filter.Filter
}

// oldKeys are the keys the old syntax knows, and what they are in the model.
var oldKeys = map[string]string{
	"content-type": "content-type", "ct": "content-type",
	"host": "host", "path": "path", "method": "method",
	"type": "type", "pname": "comm",
}

// errNotOld: the text is not in the old syntax (it may be an expression).
var errNotOld = errors.New("not the old syntax")

// ParseFilter parses a --forward-filter, in either syntax; "" matches
// everything.
func ParseFilter(s string) (*Filter, error) {
	if m, err := parseOld(s); err == nil {
		return &Filter{src: s, m: m}, nil
	}
	m, err := filter.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("forward filter %q: %w", s, err)
	}
	return &Filter{src: s, m: m}, nil
}

// parseOld reads the old syntax into the model, or says errNotOld.
func parseOld(s string) (*filter.Filter, error) {
	// Marks of the expression language that the old syntax never had.
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&', '(', ')', '~', '"', '<', '>':
			return nil, errNotOld
		case '!':
			if i+1 >= len(s) || s[i+1] != '=' {
				return nil, errNotOld
			}
		}
	}
	var (
		order []string                        // keys in order of first use
		pos   = map[string][]*filter.Filter{} // alternatives per key
		neg   []*filter.Filter
	)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, pats, isNeg := "content-type", part, false
		if i := strings.IndexByte(part, '='); i >= 0 {
			key, pats = strings.TrimSpace(part[:i]), strings.TrimSpace(part[i+1:])
			if k, ok := strings.CutSuffix(key, "!"); ok {
				key, isNeg = strings.TrimSpace(k), true
			}
			canon, ok := oldKeys[strings.ToLower(key)]
			if !ok {
				return nil, errNotOld
			}
			key = canon
		} else if !strings.Contains(part, "*") && strings.IndexByte(part, '/') <= 0 {
			// Not a media type pattern ("b.com" of "host=a.com,b.com"):
			// as a content type it could never have matched.
			return nil, errNotOld
		}
		var vals []string
		for p := range strings.SplitSeq(pats, "|") {
			p = strings.TrimSpace(p)
			// A pattern with '=' never matched in the old syntax; in an
			// expression it is the next term ("host=a | host=b").
			if p == "" || strings.ContainsRune(p, '=') {
				return nil, errNotOld
			}
			vals = append(vals, p)
		}
		t, err := filter.Term(key, filter.Eq, vals...)
		if err != nil {
			return nil, err
		}
		if isNeg {
			neg = append(neg, filter.Not(t))
			continue
		}
		if _, ok := pos[key]; !ok {
			order = append(order, key)
		}
		pos[key] = append(pos[key], t)
	}
	var all []*filter.Filter
	for _, k := range order {
		all = append(all, filter.Or(pos[k]...))
	}
	return filter.And(append(all, neg...)...), nil
}

// String returns the filter's text as given.
func (f *Filter) String() string { return f.src }

// Expr returns the filter in the model's canonical expression syntax.
func (f *Filter) Expr() string { return f.m.String() }

// Has reports whether the filter tests key anywhere.
func (f *Filter) Has(key string) bool { return f.m.Uses(key) }

// withMethods returns f restricted to the given methods.
func (f *Filter) withMethods(methods ...string) (*Filter, error) {
	t, err := filter.Term("method", filter.Eq, methods...)
	if err != nil {
		return nil, err
	}
	return &Filter{src: f.src, m: filter.And(f.m, t)}, nil
}

// Match reports whether ev passes the filter.
func (f *Filter) Match(ev *eventpb.Event) bool { return f.m.Match(ev) }

package filter

import (
	"errors"
	"fmt"
	"strings"
)

// The older --forward-filter syntax: a comma separated list of terms,
//
//	content-type=text/*,host=*.example.com,path=/api/*,method=POST|PUT
//
// An old term is key=patterns or key!=patterns, the patterns separated by
// '|'. Terms with the same key and '=' are alternatives (any may match);
// terms with different keys must all match; a '!=' term excludes what it
// matches. A bare pattern without a key is a content type. It lives here,
// not in the forwarder, so that config.Validate checks a forward filter
// without depending on the forwarder. How the two syntaxes are told apart
// is in docs/filters.md ("Older spellings").

// ParseForward parses a --forward-filter in either syntax: the older one
// when the text is in it, else an expression. "" matches everything.
func ParseForward(s string) (*Filter, error) {
	if m, err := parseOld(s); err == nil {
		return m, nil
	}
	m, err := Parse(s)
	if err != nil {
		return nil, fmt.Errorf("forward filter %q: %w", s, err)
	}
	return m, nil
}

// oldKeys are the keys the old syntax knows, and what they are in the model.
var oldKeys = map[string]string{
	"content-type": "content-type", "ct": "content-type",
	"host": "host", "path": "path", "method": "method",
	"type": "type", "pname": "comm",
}

// errNotOld: the text is not in the old syntax (it may be an expression).
var errNotOld = errors.New("not the old syntax")

// parseOld reads the old syntax into the model, or says errNotOld.
func parseOld(s string) (*Filter, error) {
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
		order []string                 // keys in order of first use
		pos   = map[string][]*Filter{} // alternatives per key
		neg   []*Filter
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
		t, err := Term(key, Eq, vals...)
		if err != nil {
			return nil, err
		}
		if isNeg {
			neg = append(neg, Not(t))
			continue
		}
		if _, ok := pos[key]; !ok {
			order = append(order, key)
		}
		pos[key] = append(pos[key], t)
	}
	var all []*Filter
	for _, k := range order {
		all = append(all, Or(pos[k]...))
	}
	return And(append(all, neg...)...), nil
}

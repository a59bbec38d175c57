package forward

import (
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

// ParseFilter parses a --forward-filter, in either syntax; "" matches
// everything.
func ParseFilter(s string) (*Filter, error) {
	m, err := filter.ParseForward(s)
	if err != nil {
		return nil, err
	}
	return &Filter{src: s, m: m}, nil
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

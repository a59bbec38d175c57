package filter

import (
	"fmt"
	"strings"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Op is a term's comparison.
type Op string

// The operators. Ne is exactly the negation of Eq: "status!=404" matches a
// request, which has no status, as "!status=404" does.
const (
	Eq       Op = "="
	Ne       Op = "!="
	Contains Op = "~="
	Gt       Op = ">"
	Ge       Op = ">="
	Lt       Op = "<"
	Le       Op = "<="
)

// Bounds that keep a hostile filter (a stream query comes from the
// network) cheap to parse and to run on the publishing goroutine.
const (
	MaxLen   = 4096 // bytes of filter text
	maxDepth = 32   // nested parentheses and negations
)

// Filter is a parsed filter. The zero value and nil match everything.
type Filter struct {
	root node // nil: everything
	// steps is root flattened (flat.go), or one step that walks root
	// when it is not a conjunction of terms; nil when root is. Match
	// judges them as pre and rest (flat.go).
	steps []step
	pre   prefix
	rest  []step
}

// Match reports whether ev is selected. A nil event (a heartbeat or a log
// entry) is never selected: callers decide what non-events get.
func (f *Filter) Match(ev *eventpb.Event) bool {
	// Small enough to inline: every filter is its steps (flat.go); the
	// empty one has none.
	if f == nil || ev == nil {
		return ev != nil
	}
	return matchSteps(&f.pre, f.rest, ev)
}

// Empty reports whether f matches every event.
func (f *Filter) Empty() bool { return f == nil || f.root == nil }

// String returns the canonical expression: aliases and old spellings
// written as key op value, so Parse(f.String()) means the same as f.
func (f *Filter) String() string {
	if f.Empty() {
		return ""
	}
	var b strings.Builder
	f.root.write(&b, precOr)
	return b.String()
}

// Uses reports whether a term of f tests key (a key name or its other
// spelling), anywhere in the expression.
func (f *Filter) Uses(key string) bool {
	k := lookupKey(key)
	if f.Empty() || k == nil {
		return false
	}
	found := false
	walk(f.root, func(t *term) {
		if t.key == k {
			found = true
		}
	})
	return found
}

// Term builds the filter key op values (values are alternatives), as the
// parser would from `key op v1,v2`; it checks key, operator and values the
// same way. It is how the older per-key spellings (stream query
// parameters, watch flags) enter the model.
func Term(key string, op Op, values ...string) (*Filter, error) {
	k := lookupKey(key)
	if k == nil {
		return nil, fmt.Errorf("filter: unknown key %q", key)
	}
	t, msg, _ := newTerm(k, op, values)
	if msg != "" {
		return nil, fmt.Errorf("filter: %s", msg)
	}
	return newFilter(t), nil
}

// And is the conjunction of fs; nil and empty filters are left out.
func And(fs ...*Filter) *Filter { return combine(fs, func(ns []node) node { return andNode(ns) }) }

// Or is the disjunction of fs. An empty filter in it matches everything,
// so the result does too.
func Or(fs ...*Filter) *Filter {
	for _, f := range fs {
		if f.Empty() {
			return &Filter{}
		}
	}
	return combine(fs, func(ns []node) node { return orNode(ns) })
}

// Not negates f. The negation of the empty filter matches no event.
func Not(f *Filter) *Filter {
	if f.Empty() {
		return newFilter(noneNode{})
	}
	return newFilter(notNode{f.root})
}

func combine(fs []*Filter, mk func([]node) node) *Filter {
	var ns []node
	for _, f := range fs {
		if !f.Empty() {
			ns = append(ns, f.root)
		}
	}
	switch len(ns) {
	case 0:
		return &Filter{}
	case 1:
		return newFilter(ns[0])
	}
	return newFilter(mk(ns))
}

// node is an expression tree node.
type node interface {
	match(*eventpb.Event) bool
	write(b *strings.Builder, prec int)
}

// Precedences for printing with the fewest parentheses.
const (
	precOr = iota
	precAnd
	precNot
)

type (
	andNode []node
	orNode  []node
	notNode struct{ n node }
	// noneNode matches nothing; only Not(empty) makes one.
	noneNode struct{}
)

func (noneNode) match(*eventpb.Event) bool { return false }

// write spells "nothing" in the language: no pid is negative.
func (noneNode) write(b *strings.Builder, _ int) { b.WriteString("pid<0") }

func (a andNode) match(ev *eventpb.Event) bool {
	for _, n := range a {
		if !n.match(ev) {
			return false
		}
	}
	return true
}

func (o orNode) match(ev *eventpb.Event) bool {
	for _, n := range o {
		if n.match(ev) {
			return true
		}
	}
	return false
}

func (n notNode) match(ev *eventpb.Event) bool { return !n.n.match(ev) }

func (a andNode) write(b *strings.Builder, prec int) {
	writeList(b, []node(a), " & ", precAnd, prec)
}

func (o orNode) write(b *strings.Builder, prec int) {
	writeList(b, []node(o), " | ", precOr, prec)
}

func writeList(b *strings.Builder, ns []node, sep string, own, outer int) {
	if outer > own {
		b.WriteByte('(')
	}
	for i, n := range ns {
		if i > 0 {
			b.WriteString(sep)
		}
		n.write(b, own+1)
	}
	if outer > own {
		b.WriteByte(')')
	}
}

func (n notNode) write(b *strings.Builder, _ int) {
	b.WriteByte('!')
	n.n.write(b, precNot)
}

func walk(n node, fn func(*term)) {
	switch n := n.(type) {
	case andNode:
		for _, c := range n {
			walk(c, fn)
		}
	case orNode:
		for _, c := range n {
			walk(c, fn)
		}
	case notNode:
		walk(n.n, fn)
	case *term:
		fn(n)
	}
}

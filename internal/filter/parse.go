package filter

import (
	"fmt"
	"strings"
)

// SyntaxError is a filter that does not parse: where, and what was
// expected there.
type SyntaxError struct {
	// Pos is the byte offset in the filter text, from 0.
	Pos int
	// Msg says what was expected or what is wrong.
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter: at column %d: %s", e.Pos+1, e.Msg)
}

// alias is a "~x" shorthand: key op with the alias's value, or a fixed
// term when it takes none.
type alias struct {
	key   string
	op    Op
	value string // fixed value; "" means the alias takes one
}

var aliases = map[string]alias{
	"pid":       {"pid", Eq, ""},
	"comm":      {"comm", Eq, ""},
	"m":         {"method", Eq, ""},
	"d":         {"host", Eq, ""},
	"u":         {"path", Contains, ""},
	"c":         {"status", Eq, ""},
	"t":         {"content-type", Contains, ""},
	"h":         {"header", Contains, ""},
	"b":         {"body", Contains, ""},
	"q":         {"type", Eq, "request"},
	"s":         {"type", Eq, "response"},
	"websocket": {"type", Eq, "websocket"},
	"http":      {"type", Eq, "http"},
}

// Parse parses a filter expression (docs/filters.md). The empty (or
// all-blank) text is the filter that matches everything. Errors are
// *SyntaxError.
func Parse(s string) (*Filter, error) {
	if len(s) > MaxLen {
		return nil, &SyntaxError{Pos: MaxLen, Msg: fmt.Sprintf("filter longer than %d bytes", MaxLen)}
	}
	p := &parser{s: s}
	p.space()
	if p.eof() {
		return &Filter{}, nil
	}
	n := p.or()
	if p.err == nil && !p.eof() {
		if p.peek() == ')' {
			p.fail("unexpected \")\"")
		} else {
			p.fail("expected \"&\", \"|\" or the end of the filter")
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return newFilter(n), nil
}

type parser struct {
	s     string
	i     int
	depth int
	err   *SyntaxError
}

func (p *parser) eof() bool  { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }

func (p *parser) fail(msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Pos: p.i, Msg: msg}
	}
}

func (p *parser) failAt(pos int, msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Pos: pos, Msg: msg}
	}
}

func (p *parser) space() {
	for !p.eof() && isSpace(p.peek()) {
		p.i++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// delim ends a word.
func delim(c byte) bool { return isSpace(c) || strings.IndexByte("&|()\",", c) >= 0 }

// found describes what is at the current position, for errors.
func (p *parser) found() string {
	if p.eof() {
		return "the end of the filter"
	}
	return fmt.Sprintf("%q", p.s[p.i:p.i+runeLen(p.s, p.i)])
}

// keyword reports whether the word kw (and, or, not) is next, consuming it.
func (p *parser) keyword(kw string) bool {
	n := len(kw)
	if p.i+n > len(p.s) || !strings.EqualFold(p.s[p.i:p.i+n], kw) {
		return false
	}
	if p.i+n < len(p.s) && !delim(p.s[p.i+n]) && p.s[p.i+n] != '!' && p.s[p.i+n] != '~' {
		return false
	}
	p.i += n
	return true
}

func (p *parser) or() node {
	ns := []node{p.and()}
	for p.err == nil {
		p.space()
		if p.eof() {
			break
		}
		if p.peek() == '|' {
			p.i++
		} else if !p.keyword("or") {
			break
		}
		p.space()
		ns = append(ns, p.and())
	}
	if len(ns) == 1 {
		return ns[0]
	}
	return orNode(ns)
}

func (p *parser) and() node {
	ns := []node{p.not()}
	for p.err == nil {
		p.space()
		if p.eof() {
			break
		}
		switch c := p.peek(); {
		case c == '&':
			p.i++
		case p.keyword("and"):
		case c == '|' || c == ')':
			goto done
		default:
			// Juxtaposition: "~m GET ~d example.com". An "or" ends the run.
			save := p.i
			if p.keyword("or") {
				p.i = save
				goto done
			}
		}
		p.space()
		ns = append(ns, p.not())
	}
done:
	if len(ns) == 1 {
		return ns[0]
	}
	return andNode(ns)
}

func (p *parser) not() node {
	if p.err != nil {
		return nil
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		p.fail(fmt.Sprintf("nested more than %d deep", maxDepth))
		return nil
	}
	p.space()
	if p.eof() {
		p.fail("expected a term (key op value, ~alias, \"!\" or \"(\"), found the end of the filter")
		return nil
	}
	switch c := p.peek(); {
	case c == '!':
		p.i++
		return notNode{p.not()}
	case p.keyword("not"):
		return notNode{p.not()}
	case c == '(':
		open := p.i
		p.i++
		p.space()
		n := p.or()
		if p.err != nil {
			return nil
		}
		p.space()
		if p.eof() || p.peek() != ')' {
			if p.eof() {
				p.fail(fmt.Sprintf("expected \")\" to close the \"(\" at column %d, found the end of the filter", open+1))
			} else {
				p.fail(fmt.Sprintf("expected \")\" to close the \"(\" at column %d, found %s", open+1, p.found()))
			}
			return nil
		}
		p.i++
		return n
	case c == '~':
		return p.alias()
	}
	return p.term()
}

func (p *parser) ident() string {
	start := p.i
	for !p.eof() {
		c := p.peek()
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || p.i > start && c >= '0' && c <= '9' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i]
}

func (p *parser) alias() node {
	start := p.i
	p.i++ // '~'
	name := p.ident()
	if name == "" {
		p.fail("expected an alias name after \"~\" (~m, ~d, ~u, ~c, ~t, ~h, ~b, ~q, ~s, ~websocket, ~http, ~pid, ~comm)")
		return nil
	}
	a, ok := aliases[strings.ToLower(name)]
	if !ok {
		p.failAt(start, fmt.Sprintf("unknown alias %q", "~"+clip(name)))
		return nil
	}
	k := lookupKey(a.key)
	if a.value != "" {
		t, _, _ := newTerm(k, a.op, []string{a.value})
		return t
	}
	p.space()
	return p.finish(k, a.op, "~"+name)
}

func (p *parser) term() node {
	start := p.i
	name := p.ident()
	if name == "" {
		if p.peek() == ')' {
			p.fail("unexpected \")\"")
		} else {
			p.fail(fmt.Sprintf("expected a key, \"~alias\", \"!\" or \"(\", found %s", p.found()))
		}
		return nil
	}
	k := lookupKey(name)
	if k == nil {
		p.failAt(start, fmt.Sprintf("unknown key %q", clip(name)))
		return nil
	}
	p.space()
	opPos := p.i
	op := p.op()
	if op == "" {
		p.fail(fmt.Sprintf("expected an operator (=, !=, ~=, >, >=, <, <=) after %q, found %s", name, p.found()))
		return nil
	}
	if msg := checkOp(k, op); msg != "" {
		p.failAt(opPos, msg)
		return nil
	}
	p.space()
	return p.finish(k, op, string(op))
}

// finish reads the values of key op and builds the term.
func (p *parser) finish(k *keyDef, op Op, after string) node {
	vstart := p.i
	vals, pos := p.values(after)
	if p.err != nil {
		return nil
	}
	t, msg, bad := newTerm(k, op, vals)
	if msg != "" {
		if bad >= 0 {
			vstart = pos[bad]
		}
		p.failAt(vstart, msg)
		return nil
	}
	return t
}

func (p *parser) op() Op {
	for _, op := range []Op{Ne, Contains, Ge, Le, Eq, Gt, Lt} {
		if strings.HasPrefix(p.s[p.i:], string(op)) {
			p.i += len(op)
			return op
		}
	}
	return ""
}

// values reads value {"," value}: each a word or a quoted string.
func (p *parser) values(after string) (vals []string, pos []int) {
	for {
		if p.eof() || delim(p.peek()) && p.peek() != '"' {
			p.fail(fmt.Sprintf("expected a value after %q, found %s", after, p.found()))
			return nil, nil
		}
		pos = append(pos, p.i)
		if p.peek() == '"' {
			v, ok := p.quoted()
			if !ok {
				return nil, nil
			}
			vals = append(vals, v)
		} else {
			start := p.i
			for !p.eof() && !delim(p.peek()) {
				p.i++
			}
			vals = append(vals, p.s[start:p.i])
		}
		if p.eof() || p.peek() != ',' {
			return vals, pos
		}
		p.i++
		after = ","
	}
}

func (p *parser) quoted() (string, bool) {
	start := p.i
	p.i++
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		switch c {
		case '"':
			p.i++
			if b.Len() == 0 {
				p.failAt(start, "empty value")
				return "", false
			}
			return b.String(), true
		case '\\':
			if p.i+1 < len(p.s) && (p.s[p.i+1] == '"' || p.s[p.i+1] == '\\') {
				b.WriteByte(p.s[p.i+1])
				p.i += 2
				continue
			}
			p.fail("bad escape in quoted value (only \\\" and \\\\)")
			return "", false
		}
		b.WriteByte(c)
		p.i++
	}
	p.failAt(start, "unterminated quoted value")
	return "", false
}

// write prints a term as key op values, quoting what the lexer would split.
func (t *term) write(b *strings.Builder, _ int) {
	b.WriteString(t.key.name)
	b.WriteString(string(t.op))
	for i, v := range t.raw {
		if i > 0 {
			b.WriteByte(',')
		}
		writeValue(b, v)
	}
}

func writeValue(b *strings.Builder, v string) {
	plain := v != ""
	for i := 0; i < len(v); i++ {
		if delim(v[i]) {
			plain = false
			break
		}
	}
	if plain {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

package filter

import (
	"bytes"
	"strings"
)

// text is what the matchers read: event strings and payload bytes alike,
// without converting (and so copying) one into the other.
type text interface{ ~string | ~[]byte }

// glob matches s against p, where '*' is any run of bytes and '?' one
// character; with fold, ASCII letters of s match p's lower-case ones (p
// is lowered when compiled). Linear in practice: one '*' is remembered
// for backtracking.
func glob[S text](p string, s S, fold bool) bool {
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
				pi, si = pi+1, si+runeLen(s, si)
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

// runeLen is the length of the UTF-8 sequence at s[i], 1 for a stray byte.
func runeLen[S text](s S, i int) int {
	n := 1
	if s[i] >= 0xC0 {
		for i+n < len(s) && n < 4 && s[i+n]&0xC0 == 0x80 {
			n++
		}
	}
	return n
}

// index reports whether sub occurs in s; with fold, ASCII letters of s
// match sub's lower-case ones.
func index[S text](s S, sub string, fold bool) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && (s[i+j] == sub[j] || fold && lower(s[i+j]) == sub[j]) {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// indexBytes is the index of sub in s, or -1.
func indexBytes(s []byte, sub string) int {
	return bytes.Index(s, []byte(sub)) // the conversion of a constant does not allocate
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// shape is a glob's form. Most patterns are a literal with a '*' at one
// end or both, and those need no backtracking: a per-event cost that
// every client's filter pays on the publishing goroutine.
type shape uint8

const (
	shapeGlob     shape = iota // anything else
	shapeExact                 // no wildcard
	shapePrefix                // lit*
	shapeSuffix                // *lit
	shapeContains              // *lit*
)

// shapeOf returns p's shape and its literal part.
func shapeOf(p string) (shape, string) {
	if !strings.ContainsAny(p, "*?") {
		return shapeExact, p
	}
	if len(p) < 2 {
		return shapeGlob, p
	}
	lead, trail := p[0] == '*', p[len(p)-1] == '*'
	inner := p
	if lead {
		inner = inner[1:]
	}
	if trail {
		inner = inner[:len(inner)-1]
	}
	if strings.ContainsAny(inner, "*?") {
		return shapeGlob, p
	}
	switch {
	case lead && trail:
		return shapeContains, inner
	case lead:
		return shapeSuffix, inner
	case trail:
		return shapePrefix, inner
	}
	return shapeGlob, p
}

// matchShape is glob(p, s, fold) for a pattern of shape sh with literal lit.
func matchShape[S text](sh shape, lit, p string, s S, fold bool) bool {
	switch sh {
	case shapeExact:
		return len(s) == len(lit) && hasPrefix(s, lit, fold)
	case shapePrefix:
		return hasPrefix(s, lit, fold)
	case shapeSuffix:
		return len(s) >= len(lit) && hasPrefix(s[len(s)-len(lit):], lit, fold)
	case shapeContains:
		return index(s, lit, fold)
	}
	return glob(p, s, fold)
}

// hasPrefix reports whether s starts with p; with fold, ASCII letters of s
// match p's lower-case ones.
func hasPrefix[S text](s S, p string, fold bool) bool {
	if len(p) > len(s) {
		return false
	}
	// Most text is already lower case: one memequal settles it, and the
	// byte loop runs only on a mismatch that folding may excuse.
	if string(s[:len(p)]) == p {
		return true
	}
	if !fold {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := s[i]; c != p[i] && (!fold || lower(c) != p[i]) {
			return false
		}
	}
	return true
}

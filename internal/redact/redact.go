package redact

import (
	"bytes"
	"io"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/tlstap/tlstap/internal/capture"
	"github.com/tlstap/tlstap/internal/stats"
)

// RedactedTotal counts masked occurrences of a secret.
const RedactedTotal = "tlstap_redacted_total"

// minSecret: shorter strings would mask ordinary data. tlstap's tokens are
// at least 16 characters.
const minSecret = 8

// Secrets is the set of strings that must never leave tlstap. The zero
// value is not usable; call New. Methods are safe for concurrent use, and
// a nil *Secrets masks nothing.
type Secrets struct {
	mu   sync.Mutex // serialises Add
	list atomic.Pointer[[][]byte]
	n    *stats.Counter
}

// New returns an empty set counting into st (nil: a private set).
func New(st *stats.Set) *Secrets {
	if st == nil {
		st = stats.NewSet()
	}
	s := &Secrets{n: st.Counter(RedactedTotal, "Occurrences of tlstap's own secrets masked out of captured data and log lines.")}
	s.list.Store(&[][]byte{})
	return s
}

// Add adds secret and its URL-escaped forms. Secrets shorter than 8 bytes
// are ignored.
func (s *Secrets) Add(secret string) {
	if s == nil || len(secret) < minSecret {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append([][]byte(nil), *s.list.Load()...)
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		if !containsBytes(list, form) {
			list = append(list, []byte(form))
		}
	}
	s.list.Store(&list)
}

func containsBytes(list [][]byte, s string) bool {
	for _, b := range list {
		if string(b) == s {
			return true
		}
	}
	return false
}

// Redact returns b with every secret masked. b itself is never written
// (it may be shared, or read-only): when something is masked the result
// is a copy, otherwise b.
func (s *Secrets) Redact(b []byte) []byte {
	if s == nil {
		return b
	}
	out, copied := b, false
	for _, sec := range *s.list.Load() {
		for from := 0; ; {
			i := bytes.Index(out[from:], sec)
			if i < 0 {
				break
			}
			if !copied {
				out, copied = bytes.Clone(b), true
			}
			i += from
			for j := range sec {
				out[i+j] = '*'
			}
			s.n.Inc()
			from = i + len(sec)
		}
	}
	return out
}

// String is Redact for strings.
func (s *Secrets) String(v string) string {
	if s == nil {
		return v
	}
	if r := s.Redact([]byte(v)); string(r) != v {
		return string(r)
	}
	return v
}

// Source masks the data of every chunk src delivers.
func (s *Secrets) Source(src capture.Source) capture.Source {
	return capture.Filter(src, func(c *capture.Chunk) bool {
		if len(c.Data) > 0 {
			c.Data = s.Redact(c.Data)
		}
		return true
	})
}

// Writer masks every Write to w. Each Write is masked on its own, which
// suits log handlers: they write one whole record per call.
func (s *Secrets) Writer(w io.Writer) io.Writer { return writer{s: s, w: w} }

type writer struct {
	s *Secrets
	w io.Writer
}

func (w writer) Write(p []byte) (int, error) {
	if _, err := w.w.Write(w.s.Redact(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

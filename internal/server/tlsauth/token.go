package tlsauth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// MinTokenLen is the shortest token accepted from configuration; generated
// tokens are 43 characters (32 random bytes, base64url).
const MinTokenLen = 16

// NewToken returns 32 random bytes, base64url-encoded without padding,
// beginning with a letter or digit. A token is passed on command lines
// (`watch.js --token T`, shell scripts), where one beginning with '-' is
// taken for an option: one in 32 would be, so those are drawn again. The
// first character then carries log2(62) instead of 6 bits, 255.95 bits
// in all.
func NewToken() string {
	b := make([]byte, 32)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		if t := base64.RawURLEncoding.EncodeToString(b); t[0] != '-' && t[0] != '_' {
			return t
		}
	}
}

// LoadOrCreateToken returns the token stored in dir, generating and storing
// one (0600) on first use.
func LoadOrCreateToken(dir string) (string, error) {
	if err := ensureDir(dir); err != nil {
		return "", err
	}
	b, err := readSecret(dir, TokenFile)
	if err != nil {
		return "", fmt.Errorf("tlsauth: read token: %w", err)
	}
	if t := string(bytes.TrimSpace(b)); len(t) >= MinTokenLen {
		return t, nil
	}
	t := NewToken()
	if err := writeSecret(dir, TokenFile, []byte(t+"\n")); err != nil {
		return "", fmt.Errorf("tlsauth: write token: %w", err)
	}
	return t, nil
}

// ReadToken returns the token stored in dir without creating one.
func ReadToken(dir string) (string, error) {
	b, err := readSecret(dir, TokenFile)
	if err != nil {
		return "", err
	}
	if b == nil {
		return "", fmt.Errorf("tlsauth: no token in %s", dir)
	}
	return string(bytes.TrimSpace(b)), nil
}

// RequestToken returns the token a request presents: the Authorization
// Bearer credentials, else the "token" query parameter.
func RequestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(cred)
		}
	}
	return r.URL.Query().Get("token")
}

// Checker compares presented tokens with the expected one in constant time.
// Both sides are hashed first so the comparison does not leak the length.
type Checker struct{ want [sha256.Size]byte }

// NewChecker returns a Checker for token.
func NewChecker(token string) *Checker {
	return &Checker{want: sha256.Sum256([]byte(token))}
}

// Valid reports whether got is the token.
func (c *Checker) Valid(got string) bool {
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], c.want[:]) == 1
}

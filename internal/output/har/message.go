package har

import (
	"bytes"
	"errors"
	"strings"
)

// message is a rendered HTTP message split into its parts. Payloads of
// HTTP events are an HTTP/1-style rendering (HTTP/2 too): start line,
// header lines, a blank line, then the decoded body.
type message struct {
	start       [3]string // method, target, version; or version, status, reason
	headers     []header
	headersSize int // bytes up to and including the blank line
	body        []byte
}

var errNoStartLine = errors.New("har: no start line")

// parseMessage splits p. A payload cut before the end of its header block
// (--tsize) keeps the complete header lines; the body is then empty.
func parseMessage(p []byte) (message, error) {
	var m message
	head, body, ok := bytes.Cut(p, []byte("\r\n\r\n"))
	if ok {
		m.headersSize = len(head) + 4
		m.body = body
	} else {
		m.headersSize = -1
		head = p
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	parts := strings.SplitN(string(line), " ", 3)
	if len(parts) < 2 || parts[0] == "" {
		return m, errNoStartLine
	}
	copy(m.start[:], parts)
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if !ok && len(rest) == 0 {
			break // the header block was cut inside this line
		}
		name, value, found := bytes.Cut(l, []byte(":"))
		if !found {
			continue
		}
		m.headers = append(m.headers, header{Name: string(name), Value: strings.TrimSpace(string(value))})
	}
	return m, nil
}

func (m *message) header(name string) string {
	for _, h := range m.headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

package http2

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"

	"github.com/tlstap/tlstap/internal/decoder"
)

type (
	Limits  = decoder.Limits
	Message = decoder.Message
)

const closeReason = decoder.Close

// describe renders messages for golden files: every field, and the payload
// quoted so CR, LF and binary bytes are visible. Long payloads show their
// head, length and hash.
func describe(label string, ms []*Message) string {
	var b strings.Builder
	for i, m := range ms {
		fmt.Fprintf(&b, "=== %s #%d %s stream=%d start=%d end=%d\n", label, i, m.Type, m.StreamID, m.Start, m.End)
		fmt.Fprintf(&b, "incomplete=%t truncated=%t original_length=%d status=%d\n", m.Incomplete, m.Truncated, m.OriginalLength, m.Status)
		fmt.Fprintf(&b, "host=%q method=%q path=%q content_type=%q content_encoding=%q transfer_encoding=%q\n",
			m.Host, m.Method, m.Path, m.ContentType, m.ContentEncoding, m.TransferEncoding)
		fmt.Fprintf(&b, "payload %d bytes sha256=%x\n", len(m.Payload), sha256.Sum256(m.Payload))
		p := m.Payload
		const show = 1024
		if len(p) > show {
			p = p[:show]
		}
		for line := range bytes.Lines(p) {
			fmt.Fprintf(&b, "  %q\n", line)
		}
		if len(m.Payload) > show {
			fmt.Fprintf(&b, "  ... %d more bytes\n", len(m.Payload)-show)
		}
	}
	return b.String()
}

// sameMessage compares everything but the timestamps, which depend on how
// the bytes were chunked.
func sameMessage(a, b *Message) bool {
	x, y := *a, *b
	x.Start, x.End, y.Start, y.End = 0, 0, 0, 0
	return reflect.DeepEqual(x, y)
}

// finalHead splits the payload into its final head (after any 1xx heads)
// and body.
func finalHead(m *Message) (head string, body []byte) {
	p := m.Payload
	for {
		h, rest, ok := bytes.Cut(p, []byte("\r\n\r\n"))
		if !ok {
			return string(p), nil
		}
		if m.Type == decoder.HTTP2Response && bytes.HasPrefix(h, []byte("HTTP/2 1")) {
			p = rest
			continue
		}
		return string(h), rest
	}
}

// field returns the value of the first "name: value" line of the final
// head, or "" if there is none.
func field(m *Message, name string) string {
	head, _ := finalHead(m)
	for line := range strings.SplitSeq(head, "\r\n") {
		if n, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(n, name) {
			return v
		}
	}
	return ""
}

func body(m *Message) []byte {
	_, b := finalHead(m)
	return b
}

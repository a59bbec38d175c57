package fleet

import (
	"strings"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// Defaults of a nats:// address.
const (
	DefaultStream = "TLSTAP"
	DefaultPrefix = "tlstap"
)

// Headers set on every published message besides Nats-Msg-Id.
const (
	HeaderNode      = "Tlstap-Node"
	HeaderUUID      = "Tlstap-Uuid"
	HeaderContainer = "Tlstap-Container"
	// HeaderPod is NAMESPACE/NAME of the container's Kubernetes pod (--pods).
	HeaderPod = "Tlstap-Pod"
)

// KindLog is the subject kind of process-log entries and notices.
const KindLog = "log"

// Subject is where an entry of kind from node is published.
func Subject(prefix, node, kind string) string {
	return prefix + "." + Token(node) + "." + kind
}

// NodeFilter is the subject filter of every entry of node.
func NodeFilter(prefix, node string) string {
	return prefix + "." + Token(node) + ".>"
}

// Kind names the subject kind of m: the event type in snake case, or log.
func Kind(m *eventpb.LogEntry) string {
	ev := m.GetEventPayload()
	if ev == nil {
		return KindLog
	}
	return strings.ReplaceAll(decoder.Type(ev.GetType()).String(), "-", "_")
}

// Token makes s usable as one subject token: NATS splits subjects at dots
// and gives "*" and ">" meaning, and whitespace ends a subject on the wire.
// An empty name becomes "_".
func Token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

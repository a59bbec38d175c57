package output

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tlstap/tlstap/internal/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// TextRenderer prints a header line and the payload. Binary payloads, or
// all payloads with Hex, are hex-dumped. Node adds the capturing node to
// the header: a client watching a fleet needs it, a capture's own output
// would repeat its host name on every line.
type TextRenderer struct{ Hex, Node bool }

// Render implements Renderer.
func (t TextRenderer) Render(w io.Writer, ev *eventpb.Event) error {
	b := make([]byte, 0, 256+len(ev.GetPayload()))
	b = time.Unix(0, ev.GetTimestamp()).UTC().AppendFormat(b, time.RFC3339Nano)
	b = fmt.Appendf(b, " #%d pid=%d comm=%s %s -> %s %s %s len=%d",
		ev.GetSeq(), ev.GetPid(), safe(ev.GetPname()),
		endpoint(ev.GetSrcIp(), ev.GetSrcPort()), endpoint(ev.GetDstIp(), ev.GetDstPort()),
		direction(ev.GetDataType()), decoder.Type(ev.GetType()), ev.GetLength())
	if n := ev.GetNode(); t.Node && n != "" {
		b = fmt.Appendf(b, " node=%s", safe(n))
	}
	if c := ev.GetContainerId(); c != "" {
		// The short form docker and crictl print.
		b = fmt.Appendf(b, " container=%s", safe(c[:min(len(c), 12)]))
	}
	if p := ev.GetPodName(); p != "" {
		b = fmt.Appendf(b, " pod=%s", safe(ev.GetPodNamespace()+"/"+p))
	}
	if lib := ev.GetTlsLibrary(); lib != "" {
		b = fmt.Appendf(b, " lib=%s", safe(lib))
	}
	if ev.GetStreamId() != 0 {
		b = fmt.Appendf(b, " stream=%d", ev.GetStreamId())
	}
	if ev.GetRequestSeq() != 0 {
		b = fmt.Appendf(b, " request=#%d latency=%s", ev.GetRequestSeq(), time.Duration(ev.GetLatencyNs()))
	}
	if ev.GetWsOpcode() != 0 {
		b = fmt.Appendf(b, " opcode=%d", ev.GetWsOpcode())
		if ev.GetWsCloseCode() != 0 {
			b = fmt.Appendf(b, " close=%d", ev.GetWsCloseCode())
		}
	}
	if ev.GetTruncated() {
		b = fmt.Appendf(b, " truncated(original=%d)", ev.GetOriginalLength())
	}
	if ev.GetIncomplete() {
		b = append(b, " incomplete"...)
	}
	b = appendPartHeader(b, ev)
	b = append(b, '\n')
	p := ev.GetPayload()
	if !t.Hex && ev.GetPart() == eventpb.PartKind_PART_KIND_PART {
		b = appendPartBody(b, ev)
	} else if t.Hex || !printable(p) {
		b = append(b, hex.Dump(p)...)
	} else {
		b = append(b, p...)
		if len(p) > 0 && p[len(p)-1] != '\n' {
			b = append(b, '\n')
		}
	}
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}

func endpoint(ip string, port uint32) string {
	if ip == "" {
		return "?"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

func direction(dt uint32) string {
	if dt == 1 {
		return "sent"
	}
	return "received"
}

// printable reports whether p is text a terminal can show: valid UTF-8
// without control characters other than whitespace.
func printable(p []byte) bool {
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r) && !unicode.IsSpace(r)) {
			return false
		}
		p = p[n:]
	}
	return true
}

// safe keeps a traced process's name from reaching the terminal with
// control characters (escape sequences) in it.
func safe(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

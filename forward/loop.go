package forward

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"

	"github.com/tlstap/tlstap/decoder"
	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// MarkHeader is on every request a forwarder sends (replays and webhook
// calls), with a random value per run. A captured request carrying it,
// from any tlstap, is tlstap's own and is never forwarded, nor is its
// response: that is what keeps proxy mode from re-sending its own replays
// as the proxy's upstream copy (mitmproxy uses OpenSSL) and the receiving
// server capture them.
const MarkHeader = "X-Tlstap-Forwarded"

// RunNonce is this run's MarkHeader value.
var RunNonce = newNonce()

func newNonce() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// generation bounds the memories below: when one fills, it becomes the
// old one and the older is forgotten, so each remembers between one and
// two generations of keys.
const generation = 4096

type memory[K comparable] struct {
	cur, old map[K]struct{}
}

func (m *memory[K]) add(k K) {
	if m.cur == nil || len(m.cur) >= generation {
		m.old, m.cur = m.cur, make(map[K]struct{}, generation)
	}
	m.cur[k] = struct{}{}
}

func (m *memory[K]) has(k K) bool {
	if _, ok := m.cur[k]; ok {
		return true
	}
	_, ok := m.old[k]
	return ok
}

// loopGuard decides which events are copies a forwarder must not send:
// tlstap's own replays and their answers, and the receiving side's copy
// of a message whose sending side was captured too.
type loopGuard struct {
	mu     sync.Mutex
	marked memory[uint64]    // seqs of marked requests, so their responses are known
	sent   memory[direction] // flows seen from their sending side
}

// direction is one direction of a connection: the sender and receiver of its
// payloads, the same in the client's and the server's copy.
type direction struct {
	srcIP, dstIP     string
	srcPort, dstPort uint32
}

// skip reports whether ev must not be forwarded. It runs on the
// publisher's goroutine, in event order.
func (g *loopGuard) skip(ev *eventpb.Event) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := decoder.Type(ev.GetType())
	switch {
	case t.IsRequest() && marked(ev.GetPayload()):
		g.marked.add(ev.GetSeq())
		return true
	case t.IsResponse() && ev.GetRequestSeq() != 0 && g.marked.has(ev.GetRequestSeq()):
		return true
	}
	if ev.GetSrcPort() == 0 || ev.GetDstPort() == 0 {
		return false // no tuple: nothing to match the other side with
	}
	f := direction{ev.GetSrcIp(), ev.GetDstIp(), ev.GetSrcPort(), ev.GetDstPort()}
	if ev.GetDataType() == 1 {
		// Written: the sender's copy, the one forwarded.
		g.sent.add(f)
		return false
	}
	// Read: forwarded only if the sender is not captured. The sender's
	// write reaches the pipeline before the read of the same bytes can,
	// so a direction not seen yet has no captured sender.
	return g.sent.has(f)
}

// marked reports whether a rendered request's header section carries
// MarkHeader.
func marked(payload []byte) bool {
	head, _, _ := bytes.Cut(payload, []byte("\r\n\r\n"))
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		name, _, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte(MarkHeader)) {
			return true
		}
	}
	return false
}

// mark sets MarkHeader on a request header about to be sent.
func mark(set func(key, value string), seq uint64) {
	set(MarkHeader, RunNonce+"-"+strconv.FormatUint(seq, 10))
}

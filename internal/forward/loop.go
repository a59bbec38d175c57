package forward

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/tlstap/tlstap/internal/backoff"
	"github.com/tlstap/tlstap/internal/decoder"
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

type memory[K comparable, V any] struct {
	cur, old map[K]V
}

func (m *memory[K, V]) put(k K, v V) {
	if m.cur == nil || len(m.cur) >= generation {
		m.old, m.cur = m.cur, make(map[K]V, generation)
	}
	m.cur[k] = v
}

func (m *memory[K, V]) add(k K) {
	var zero V
	m.put(k, zero)
}

func (m *memory[K, V]) get(k K) (V, bool) {
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.old[k]
	return v, ok
}

func (m *memory[K, V]) has(k K) bool {
	_, ok := m.get(k)
	return ok
}

// loopGuard decides which events are copies a forwarder must not send:
// tlstap's own replays and their answers, and the receiving side's copy
// of a message whose sending side was captured too.
type loopGuard struct {
	mu     sync.Mutex
	marked memory[uint64, struct{}]    // seqs of marked requests, so their responses are known
	sent   memory[direction, struct{}] // directions seen from their sending side
	// held are the receiving-side copies waiting for their sender's copy,
	// by seq: when they were published, and their direction.
	held memory[uint64, heldCopy]
}

type heldCopy struct {
	at  time.Time
	dir direction
}

// holdFor is how long a receiving side's copy waits for its sender's
// copy before it is forwarded as the only one. The sender's write is
// normally in the pipeline first; this covers it arriving just after.
const holdFor = 200 * time.Millisecond

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
	// Read: forwarded only if the sender is not captured. Its copy
	// normally came first; if not, the copy is held (see release).
	if g.sent.has(f) {
		return true
	}
	g.held.put(ev.GetSeq(), heldCopy{at: time.Now(), dir: f})
	return false
}

// release waits, for a held receiving-side copy, until holdFor after it
// was published, and reports whether it is still to be forwarded: no
// sender's copy of its direction arrived meanwhile. Other events pass at
// once. It runs on the forwarder's workers.
func (g *loopGuard) release(ctx context.Context, seq uint64) bool {
	// get, not take: each destination's worker asks. The memory's
	// generations forget it.
	g.mu.Lock()
	h, ok := g.held.get(seq)
	g.mu.Unlock()
	if !ok {
		return true
	}
	if !backoff.Sleep(ctx, time.Until(h.at.Add(holdFor))) {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.sent.has(h.dir)
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

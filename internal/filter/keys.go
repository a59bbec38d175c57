package filter

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

type keyID uint8

const (
	kPID keyID = iota
	kUID
	kComm
	kType
	kProtocol
	kMethod
	kHost
	kPath
	kStatus
	kContentType
	kHeader
	kBody
	kPort
	kLib
	kNode
	kContainer
	kPod
	kNamespace
)

type kind uint8

const (
	kindNum  kind = iota // numbers, ranges and comparisons
	kindType             // a set of event types
	kindText             // globs and substrings
)

// keyDef is one entry of the key list in docs/filters.md.
type keyDef struct {
	id    keyID
	name  string
	other string // the other spelling, "" if none
	kind  kind
	// fold: compared case-insensitively. Process names, node names,
	// container ids, pod names and namespaces, paths and bodies are not: the kernel's comm and the
	// capture-side maps compare bytes, and paths are case-sensitive.
	fold    bool
	capture bool // the kernel can judge it
	max     uint64
	// get reads a plain text key's field.
	get func(*eventpb.Event) string
}

var keys = []*keyDef{
	{id: kPID, name: "pid", kind: kindNum, capture: true, max: math.MaxInt64},
	{id: kUID, name: "uid", kind: kindNum, capture: true, max: math.MaxUint32},
	{id: kComm, name: "comm", other: "pname", kind: kindText, capture: true, get: (*eventpb.Event).GetPname},
	{id: kType, name: "type", kind: kindType},
	{id: kProtocol, name: "protocol", kind: kindType},
	{id: kMethod, name: "method", kind: kindText, fold: true, get: (*eventpb.Event).GetMethod},
	{id: kHost, name: "host", kind: kindText, fold: true, get: (*eventpb.Event).GetHost},
	{id: kPath, name: "path", kind: kindText, get: (*eventpb.Event).GetPath},
	{id: kStatus, name: "status", kind: kindNum, max: 999},
	{id: kContentType, name: "content-type", other: "ct", kind: kindText, fold: true, get: (*eventpb.Event).GetContentType},
	{id: kHeader, name: "header", kind: kindText, fold: true, get: func(*eventpb.Event) string { return "" }},
	{id: kBody, name: "body", kind: kindText, get: func(*eventpb.Event) string { return "" }},
	{id: kPort, name: "port", kind: kindNum, max: 65535},
	{id: kLib, name: "lib", kind: kindText, fold: true, get: (*eventpb.Event).GetTlsLibrary},
	{id: kNode, name: "node", kind: kindText, get: (*eventpb.Event).GetNode},
	{id: kContainer, name: "container", kind: kindText, get: (*eventpb.Event).GetContainerId},
	{id: kPod, name: "pod", kind: kindText, get: (*eventpb.Event).GetPodName},
	{id: kNamespace, name: "namespace", other: "ns", kind: kindText, get: (*eventpb.Event).GetPodNamespace},
}

func lookupKey(name string) *keyDef {
	for _, k := range keys {
		if strings.EqualFold(name, k.name) || k.other != "" && strings.EqualFold(name, k.other) {
			return k
		}
	}
	return nil
}

// Key describes one filter key for documentation and tooling.
type Key struct {
	Name    string // canonical name
	Other   string // other accepted spelling, "" if none
	Numeric bool   // takes numbers, ranges and <, <=, >, >=
	Capture bool   // the kernel can judge it (see Capture)
}

// Keys returns the key list, in the order docs/filters.md lists it.
func Keys() []Key {
	out := make([]Key, len(keys))
	for i, k := range keys {
		out[i] = Key{Name: k.name, Other: k.other, Numeric: k.kind == kindNum, Capture: k.capture}
	}
	return out
}

// Type names and groups, as decoder.Type.String spells them and the
// stream query has always accepted. (Not imported from decoder: this
// package must stay below everything that filters.)
var typeNames = []string{"raw", "http1-request", "http2-request", "http1-response", "http2-response", "websocket"}

var typeGroups = map[string]uint64{
	"request":  1<<1 | 1<<2,
	"response": 1<<3 | 1<<4,
	"http":     1<<1 | 1<<2 | 1<<3 | 1<<4,
	"ws":       1 << 5,
}

var protocols = []struct {
	name string
	bits uint64
}{{"raw", 1}, {"http1", 1<<1 | 1<<3}, {"http2", 1<<2 | 1<<4}, {"websocket", 1 << 5}}

// term is key op values; values are alternatives.
type term struct {
	key  *keyDef
	op   Op
	raw  []string
	nums []numRange // kindNum
	bits uint64     // kindType
	pats []pattern  // kindText
	fn   matcher
	neg  bool
	cmp  cmp
}

type numRange struct{ lo, hi uint64 }

type pattern struct {
	s    string // lower-cased when the key folds
	wild bool   // has '*' or '?'
	// host: the pattern names a port. header: s is the value pattern
	// after "name:", name the header name ("" for any header).
	port bool
	name string
	only bool // header=name without a value pattern
	// shape and lit: p.s compiled (see shapeOf); exact when !wild.
	shape shape
	lit   string
}

// match is glob(p.s, s, fold), faster for the common shapes: the part of
// s the literal must equal is compared with one memequal (most text is
// already lower case), and folded byte by byte only if that fails.
func (p *pattern) match(s string, fold bool) bool {
	var part string
	switch p.shape {
	case shapeExact:
		part = s
	case shapePrefix:
		if len(s) < len(p.lit) {
			return false
		}
		part = s[:len(p.lit)]
	case shapeSuffix:
		if len(s) < len(p.lit) {
			return false
		}
		part = s[len(s)-len(p.lit):]
	default:
		return matchShape(p.shape, p.lit, p.s, s, fold)
	}
	return part == p.lit || fold && len(part) == len(p.lit) && hasPrefix(part, p.lit, true)
}

// newTerm checks and compiles a term; msg says what is wrong, with the
// index of the value at fault (-1: none in particular).
func newTerm(k *keyDef, op Op, values []string) (t *term, msg string, bad int) {
	if len(values) == 0 {
		return nil, "expected a value", -1
	}
	if msg := checkOp(k, op); msg != "" {
		return nil, msg, -1
	}
	t = &term{key: k, op: op, raw: values}
	for i, v := range values {
		if v == "" {
			return nil, fmt.Sprintf("empty value for %s", k.name), i
		}
		switch k.kind {
		case kindNum:
			r, ok := parseNum(k, v, op == Eq || op == Ne)
			if !ok {
				return nil, fmt.Sprintf("bad value %q for %s (%s)", clip(v), k.name, numHint(k, op)), i
			}
			t.nums = append(t.nums, r)
		case kindType:
			b := typeBits(k, v)
			if b == 0 {
				return nil, fmt.Sprintf("bad value %q for %s (%s)", clip(v), k.name, typeHint(k)), i
			}
			t.bits |= b
		case kindText:
			t.pats = append(t.pats, newPattern(k, op, v))
		}
	}
	t.fn, t.neg = pick(t)
	t.cmp = cmpOf(op)
	return t, "", -1
}

// checkOp says what is wrong with op on k, "" if nothing.
func checkOp(k *keyDef, op Op) string {
	switch op {
	case Eq, Ne:
	case Contains:
		if k.kind != kindText {
			return fmt.Sprintf("operator %q needs a text key, not %s", op, k.name)
		}
	case Gt, Ge, Lt, Le:
		if k.kind != kindNum {
			return fmt.Sprintf("operator %q needs a numeric key (pid, uid, status, port), not %s", op, k.name)
		}
	default:
		return fmt.Sprintf("unknown operator %q", op)
	}
	return ""
}

func numHint(k *keyDef, op Op) string {
	switch {
	case op != Eq && op != Ne:
		return "want a number"
	case k.id == kStatus:
		return "want a number, a class like 4xx or a range like 400-499"
	}
	return "want a number or a range like 10-20"
}

func typeHint(k *keyDef) string {
	if k.id == kProtocol {
		return "want raw, http1, http2 or websocket"
	}
	return "want 0-5, raw, http1-request, http2-request, http1-response, http2-response, websocket, request, response, http or ws"
}

func parseNum(k *keyDef, v string, ranges bool) (numRange, bool) {
	num := func(s string) (uint64, bool) {
		if s == "" || len(s) > 20 || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil && n <= k.max
	}
	if n, ok := num(v); ok {
		return numRange{n, n}, true
	}
	if !ranges {
		return numRange{}, false
	}
	if k.id == kStatus && len(v) == 3 && v[0] >= '1' && v[0] <= '5' && strings.EqualFold(v[1:], "xx") {
		c := uint64(v[0]-'0') * 100
		return numRange{c, c + 99}, true
	}
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		return numRange{}, false
	}
	a, ok1 := num(lo)
	b, ok2 := num(hi)
	if !ok1 || !ok2 || a > b {
		return numRange{}, false
	}
	return numRange{a, b}, true
}

func typeBits(k *keyDef, v string) uint64 {
	lv := strings.ToLower(v)
	if k.id == kProtocol {
		var b uint64
		for _, p := range protocols {
			if glob(lv, p.name, true) {
				b |= p.bits
			}
		}
		return b
	}
	if len(v) == 1 && v[0] >= '0' && v[0] <= '5' {
		return 1 << (v[0] - '0')
	}
	if b, ok := typeGroups[lv]; ok {
		return b
	}
	var b uint64
	for i, n := range typeNames {
		if glob(lv, n, true) {
			b |= 1 << i
		}
	}
	return b
}

func newPattern(k *keyDef, op Op, v string) pattern {
	if k.fold {
		v = strings.ToLower(v)
	}
	p := pattern{s: v}
	if op == Contains {
		return p
	}
	switch k.id {
	case kHost:
		_, _, p.port = cutPort(v)
	case kHeader:
		name, val, ok := strings.Cut(v, ":")
		p.name = strings.TrimSpace(name)
		p.s = strings.TrimSpace(val)
		p.only = !ok
	}
	p.wild = strings.ContainsAny(p.s, "*?")
	p.shape, p.lit = shapeOf(p.s)
	return p
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (t *term) match(ev *eventpb.Event) bool { return t.fn(t, ev) != t.neg }

// matcher is a term's test, chosen once when the term is built so that
// matching an event is one indirect call, not a walk through switches.
type matcher = func(*term, *eventpb.Event) bool

// pick chooses t's matcher; "!=" is "=" negated.
func pick(t *term) (fn matcher, neg bool) {
	neg = t.op == Ne
	switch t.key.kind {
	case kindNum:
		switch t.key.id {
		case kPID:
			return (*term).pid, neg
		case kUID:
			return (*term).uid, neg
		case kStatus:
			return (*term).status, neg
		}
		return (*term).port, neg
	case kindType:
		return (*term).typ, neg
	}
	if t.op == Contains {
		switch t.key.id {
		case kHeader:
			return (*term).headerContains, false
		case kBody:
			return (*term).bodyContains, false
		}
		return (*term).textContains, false
	}
	switch t.key.id {
	case kHeader:
		return (*term).headerEq, neg
	case kBody:
		return (*term).bodyEq, neg
	case kHost:
		return (*term).hostEq, neg
	case kPath:
		return (*term).pathEq, neg
	case kContentType:
		return (*term).contentTypeEq, neg
	case kContainer:
		return (*term).containerEq, neg
	}
	return (*term).textEq, neg
}

// Numeric keys. A field the event does not have (a request's status,
// port 0) matches nothing.
func (t *term) pid(ev *eventpb.Event) bool {
	return ev.GetPid() >= 0 && t.numHit(uint64(ev.GetPid()))
}
func (t *term) uid(ev *eventpb.Event) bool { return t.numHit(uint64(ev.GetUid())) }
func (t *term) status(ev *eventpb.Event) bool {
	return ev.GetStatus() != 0 && t.numHit(uint64(ev.GetStatus()))
}
func (t *term) port(ev *eventpb.Event) bool {
	return ev.GetSrcPort() != 0 && t.numHit(uint64(ev.GetSrcPort())) ||
		ev.GetDstPort() != 0 && t.numHit(uint64(ev.GetDstPort()))
}

// numHit judges one of the event's numbers: = (and !=) against ranges,
// comparisons against single numbers.
func (t *term) numHit(v uint64) bool {
	for _, r := range t.nums {
		var hit bool
		switch t.cmp {
		case cmpIn:
			hit = r.lo <= v && v <= r.hi
		case cmpGt:
			hit = v > r.lo
		case cmpGe:
			hit = v >= r.lo
		case cmpLt:
			hit = v < r.lo
		case cmpLe:
			hit = v <= r.lo
		}
		if hit {
			return true
		}
	}
	return false
}

// cmp is a numeric term's operator as a number: switching on the Op
// string for every event would compare strings.
type cmp uint8

const (
	cmpIn cmp = iota // = and !=: within a range
	cmpGt
	cmpGe
	cmpLt
	cmpLe
)

func cmpOf(op Op) cmp {
	switch op {
	case Gt:
		return cmpGt
	case Ge:
		return cmpGe
	case Lt:
		return cmpLt
	case Le:
		return cmpLe
	}
	return cmpIn
}

func (t *term) typ(ev *eventpb.Event) bool {
	return ev.GetType() < 64 && t.bits&(1<<ev.GetType()) != 0
}

// textEq: any pattern matches the key's field; an empty field (one the
// event does not have) matches none.
func (t *term) textEq(ev *eventpb.Event) bool {
	s := t.key.get(ev)
	if s == "" {
		return false
	}
	for i := range t.pats {
		if t.pats[i].match(s, t.key.fold) {
			return true
		}
	}
	return false
}

func (t *term) hostEq(ev *eventpb.Event) bool { return hostHit(t.pats, ev.GetHost()) }

// hostHit: one of pats matches the event's host s.
func hostHit(pats []pattern, s string) bool {
	if s == "" {
		return false
	}
	name := hostName(s) // for patterns without a port
	for i := range pats {
		p := &pats[i]
		if p.port && p.match(s, true) || !p.port && p.match(name, true) {
			return true
		}
	}
	return false
}

// pathEq matches without the query string, or with it: "/api/*" and
// "/search?q=*" both do what they look like.
func (t *term) pathEq(ev *eventpb.Event) bool {
	s := ev.GetPath()
	if s == "" {
		return false
	}
	noQuery := s
	if q := strings.IndexByte(s, '?'); q >= 0 {
		noQuery = s[:q]
	}
	for i := range t.pats {
		if t.pats[i].match(noQuery, false) || len(noQuery) < len(s) && t.pats[i].match(s, false) {
			return true
		}
	}
	return false
}

func (t *term) contentTypeEq(ev *eventpb.Event) bool {
	s := mediaType(ev.GetContentType())
	if s == "" {
		return false
	}
	for i := range t.pats {
		if t.pats[i].match(s, true) {
			return true
		}
	}
	return false
}

// containerEq: like docker, a unique prefix of the id names the
// container; a glob matches the whole id.
func (t *term) containerEq(ev *eventpb.Event) bool {
	s := ev.GetContainerId()
	if s == "" {
		return false
	}
	for i := range t.pats {
		p := &t.pats[i]
		if !p.wild && strings.HasPrefix(s, p.s) || p.wild && p.match(s, false) {
			return true
		}
	}
	return false
}

func (t *term) headerEq(ev *eventpb.Event) bool {
	for i := range t.pats {
		p := &t.pats[i]
		if eachHeader(ev, func(name, value []byte) bool {
			return glob(p.name, name, true) && (p.only || matchShape(p.shape, p.lit, p.s, value, true))
		}) {
			return true
		}
	}
	return false
}

func (t *term) bodyEq(ev *eventpb.Event) bool {
	b, ok := body(ev)
	if !ok {
		return false
	}
	for i := range t.pats {
		p := &t.pats[i]
		if matchShape(p.shape, p.lit, p.s, b, false) {
			return true
		}
	}
	return false
}

func (t *term) textContains(ev *eventpb.Event) bool {
	s := t.key.get(ev)
	if s == "" {
		return false
	}
	for i := range t.pats {
		if index(s, t.pats[i].s, t.key.fold) {
			return true
		}
	}
	return false
}

func (t *term) headerContains(ev *eventpb.Event) bool {
	for i := range t.pats {
		sub := t.pats[i].s
		if eachHeader(ev, func(name, value []byte) bool { return headerLineContains(name, value, sub) }) {
			return true
		}
	}
	return false
}

func (t *term) bodyContains(ev *eventpb.Event) bool {
	b, ok := body(ev)
	if !ok {
		return false
	}
	for i := range t.pats {
		if index(b, t.pats[i].s, false) {
			return true
		}
	}
	return false
}

// headerLineContains looks for sub in the line "Name: value". A line
// that fits is assembled on the stack, so matching does not allocate.
func headerLineContains(name, value []byte, sub string) bool {
	var buf [512]byte
	line := append(append(append(buf[:0], name...), ": "...), value...)
	return index(line, sub, true)
}

// isHTTP: types 1-4 carry an HTTP head in their payload.
func isHTTP(ev *eventpb.Event) bool { t := ev.GetType(); return t >= 1 && t <= 4 }

// head returns the header block of an HTTP event (start line excluded).
func head(ev *eventpb.Event) []byte {
	if !isHTTP(ev) || ev.GetPart() == eventpb.PartKind_PART_KIND_PART || ev.GetPart() == eventpb.PartKind_PART_KIND_END {
		return nil
	}
	p := ev.GetPayload()
	if i := indexBytes(p, "\r\n\r\n"); i >= 0 {
		p = p[:i+2]
	}
	if i := indexBytes(p, "\n"); i >= 0 {
		return p[i+1:]
	}
	return nil
}

// eachHeader calls fn with every header line's name and value until it
// returns true.
func eachHeader(ev *eventpb.Event, fn func(name, value []byte) bool) bool {
	h := head(ev)
	for len(h) > 0 {
		line := h
		if i := indexBytes(h, "\n"); i >= 0 {
			line, h = h[:i], h[i+1:]
		} else {
			h = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		c := indexBytes(line, ":")
		if c <= 0 {
			continue
		}
		name, value := line[:c], line[c+1:]
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
		if fn(name, value) {
			return true
		}
	}
	return false
}

// body returns the decoded payload an event carries: an HTTP message's
// body (a body part's piece), a raw or WebSocket event's whole payload.
func body(ev *eventpb.Event) ([]byte, bool) {
	p := ev.GetPayload()
	if !isHTTP(ev) {
		return p, len(p) > 0
	}
	switch ev.GetPart() {
	case eventpb.PartKind_PART_KIND_PART:
		return p, len(p) > 0
	case eventpb.PartKind_PART_KIND_HEAD, eventpb.PartKind_PART_KIND_END:
		return nil, false
	}
	i := indexBytes(p, "\r\n\r\n")
	if i < 0 {
		return nil, false
	}
	p = p[i+4:]
	return p, len(p) > 0
}

// mediaType is a Content-Type without parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.TrimSpace(mt)
}

// hostMatch matches a host pattern against an event's host, which may
// carry a port: without a port in the pattern, any port matches.
func hostMatch(p *pattern, host string) bool {
	if !p.port {
		host = hostName(host)
	}
	return p.match(host, true)
}

// hostName is host without its port, and without the brackets of an
// IPv6 address: what cutPort and the bracket rule give, written out so
// that matching a host calls nothing but the pattern's match.
func hostName(host string) string {
	i := strings.LastIndexByte(host, ':')
	switch {
	case i >= 0 && host[0] == '[' && host[i-1] == ']': // "[v6]:port"
		return host[1 : i-1]
	case i >= 0 && host[0] != '[' && strings.IndexByte(host[:i], ':') < 0: // "host:port"
		return host[:i]
	case len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']': // "[v6]"
		return host[1 : len(host)-1]
	}
	return host // a bare IPv6 address, or no port
}

// cutPort splits "host:port" and "[v6]:port"; a bare IPv6 address has no
// port.
func cutPort(hostport string) (host, port string, ok bool) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return hostport, "", false
	}
	if hostport[0] == '[' {
		if i < 1 || hostport[i-1] != ']' {
			return hostport, "", false
		}
		return hostport[1 : i-1], hostport[i+1:], true
	}
	if strings.IndexByte(hostport[:i], ':') >= 0 {
		return hostport, "", false // a bare IPv6 address
	}
	return hostport[:i], hostport[i+1:], true
}

// captureSet is the values one pushed-down term allows.
func (t *term) captureSet() (ids []uint32, comms []string, ok bool) {
	if t.op != Eq || !t.key.capture {
		return nil, nil, false
	}
	if t.key.id == kComm {
		for _, p := range t.pats {
			if p.wild {
				return nil, nil, false
			}
			comms = append(comms, p.s)
		}
		return nil, slices.Compact(comms), true
	}
	for _, r := range t.nums {
		if r.hi > math.MaxUint32 || r.hi-r.lo >= 4096 {
			return nil, nil, false
		}
		for v := r.lo; v <= r.hi; v++ {
			ids = append(ids, uint32(v))
		}
	}
	return ids, nil, true
}

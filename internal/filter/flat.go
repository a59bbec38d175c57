package filter

import (
	"slices"

	eventpb "github.com/tlstap/tlstap/proto/gen/go/event"
)

// A filter runs on the publishing goroutine once per event and client, so
// the common shape, a conjunction of terms (every older stream query and
// --forward-filter, and most expressions), is flattened into a slice of
// steps. Matching it is one loop over a switch the compiler turns into
// direct, mostly inlined code, instead of an interface call and a
// function-value call per term; the cheap keys (numbers, types) are judged
// first, the cheapest of them before the loop (prefix), so a miss costs
// the fewest field reads. Any other shape is one step that walks the tree.
// Terms are pure, so their order does not change what matches.

// op says how a step judges its term.
type op uint8

const (
	opType op = iota // in order of cost, cheapest first
	opPID
	opUID
	opPort
	opStatus
	opExact // textEq over a plain string field, exact values
	opText  // textEq over a plain string field
	opHost
	opFunc // anything else: the term's matcher
	opTree // not a conjunction of terms: the expression tree
)

// step is one term of a flattened conjunction; neg inverts it. It
// carries copies of what its op reads, so judging it does not go through
// the term.
type step struct {
	op   op
	neg  bool
	fold bool
	key  keyID
	bits uint64     // opType
	nums []numRange // opPID, opUID, opPort, opStatus
	pats []pattern  // opText, opHost
	lits []string   // opExact
	t    *term      // opFunc
	n    node       // opTree
}

// newFilter is the filter with root n, flattened when n is a conjunction
// of (possibly negated) terms, else one step that walks the tree.
func newFilter(n node) *Filter {
	steps := flatten(n)
	if steps == nil && n != nil {
		steps = []step{{op: opTree, n: n}}
	}
	f := &Filter{root: n, steps: steps}
	f.pre, f.rest = prefixOf(steps)
	return f
}

// prefix is the cheapest steps of a conjunction folded into fields that
// matchSteps judges before its loop: every type step as one mask, and the
// first "=" step of pid and of port. Most filtered stream queries name
// some of these, and they reject most events.
type prefix struct {
	typed   bool   // there are type steps: ...
	types   uint64 // ... the event's type must be one of these,
	typePos bool   // ... and known (< 64) if any of them is not negated
	pids    []numRange
	ports   []numRange
}

// prefixOf splits steps into the prefix and the rest.
func prefixOf(steps []step) (h prefix, rest []step) {
	h.types = ^uint64(0)
	for _, s := range steps {
		switch {
		case s.op == opType:
			h.typed = true
			if s.neg {
				h.types &^= s.bits
			} else {
				h.types &= s.bits
				h.typePos = true
			}
			continue
		case s.op == opPID && !s.neg && h.pids == nil:
			h.pids = s.nums
			continue
		case s.op == opPort && !s.neg && h.ports == nil:
			h.ports = s.nums
			continue
		}
		rest = append(rest, s)
	}
	return h, rest
}

// flatten returns n's steps, cheapest first, or nil if n is not a
// conjunction of (possibly negated) terms.
func flatten(n node) []step {
	var steps []step
	var add func(n node, neg bool) bool
	add = func(n node, neg bool) bool {
		switch n := n.(type) {
		case andNode:
			if neg {
				return false // a negated conjunction is a disjunction
			}
			for _, c := range n {
				if !add(c, false) {
					return false
				}
			}
			return true
		case notNode:
			return add(n.n, !neg)
		case *term:
			// n.neg is n's own "!=", which the steps apply as matchers do.
			steps = append(steps, step{
				op: opOf(n), neg: neg != n.neg, fold: n.key.fold, key: n.key.id,
				bits: n.bits, nums: n.nums, pats: n.pats, t: n,
			})
			if s := &steps[len(steps)-1]; s.op == opText && !s.fold && allExact(s.pats) {
				s.op = opExact
				for _, p := range s.pats {
					s.lits = append(s.lits, p.lit)
				}
			}
			return true
		}
		return false
	}
	if n == nil || !add(n, false) {
		return nil
	}
	slices.SortStableFunc(steps, func(a, b step) int { return int(a.op) - int(b.op) })
	return steps
}

// opOf picks the step for t: only "=" and "!=" ("=" negated) get their
// own code, the same tests as pick's matchers.
func opOf(t *term) op {
	if t.op != Eq && t.op != Ne {
		return opFunc
	}
	switch t.key.id {
	case kType, kProtocol:
		return opType
	case kPID:
		return opPID
	case kUID:
		return opUID
	case kPort:
		return opPort
	case kStatus:
		return opStatus
	case kComm, kMethod, kLib, kNode:
		return opText
	case kHost:
		return opHost
	}
	return opFunc
}

// matchSteps is the conjunction of h (if not nil) and steps on ev, which
// is not nil.
func matchSteps(h *prefix, steps []step, ev *eventpb.Event) bool {
	if h != nil {
		switch {
		case h.typed && (ev.Type >= 64 && h.typePos || ev.Type < 64 && h.types&(1<<ev.Type) == 0):
			return false
		case h.pids != nil && (ev.Pid < 0 || !inRanges(h.pids, uint64(ev.Pid))):
			return false
		case h.ports != nil && !(ev.SrcPort != 0 && inRanges(h.ports, uint64(ev.SrcPort)) ||
			ev.DstPort != 0 && inRanges(h.ports, uint64(ev.DstPort))):
			return false
		}
	}
	for i := range steps {
		s := &steps[i]
		var hit bool
		switch s.op {
		case opType:
			hit = ev.Type < 64 && s.bits&(1<<ev.Type) != 0
		case opPID:
			hit = ev.Pid >= 0 && inRanges(s.nums, uint64(ev.Pid))
		case opUID:
			hit = inRanges(s.nums, uint64(ev.Uid))
		case opPort:
			hit = ev.SrcPort != 0 && inRanges(s.nums, uint64(ev.SrcPort)) ||
				ev.DstPort != 0 && inRanges(s.nums, uint64(ev.DstPort))
		case opStatus:
			hit = ev.Status != 0 && inRanges(s.nums, uint64(ev.Status))
		case opExact:
			hit = slices.Contains(s.lits, textField(s.key, ev))
		case opText:
			hit = textHit(s.pats, textField(s.key, ev), s.fold)
		case opHost:
			hit = hostHit(s.pats, ev.Host)
		case opFunc:
			hit = s.t.fn(s.t, ev)
		default:
			hit = s.n.match(ev)
		}
		if hit == s.neg {
			return false
		}
	}
	return true
}

// inRanges is numHit for "=": v lies in one of rs.
func inRanges(rs []numRange, v uint64) bool {
	for _, r := range rs {
		if r.lo <= v && v <= r.hi {
			return true
		}
	}
	return false
}

// textField is keyDef.get for the keys opText handles, without the call
// through a function value.
func textField(id keyID, ev *eventpb.Event) string {
	switch id {
	case kComm:
		return ev.Pname
	case kMethod:
		return ev.Method
	case kLib:
		return ev.TlsLibrary
	}
	return ev.Node
}

func allExact(pats []pattern) bool {
	for _, p := range pats {
		if p.shape != shapeExact {
			return false
		}
	}
	return true
}

// textHit is textEq on the field's value s.
func textHit(pats []pattern, s string, fold bool) bool {
	if s == "" {
		return false
	}
	for i := range pats {
		if pats[i].match(s, fold) {
			return true
		}
	}
	return false
}

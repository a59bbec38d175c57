package filter

import (
	"slices"
	"strconv"
)

// Capture is the part of a filter the kernel can judge: the process ids,
// user ids and process names an event's process must have. Empty sets
// allow everything. It has the fields of openssl.Filter, so one converts
// to the other.
type Capture struct {
	PIDs  []uint32
	UIDs  []uint32
	Comms []string
}

// Capture returns what can be pushed down into the BPF filter maps: the
// pid, uid and comm terms of f's top-level conjunction with "=" and exact
// values. It never excludes an event f selects; f itself still has to be
// evaluated on what is captured (the rest of the conjunction, and
// everything of a filter that is not a conjunction). Two terms of one key
// are intersected; if that leaves nothing, the key is not pushed down
// (an empty set would mean "everything" to the kernel).
func (f *Filter) Capture() Capture {
	var c Capture
	if f.Empty() {
		return c
	}
	conj := []node{f.root}
	if a, ok := f.root.(andNode); ok {
		conj = a
	}
	var pids, uids, comms [][]string // per key, the value sets to intersect
	for _, n := range conj {
		t, ok := n.(*term)
		if !ok {
			continue
		}
		ids, cs, ok := t.captureSet()
		if !ok {
			continue
		}
		switch t.key.id {
		case kPID:
			pids = append(pids, idStrings(ids))
		case kUID:
			uids = append(uids, idStrings(ids))
		case kComm:
			comms = append(comms, cs)
		}
	}
	c.PIDs = ids(intersect(pids))
	c.UIDs = ids(intersect(uids))
	c.Comms = intersect(comms)
	return c
}

// FromCapture is the filter the capture settings (--pid, --uid, --comm
// and the config's capture lists) mean: every non-empty list must contain
// the process's value.
func FromCapture(c Capture) *Filter {
	var fs []*Filter
	for _, k := range []struct {
		key  string
		vals []string
	}{{"pid", idStrings(c.PIDs)}, {"uid", idStrings(c.UIDs)}, {"comm", c.Comms}} {
		if len(k.vals) == 0 {
			continue
		}
		t, msg, _ := newTerm(lookupKey(k.key), Eq, k.vals)
		if msg != "" {
			// A value the language cannot say (an empty comm) selects no
			// process by that name; keep what the other lists say.
			continue
		}
		for i := range t.pats {
			// The kernel compares names, it has no globs.
			t.pats[i].wild, t.pats[i].shape, t.pats[i].lit = false, shapeExact, t.pats[i].s
		}
		fs = append(fs, newFilter(t))
	}
	return And(fs...)
}

func idStrings(ids []uint32) []string {
	if len(ids) == 0 {
		return nil
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	return s
}

func ids(s []string) []uint32 {
	if len(s) == 0 {
		return nil
	}
	out := make([]uint32, len(s))
	for i, v := range s {
		n, _ := strconv.ParseUint(v, 10, 32)
		out[i] = uint32(n)
	}
	return out
}

// intersect keeps the values (in the first set's order) that every set
// has; nil when there are no sets or nothing is common.
func intersect(sets [][]string) []string {
	if len(sets) == 0 {
		return nil
	}
	var out []string
	for _, v := range sets[0] {
		all := !slices.Contains(out, v)
		for _, s := range sets[1:] {
			all = all && slices.Contains(s, v)
		}
		if all {
			out = append(out, v)
		}
	}
	return out
}

package broker

import "sort"

// Retained appends to dst, in order, the retained events with Seq > after
// and Seq <= upTo, up to cap(dst)-len(dst) of them, and returns it. Readers
// that page through the window with it (the last Seq as the next after)
// hold one page, not the whole window; an event trimmed meanwhile is
// simply not returned.
func (b *Broker) Retained(after, upTo uint64, dst []*Entry) []*Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &b.events
	at := func(i int) *Entry { return r.buf[(r.head+i)%len(r.buf)] }
	// Sequence numbers grow along the ring.
	i := sort.Search(r.n, func(i int) bool { return at(i).Seq > after })
	for ; i < r.n && len(dst) < cap(dst); i++ {
		e := at(i)
		if e.Seq > upTo {
			break
		}
		dst = append(dst, e)
	}
	return dst
}

package broker

// ring is a FIFO of entries bounded by count and bytes (Entry.Size). It grows by
// doubling and never shrinks; trim drops from the front.
type ring struct {
	buf   []*Entry
	head  int
	n     int
	bytes int
}

func (r *ring) push(e *Entry) {
	if r.n == len(r.buf) {
		nb := make([]*Entry, max(16, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
	r.bytes += e.Size()
}

func (r *ring) pop() *Entry {
	if r.n == 0 {
		return nil
	}
	e := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.bytes -= e.Size()
	return e
}

// trim drops the oldest entries until at most maxN entries and, if maxBytes
// > 0, at most maxBytes bytes remain.
func (r *ring) trim(maxN, maxBytes int) {
	for r.n > maxN || (maxBytes > 0 && r.bytes > maxBytes && r.n > 1) {
		r.pop()
	}
}

func (r *ring) first() *Entry {
	if r.n == 0 {
		return nil
	}
	return r.buf[r.head]
}

func (r *ring) each(f func(*Entry)) {
	for i := 0; i < r.n; i++ {
		f(r.buf[(r.head+i)%len(r.buf)])
	}
}

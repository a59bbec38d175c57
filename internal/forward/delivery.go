package forward

import "sync/atomic"

// deliveryCounts are one forwarder's own totals, for the summary printed
// at exit; the stats counters are shared by every forwarder of a mode.
type deliveryCounts struct {
	delivered, failed, abandoned atomic.Uint64
}

// Delivery reports what this forwarder did with the events it took:
// delivered (a response that is not retried: the destination has the
// event), failed (given up after the retries, or not rebuildable as a
// request) and dropped (a full queue, or still queued or in flight when
// Run was cancelled).
func (f *Forwarder) Delivery() (delivered, failed, dropped uint64) {
	return f.n.delivered.Load(), f.n.failed.Load(), f.Dropped() + f.n.abandoned.Load()
}

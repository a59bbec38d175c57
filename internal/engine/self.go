package engine

import (
	"github.com/tlstap/tlstap/internal/capture/openssl"
	"github.com/tlstap/tlstap/internal/stats"
)

// Metric names of what self-exclusion kept out of the capture.
const (
	ExcludedConnsTotal   = "tlstap_self_excluded_connections_total"
	ExcludedRecordsTotal = "tlstap_self_excluded_records_total"
	ExcludedBytesTotal   = "tlstap_self_excluded_bytes_total"
)

// StatsSource is a capture source with kernel counters: *openssl.Source.
type StatsSource interface{ Stats() openssl.Stats }

// WatchSelfExclusion copies src's self-exclusion counters into the run's
// stats (hence /metrics and /api/v1/status) whenever the stats are read,
// rather than on a timer that would wake an idle tlstap.
func (e *Engine) WatchSelfExclusion(src StatsSource) {
	conns := e.Stats.Counter(ExcludedConnsTotal, "Connections not captured because one end is tlstap's own (listeners, forwarders, sinks).")
	recs := e.Stats.Counter(ExcludedRecordsTotal, "Data records of self-excluded connections dropped in the kernel.")
	bytes := e.Stats.Counter(ExcludedBytesTotal, "Plaintext bytes of self-excluded connections dropped in the kernel.")
	var last openssl.Stats // read hooks run one at a time
	e.Stats.OnRead(func() {
		st := src.Stats()
		// The kernel counters only grow; the differences keep the
		// registry's counters monotonic too. A closed source keeps its
		// final counters.
		addGrowth(conns, st.ExcludedConns, &last.ExcludedConns)
		addGrowth(recs, st.ExcludedRecords, &last.ExcludedRecords)
		addGrowth(bytes, st.ExcludedBytes, &last.ExcludedBytes)
	})
}

// addGrowth adds to c what a source's counter grew by since *before, and
// remembers now: the registry's counters stay monotonic when they mirror
// counters kept elsewhere (the kernel's, the watcher's).
func addGrowth(c *stats.Counter, now uint64, before *uint64) {
	if now > *before {
		c.Add(now - *before)
		*before = now
	}
}

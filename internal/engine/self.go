package engine

import (
	"context"
	"time"

	"github.com/tlstap/tlstap/internal/capture/openssl"
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
// stats (hence /metrics and /api/v1/status) every interval while the
// engine runs, and once more when it stops.
func (e *Engine) WatchSelfExclusion(src StatsSource, interval time.Duration) {
	conns := e.Stats.Counter(ExcludedConnsTotal, "Connections not captured because one end is tlstap's own (listeners, forwarders, sinks).")
	recs := e.Stats.Counter(ExcludedRecordsTotal, "Data records of self-excluded connections dropped in the kernel.")
	bytes := e.Stats.Counter(ExcludedBytesTotal, "Plaintext bytes of self-excluded connections dropped in the kernel.")
	var last openssl.Stats
	update := func() {
		st := src.Stats()
		// The kernel counters only grow; the differences keep the
		// registry's counters monotonic too.
		conns.Add(st.ExcludedConns - last.ExcludedConns)
		recs.Add(st.ExcludedRecords - last.ExcludedRecords)
		bytes.Add(st.ExcludedBytes - last.ExcludedBytes)
		last = st
	}
	e.Add(ServiceFunc(func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		defer update()
		for {
			select {
			case <-t.C:
				update()
			case <-ctx.Done():
				return nil
			}
		}
	}))
}

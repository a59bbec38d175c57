// Package stats holds tlstap's counters: everything the pipeline, capture,
// server and forwarders count (chunks, bytes, events by type, drops and
// truncations by reason). Counters are lock-free atomics so hot paths can
// bump them; the status endpoint and the Prometheus collector read
// snapshots.
package stats

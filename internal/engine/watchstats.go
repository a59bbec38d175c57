package engine

import "github.com/tlstap/tlstap/internal/capture/watch"

// Metric names of the library watcher's work (internal/capture/watch).
const (
	WatchNoticesTotal     = "tlstap_watch_notices_total"
	WatchInspectionsTotal = "tlstap_watch_inspections_total"
	WatchFilesTotal       = "tlstap_watch_files_total"
)

// WatcherStatsSource is a capture source with a library watcher:
// *openssl.Source.
type WatcherStatsSource interface{ WatcherStats() watch.Stats }

// WatchWatcher copies src's watcher counters into the run's stats (hence
// /metrics and /api/v1/status) whenever the stats are read, as
// WatchSelfExclusion does: an idle tlstap's CPU goes to this work when
// other programs start, so it is worth seeing.
func (e *Engine) WatchWatcher(src WatcherStatsSource) {
	notices := e.Stats.Counter(WatchNoticesTotal, "Kernel notices of a process mapping an executable file the library watcher did not know yet.")
	inspections := e.Stats.Counter(WatchInspectionsTotal, "Reads of a process's /proc/PID/maps by the library watcher.")
	files := e.Stats.Counter(WatchFilesTotal, "Distinct executable files the library watcher offered to its detectors.")
	var last watch.Stats // read hooks run one at a time
	e.Stats.OnRead(func() {
		// The watcher's counters only grow and are kept after it stops.
		st := src.WatcherStats()
		addGrowth(notices, st.Notices, &last.Notices)
		addGrowth(inspections, st.Inspections, &last.Inspections)
		addGrowth(files, st.Files, &last.Files)
	})
}

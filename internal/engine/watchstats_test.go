package engine_test

import (
	"io"
	"testing"

	"github.com/tlstap/tlstap/internal/capture/watch"
	"github.com/tlstap/tlstap/internal/config"
	"github.com/tlstap/tlstap/internal/engine"
)

type fakeWatcher struct{ st watch.Stats }

func (f *fakeWatcher) WatcherStats() watch.Stats { return f.st }

// TestWatchWatcher: the watcher's counters reach the run's stats when
// they are read, and stay monotonic if the source reports less (a closed
// watcher's kernel-side counter).
func TestWatchWatcher(t *testing.T) {
	e := engine.New(engine.Options{Config: config.Default(), Exit: true, Stdout: io.Discard, Stderr: io.Discard})
	src := &fakeWatcher{}
	e.WatchWatcher(src)
	for _, step := range []struct {
		name                      string
		st                        watch.Stats
		notices, inspected, files float64
	}{
		{"start", watch.Stats{Notices: 3, Inspections: 40, Files: 90}, 3, 40, 90},
		{"grows", watch.Stats{Notices: 10, Inspections: 42, Files: 91}, 10, 42, 91},
		{"smaller", watch.Stats{Notices: 2, Inspections: 42, Files: 91}, 10, 42, 91},
		{"grows again", watch.Stats{Notices: 12, Inspections: 43, Files: 91}, 12, 43, 91},
	} {
		src.st = step.st
		got := []float64{
			e.Stats.Value(engine.WatchNoticesTotal),
			e.Stats.Value(engine.WatchInspectionsTotal),
			e.Stats.Value(engine.WatchFilesTotal),
		}
		if want := []float64{step.notices, step.inspected, step.files}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("%s: notices, inspections, files = %v, want %v", step.name, got, want)
		}
	}
}

package stats_test

import (
	"sync"
	"testing"

	"github.com/tlstap/tlstap/internal/stats"
)

func TestSameSeriesSameCounter(t *testing.T) {
	s := stats.NewSet()
	a := s.Counter(stats.DropsTotal, "Entries dropped.", "reason", "x")
	b := s.Counter(stats.DropsTotal, "", "reason", "x")
	c := s.Counter(stats.DropsTotal, "", "reason", "y")
	if a != b {
		t.Error("same name and labels gave two counters")
	}
	if a == c {
		t.Error("different labels gave one counter")
	}
	a.Add(2)
	b.Inc()
	if got := s.Value(stats.DropsTotal, "reason", "x"); got != 3 {
		t.Errorf("Value = %v, want 3", got)
	}
	if got := s.Value("never_registered"); got != 0 {
		t.Errorf("unregistered Value = %v", got)
	}
}

func TestKindMismatchDoesNotPanic(t *testing.T) {
	s := stats.NewSet()
	g := s.Gauge("m", "")
	g.Set(5)
	c := s.Counter("m", "") // registered as a gauge: a detached counter
	c.Inc()
	if got := s.Value("m"); got != 5 {
		t.Errorf("Value = %v, want the gauge's 5", got)
	}
	s.Counter("n", "").Inc()
	s.Gauge("n", "").Set(9)
	if got := s.Value("n"); got != 1 {
		t.Errorf("Value = %v, want the counter's 1", got)
	}
}

func TestSnapshot(t *testing.T) {
	s := stats.NewSet()
	s.Counter("b_total", "B.", "k", "2").Add(2)
	s.Counter("b_total", "", "k", "1").Add(1)
	s.Gauge("a", "A.").Set(-4)
	s.Counter("c", "", "odd").Add(7) // odd trailing label name is ignored
	snap := s.Snapshot()
	want := []struct {
		name  string
		label string
		gauge bool
		value float64
	}{
		{"a", "", true, -4},
		{"b_total", "1", false, 1},
		{"b_total", "2", false, 2},
		{"c", "", false, 7},
	}
	if len(snap) != len(want) {
		t.Fatalf("snapshot has %d samples, want %d: %+v", len(snap), len(want), snap)
	}
	for i, w := range want {
		got := snap[i]
		label := ""
		if len(got.Labels) > 0 {
			label = got.Labels[0].Value
		}
		if got.Name != w.name || label != w.label || got.Gauge != w.gauge || got.Value != w.value {
			t.Errorf("sample %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestConcurrent(t *testing.T) {
	s := stats.NewSet()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.Counter(stats.ChunksTotal, "").Inc()
				s.Gauge(stats.Connections, "").Add(1)
				_ = s.Snapshot()
			}
		})
	}
	wg.Wait()
	if got := s.Value(stats.ChunksTotal); got != 8000 {
		t.Errorf("counter %v, want 8000", got)
	}
	if got := s.Value(stats.Connections); got != 8000 {
		t.Errorf("gauge %v, want 8000", got)
	}
}

// A value kept outside the set is copied in when the set is read, by
// Snapshot and by Value alike.
func TestOnReadRunsBeforeEveryRead(t *testing.T) {
	s := stats.NewSet()
	c := s.Counter("outside_total", "")
	var outside uint64
	s.OnRead(func() { c.Add(outside - c.Load()) })
	for i, read := range []func() float64{
		func() float64 { return s.Value("outside_total") },
		func() float64 { return s.Snapshot()[0].Value },
	} {
		outside += 5
		if got := read(); got != float64(outside) {
			t.Errorf("read %d: got %v, want %d", i, got, outside)
		}
	}
}

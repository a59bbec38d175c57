package stats

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the current value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down.
type Gauge struct{ v atomic.Int64 }

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Add adds n (may be negative).
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Load returns the current value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// Label is one name=value pair of a series.
type Label struct{ Name, Value string }

// Sample is one series' value at snapshot time.
type Sample struct {
	Name   string
	Help   string
	Labels []Label
	Gauge  bool
	Value  float64
}

type series struct {
	name   string
	help   string
	labels []Label
	c      *Counter
	g      *Gauge
}

// Set is a registry of named counters and gauges. Registering the same name
// and labels twice returns the same counter, so packages need not share
// pointers to count the same thing.
type Set struct {
	mu     sync.Mutex
	series map[string]*series
	hists  map[string]*Histogram

	readMu sync.Mutex // serialises the read hooks
	onRead []func()
}

// OnRead registers f to run before every Snapshot and Value, so a value
// kept elsewhere (kernel map counters, say) is copied in when someone
// looks rather than by a timer that wakes an idle process. Hooks run one
// at a time and must not read s.
func (s *Set) OnRead(f func()) {
	s.readMu.Lock()
	s.onRead = append(s.onRead, f)
	s.readMu.Unlock()
}

func (s *Set) runHooks() {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for _, f := range s.onRead {
		f()
	}
}

// NewSet returns an empty registry.
func NewSet() *Set { return &Set{series: make(map[string]*series)} }

func key(name string, labels []Label) string {
	var b strings.Builder
	b.WriteString(name)
	for _, l := range labels {
		b.WriteByte(0)
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(l.Value)
	}
	return b.String()
}

// labelPairs turns "k", "v", "k2", "v2" into labels; an odd trailing name is ignored.
func labelPairs(kv []string) []Label {
	ls := make([]Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, Label{kv[i], kv[i+1]})
	}
	return ls
}

func (s *Set) get(name, help string, gauge bool, kv []string) *series {
	labels := labelPairs(kv)
	k := key(name, labels)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sr, ok := s.series[k]; ok {
		return sr
	}
	sr := &series{name: name, help: help, labels: labels}
	if gauge {
		sr.g = new(Gauge)
	} else {
		sr.c = new(Counter)
	}
	s.series[k] = sr
	return sr
}

// Counter returns the counter name{labels}, creating it at zero. kv are
// alternating label names and values.
func (s *Set) Counter(name, help string, kv ...string) *Counter {
	sr := s.get(name, help, false, kv)
	if sr.c == nil {
		// Registered as a gauge before: hand out a detached counter rather
		// than panic; the mismatch shows up as a missing series in tests.
		return new(Counter)
	}
	return sr.c
}

// Gauge returns the gauge name{labels}, creating it at zero.
func (s *Set) Gauge(name, help string, kv ...string) *Gauge {
	sr := s.get(name, help, true, kv)
	if sr.g == nil {
		return new(Gauge)
	}
	return sr.g
}

// Snapshot returns every series, sorted by name and labels.
func (s *Set) Snapshot() []Sample {
	s.runHooks()
	s.mu.Lock()
	out := make([]Sample, 0, len(s.series))
	for _, sr := range s.series {
		smp := Sample{Name: sr.name, Help: sr.help, Labels: sr.labels}
		if sr.g != nil {
			smp.Gauge = true
			smp.Value = float64(sr.g.Load())
		} else {
			smp.Value = float64(sr.c.Load())
		}
		out = append(out, smp)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Sample) int {
		return strings.Compare(key(a.Name, a.Labels), key(b.Name, b.Labels))
	})
	return out
}

// Value returns the current value of name{labels}, or 0 if it was never registered.
func (s *Set) Value(name string, kv ...string) float64 {
	s.runHooks()
	k := key(name, labelPairs(kv))
	s.mu.Lock()
	sr, ok := s.series[k]
	s.mu.Unlock()
	switch {
	case !ok:
		return 0
	case sr.g != nil:
		return float64(sr.g.Load())
	default:
		return float64(sr.c.Load())
	}
}

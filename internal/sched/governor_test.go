package sched

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestGovernorBusy: the ring reader's business alone moves the threads,
// and a refused change leaves the class as it was and is tried again.
func TestGovernorBusy(t *testing.T) {
	var sets []Class
	refuse := false
	g := &Governor{
		Set: func(c Class) (int, error) {
			if refuse {
				return 0, errors.New("refused")
			}
			sets = append(sets, c)
			return 3, nil
		},
		class: RealTime,
	}
	steps := []struct {
		busy   bool
		refuse bool
		want   Class
	}{
		{busy: false, want: RealTime}, // already there: no change
		{busy: true, want: Fair},
		{busy: true, want: Fair},
		{busy: false, refuse: true, want: Fair}, // refused: still fair
		{busy: false, want: RealTime},           // tried again
	}
	for i, s := range steps {
		refuse = s.refuse
		g.Busy(s.busy)
		if got := g.current(); got != s.want {
			t.Errorf("step %d (busy %v): class %v, want %v", i, s.busy, got, s.want)
		}
	}
	if want := []Class{Fair, RealTime}; len(sets) != len(want) || sets[0] != want[0] || sets[1] != want[1] {
		t.Errorf("changes made: %v, want %v", sets, want)
	}
}

// TestGovernorCPU: the threads go to the fair class once the decaying
// average of the process's CPU use is over the budget, not for a burst,
// and back once it is under; the ring reader's business wins over a light
// process; when Run ends they are fair for good.
func TestGovernorCPU(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	values := make(chan time.Duration)
	switched := make(chan Class, 16)
	now := time.Unix(1e9, 0)
	g := &Governor{
		Set: func(c Class) (int, error) { return 1, nil },
		// The test paces the windows: Run asks for the CPU time (ready)
		// once it is done with the last window, and the test answers.
		CPU: func() (time.Duration, error) {
			select {
			case ready <- struct{}{}:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			select {
			case v := <-values:
				return v, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		},
		Now:      func() time.Time { return now },
		Window:   time.Millisecond, // real time between looks: keeps the test quick
		Longest:  time.Millisecond,
		Horizon:  time.Second,
		Budget:   0.2,
		OnSwitch: func(c Class, _ int, _ error) { switched <- c },
		class:    RealTime,
	}
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()

	var total time.Duration
	<-ready
	values <- 0 // Run's first reading
	<-ready
	// window: 100 ms pass, of which the process used used; returns once
	// Run is done with it.
	window := func(used time.Duration) {
		now = now.Add(100 * time.Millisecond)
		total += used
		values <- total
		<-ready
	}
	none := func(what string) {
		t.Helper()
		select {
		case c := <-switched:
			t.Fatalf("%s: switched to %v", what, c)
		default:
		}
	}
	expect := func(what string, want Class) {
		t.Helper()
		select {
		case got := <-switched:
			if got != want {
				t.Fatalf("%s: switched to %v, want %v", what, got, want)
			}
		default:
			t.Fatalf("%s: no switch to %v", what, want)
		}
	}
	ms := time.Millisecond

	window(50 * ms) // a burst: half a CPU for 100 ms
	window(0)
	none("a burst of 50 ms")
	for range 10 {
		window(0)
	}
	// A whole CPU: the average (time constant 1 s, 0.016 left of the
	// burst) crosses 20 % in the third window (0.27), not before (0.11,
	// 0.19).
	window(100 * ms)
	window(100 * ms)
	none("two windows of a whole CPU")
	window(100 * ms)
	expect("three windows of a whole CPU", Fair)
	// Then it decays by e^-0.1 a light window: 0.245, 0.222, 0.201, 0.182.
	window(0)
	window(0)
	window(0)
	none("three light windows after them")
	window(0)
	expect("a fourth light window", RealTime)

	g.Busy(true)
	expect("busy", Fair)
	window(0)
	window(0)
	none("light, but busy")
	g.Busy(false)
	expect("not busy", RealTime)

	for range 5 {
		window(100 * ms)
	}
	expect("heavy again", Fair)
	g.Busy(false)
	none("not busy, but heavy")
	cancel()
	<-done
	none("the end, already fair")
	if g.current() != Fair {
		t.Fatalf("after Run: %v", g.current())
	}
	g.Busy(false)
	if g.current() != Fair {
		t.Fatalf("Busy(false) after Run: %v, want fair for good", g.current())
	}
}

// TestGovernorRunStarts: Run puts the threads in the class the state asks
// for as soon as it starts, not after its first window (an hour here):
// real-time unless the ring reader is already busy.
func TestGovernorRunStarts(t *testing.T) {
	for _, c := range []struct {
		name string
		busy bool
		want []Class
	}{
		{"idle", false, []Class{RealTime, Fair}},
		{"busy", true, nil}, // fair from start to end: nothing to change
	} {
		t.Run(c.name, func(t *testing.T) {
			sets := make(chan Class, 4)
			g := NewGovernor(Fair)
			g.Set = func(c Class) (int, error) { sets <- c; return 1, nil }
			g.Window = time.Hour
			if c.busy {
				g.Busy(true)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { defer close(done); g.Run(ctx) }()
			var got []Class
			if !c.busy {
				// Wait for the change an hour-long window cannot explain.
				select {
				case s := <-sets:
					got = append(got, s)
				case <-time.After(10 * time.Second):
					t.Fatal("no change when Run started")
				}
			}
			cancel()
			<-done
			close(sets)
			for s := range sets {
				got = append(got, s)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("changes %v, want %v", got, c.want)
			}
		})
	}
}

// TestGovernorRunEndsFair: Run puts real-time threads back in the fair
// class when it ends.
func TestGovernorRunEndsFair(t *testing.T) {
	var last Class = RealTime
	g := &Governor{
		Set:     func(c Class) (int, error) { last = c; return 1, nil },
		CPU:     func() (time.Duration, error) { return 0, nil },
		Now:     time.Now,
		Window:  time.Hour,
		Horizon: DefaultHorizon,
		Budget:  DefaultBudget,
		class:   RealTime,
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Run(ctx)
	if last != Fair || g.current() != Fair {
		t.Fatalf("after Run: set %v, class %v; want fair", last, g.current())
	}
}

// TestGovernorWindow: the window doubles while the process is idle (under
// 1 % of a CPU), up to Longest, and is Window again as soon as it is not.
func TestGovernorWindow(t *testing.T) {
	g := &Governor{Window: 250 * time.Millisecond, Longest: 2 * time.Second}
	ms := time.Millisecond
	for _, c := range []struct {
		window, used, passed, want time.Duration
	}{
		{250 * ms, 0, 250 * ms, 500 * ms},
		{500 * ms, 4 * ms, 500 * ms, 1000 * ms}, // 0.8 %: idle
		{1000 * ms, 0, 1000 * ms, 2000 * ms},
		{2000 * ms, 0, 2000 * ms, 2000 * ms}, // at Longest
		{2000 * ms, 30 * ms, 2000 * ms, 250 * ms},
		{250 * ms, 3 * ms, 250 * ms, 250 * ms}, // 1.2 %: active
		{250 * ms, 0, 400 * ms, 500 * ms},      // a late timer
	} {
		if got := g.next(c.window, c.used, c.passed); got != c.want {
			t.Errorf("window %v, %v used of %v: next %v, want %v", c.window, c.used, c.passed, got, c.want)
		}
	}
}

// TestProcessCPU: the process's CPU time grows with work done.
func TestProcessCPU(t *testing.T) {
	a, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := processCPU()
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Fatalf("CPU time %v then %v after 20 ms of work", a, b)
	}
}

// current returns the class the threads are in.
func (g *Governor) current() Class {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.class
}

package sched

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Governor keeps the process's threads in the real-time class only while
// that cannot cost the programs tlstap traces more than a little CPU:
// RealTime while the ring reader is not busy (Busy) and the process's
// recent CPU use is under Budget of one CPU, Fair otherwise.
//
// Why the CPU bound: the ring reader's business says when records come
// densely, but not when tlstap is busy for another reason (a large HAR
// export, a heavy query, a web UI client replaying history). A real-time
// thread doing that would run ahead of every fair task on its CPU for as
// long as it takes, the kernel's throttling aside.
//
// Recent use is an average that decays with time constant Horizon, looked
// at every Window: a burst (the first requests' events, the first look at
// a new program's libraries, tens of ms) stays under the budget, while
// work that takes a whole CPU crosses it after about a fifth of Horizon
// (1 - e^-0.22 = 0.2), which bounds how long a real-time tlstap runs ahead
// of the traced programs. A plain per-window share put the threads in the
// fair class for the first requests after start: 20 ms of work in a 100 ms
// window was "heavy".
type Governor struct {
	// Set changes the class of every thread (sched.Set); CPU returns the
	// process's CPU time so far; Now the time (time.Now). Tests replace
	// them.
	Set func(Class) (int, error)
	CPU func() (time.Duration, error)
	Now func() time.Time
	// Window is how often the CPU use is looked at while tlstap does
	// anything. While tlstap is idle (under 1 % of a CPU in a window) the
	// window doubles, up to Longest: each look wakes the process, and on a
	// virtual machine a few wake-ups a second cost more than the idle
	// process does otherwise (0.5 % of a core here with a fixed 250 ms
	// window).
	Window, Longest time.Duration
	// Horizon is the decaying average's time constant, Budget the share
	// of one CPU above which the threads go to the fair class until the
	// average is under it again.
	Horizon time.Duration
	Budget  float64
	// OnSwitch, if set, is told each change tried: the class, how many
	// threads were changed and Set's error. Called with the governor's
	// lock held, on Busy's or Run's goroutine.
	OnSwitch func(c Class, threads int, err error)

	mu                   sync.Mutex
	class                Class
	busy, heavy, stopped bool
	recent               float64 // the decaying average, in CPUs
}

// Defaults: a lone request's events take well under a millisecond of CPU,
// so sparse traffic never comes near the budget; a real-time tlstap doing
// something that takes a whole CPU gives it back after ~0.2 s, or one
// window later after a long idle time (at most 2 s).
const (
	DefaultWindow  = 100 * time.Millisecond
	DefaultLongest = 2 * time.Second
	DefaultHorizon = time.Second
	DefaultBudget  = 0.2
)

// NewGovernor returns a governor for threads that are in class c (the
// caller put them there), with the defaults.
func NewGovernor(c Class) *Governor {
	return &Governor{Set: Set, CPU: processCPU, Now: time.Now, Window: DefaultWindow, Longest: DefaultLongest,
		Horizon: DefaultHorizon, Budget: DefaultBudget, class: c}
}

// Busy says whether the ring reader is busy (ringpoll.Waiter.OnBusy).
func (g *Governor) Busy(busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = busy
	g.apply()
}

// Run puts the threads in the class the state asks for, looks at the
// process's CPU use every Window until ctx is done, then puts them in the
// fair class: a tlstap that stops capturing (or a test that ran it in its
// own process) leaves no real-time thread behind.
func (g *Governor) Run(ctx context.Context) {
	window := g.Window
	t := time.NewTimer(window)
	defer t.Stop()
	defer func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.stopped = true // whatever Busy says later
		g.apply()
	}()
	last, _ := g.CPU()
	since := g.Now()
	// The class the state asks for from the start, not after the first
	// window: the caller starts Run once the heavy start-up (attaching,
	// warming the ring) is done, and the average starts at zero, so a
	// request made as soon as tlstap listens is captured by a real-time
	// reader. Waiting for the first look left the first one to five
	// requests of every latency bench run to the fair class.
	g.mu.Lock()
	g.apply()
	g.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cpu, err := g.CPU()
			if err != nil {
				t.Reset(window)
				continue
			}
			now := g.Now()
			used, passed := cpu-last, now.Sub(since)
			last, since = cpu, now
			window = g.next(window, used, passed)
			t.Reset(window)
			g.mu.Lock()
			g.observe(used, passed)
			g.apply()
			g.mu.Unlock()
		}
	}
}

// observe folds a window in which the process used used of the time
// passed into the decaying average, and says whether it is over the
// budget. The timer may have been late: the share is of the time that
// really passed. g.mu is held.
func (g *Governor) observe(used, passed time.Duration) {
	if passed <= 0 {
		return
	}
	keep := math.Exp(-float64(passed) / float64(g.Horizon))
	g.recent = g.recent*keep + float64(used)/float64(passed)*(1-keep)
	g.heavy = g.recent > g.Budget
}

// next returns the window after one of length window in which the
// process used used of the time passed.
func (g *Governor) next(window, used, passed time.Duration) time.Duration {
	if used*100 < passed {
		return min(2*window, max(g.Longest, g.Window))
	}
	return g.Window
}

// apply moves the threads to the class the state asks for. g.mu is held.
func (g *Governor) apply() {
	want := RealTime
	if g.busy || g.heavy || g.stopped {
		want = Fair
	}
	if want == g.class {
		return
	}
	n, err := g.Set(want)
	if err == nil {
		g.class = want
	}
	if g.OnSwitch != nil {
		g.OnSwitch(want, n, err)
	}
}

// processCPU returns the process's user and system time so far.
func processCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

package sched

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Governor keeps the process's threads in the real-time class only while
// that cannot cost the programs tlstap traces more than a little CPU:
// RealTime while the ring reader is not busy (Busy) and the process used
// less than Budget of one CPU over the last Window, Fair otherwise.
//
// Why the CPU bound: the ring reader's business says when records come
// densely, but not when tlstap is busy for another reason (a large HAR
// export, a heavy query, a web UI client replaying history). A real-time
// thread doing that would run ahead of every fair task on its CPU for as
// long as it takes, the kernel's throttling aside; with the bound, at most
// one Window of it.
type Governor struct {
	// Set changes the class of every thread (sched.Set); CPU returns the
	// process's CPU time so far. Tests replace them.
	Set func(Class) (int, error)
	CPU func() (time.Duration, error)
	// Window is how often the CPU use is looked at while tlstap does
	// anything, Budget the fraction of one CPU above which the threads go
	// to the fair class until a window under it. While tlstap is idle
	// (under 1 % of a CPU) the window doubles, up to Longest: each look
	// wakes the process, and on a virtual machine a few wake-ups a second
	// cost more than the idle process does otherwise (0.5 % of a core
	// here with a 250 ms window).
	Window, Longest time.Duration
	Budget          float64
	// OnSwitch, if set, is told each change tried: the class, how many
	// threads were changed and Set's error. Called with the governor's
	// lock held, on Busy's or Run's goroutine.
	OnSwitch func(c Class, threads int, err error)

	mu                   sync.Mutex
	class                Class
	busy, heavy, stopped bool
}

// Default windows and budget: a lone request's events take well under a
// millisecond of CPU, so sparse traffic never comes near the budget, and
// a real-time tlstap doing something heavy gives the CPU back within a
// tenth of a second once it was doing anything, within two seconds after
// a long idle time. The short window also ends the fair start (attaching,
// the first look at every program) soon after that work is done.
const (
	DefaultWindow  = 100 * time.Millisecond
	DefaultLongest = 2 * time.Second
	DefaultBudget  = 0.2
)

// NewGovernor returns a governor for threads that are in class now (the
// caller put them there), with the default window and budget.
func NewGovernor(now Class) *Governor {
	return &Governor{Set: Set, CPU: processCPU, Window: DefaultWindow, Longest: DefaultLongest, Budget: DefaultBudget, class: now}
}

// Busy says whether the ring reader is busy (ringpoll.Waiter.OnBusy).
func (g *Governor) Busy(busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = busy
	g.apply()
}

// Class returns the class the threads are in.
func (g *Governor) Class() Class {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.class
}

// Run looks at the process's CPU use every Window until ctx is done, then
// puts the threads in the fair class: a tlstap that stops capturing (or
// a test that ran it in its own process) leaves no real-time thread
// behind.
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
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu, err := g.CPU()
			if err != nil {
				t.Reset(window)
				continue
			}
			// The timer may have been late: the share is of the time
			// that really passed.
			used, passed := cpu-last, now.Sub(since)
			heavy := float64(used) > g.Budget*float64(passed)
			last, since = cpu, now
			window = g.next(window, used, passed)
			t.Reset(window)
			g.mu.Lock()
			g.heavy = heavy
			g.apply()
			g.mu.Unlock()
		}
	}
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

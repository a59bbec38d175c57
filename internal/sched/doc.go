// Package sched puts tlstap's threads in the kernel's real-time scheduling
// class (tlstap tls --realtime).
//
// Why: on a machine whose CPUs are busy at the moment a request is made,
// the thread the ring buffer wakes waits in the run queue behind the very
// programs it traces. The fair scheduler lets a running task finish its
// slice before a woken one of the same class runs, so a single request's
// events waited up to a scheduler tick (4 ms at HZ=250) here, whatever the
// nice value or the requested slice (docs/benchmarks.md, issue 19,
// sessions 6 and 7). A SCHED_FIFO thread preempts every fair task the
// moment it is woken.
//
// The price is that tlstap then always runs ahead of the programs it
// traces: under load it takes the same CPU time (the ring reader still
// batches), but in its own bursts. The kernel's real-time throttling
// (kernel.sched_rt_runtime_us, and the fair server on 6.12+) keeps a
// runaway real-time thread from taking a CPU whole. Priority 1, the lowest
// real-time priority, stays below every real-time thread the machine
// already has (interrupt threads run at 50).
package sched

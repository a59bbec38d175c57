// Package sched puts tlstap's threads in the kernel's real-time scheduling
// class while traffic is sparse and tlstap light (tlstap tls, run.realtime,
// on by default; Governor decides), and faults its code in at start.
//
// Why: on a machine whose CPUs are busy at the moment a request is made,
// the thread the ring buffer wakes waits in the run queue behind the very
// programs it traces. The fair scheduler lets a running task go on before
// a woken one of the same class, so a single request's events waited up
// to a scheduler tick (4 ms at HZ=250) here, whatever the nice value or
// the requested slice (docs/benchmarks.md, issue 19, sessions 6 and 7). A
// SCHED_FIFO thread preempts every fair task the moment it is woken.
//
// Under load that would have tlstap run ahead of the programs it traces,
// in bursts, and cost them throughput; but then nothing waits for a
// wake-up (the ring reader batches), so Governor (told by
// ringpoll.Waiter.OnBusy) puts the threads back in the fair class while
// records come densely and in SCHED_FIFO again once the ring has been
// quiet. It does the same while tlstap uses more than a fifth of a CPU,
// averaged over about a second, for any other reason (an export, a heavy
// query), so a real-time tlstap doing such work runs ahead of the traced
// programs for about 0.2 s at most (one more look, up to 2 s, after a long
// idle time).
// The kernel's real-time throttling
// (kernel.sched_rt_runtime_us, and the fair server on 6.12+) keeps a
// runaway real-time thread from taking a CPU whole. Priority 1, the lowest
// real-time priority, stays below every real-time thread the machine
// already has (interrupt threads run at 50).
package sched

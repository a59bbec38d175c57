// Package sched gives tlstap's threads a short scheduling slice, so that a
// thread woken to deliver an event runs at once rather than after the
// programs it traces.
//
// Why: on a machine whose CPUs are busy with the traced programs (curl and
// nginx on two vCPUs, say), the thread the kernel wakes for a ring record
// waited in the run queue for hundreds of µs behind the very program that
// produced the record, once to read the record and again on each hand-off
// inside Go's runtime (docs/benchmarks.md, issue 19). Linux's EEVDF
// scheduler (6.6 and later) takes a per-thread slice request for SCHED_OTHER
// threads (sched_setattr's sched_runtime, 100 µs to 100 ms, since 6.12);
// a woken thread whose slice is shorter than the running one's gets an
// earlier virtual deadline and preempts it (the PREEMPT_SHORT feature).
// That changes when tlstap runs, not how much: its weight (nice value) is
// unchanged, so under load it gets no larger share of the CPUs than before
// and cannot starve anything; a short slice only means shorter turns, more
// often. No real-time policy is used for that reason: a SCHED_FIFO reader
// spinning on a full ring could take a CPU away from everything else.
//
// The request needs no privilege and is inherited by threads created
// later (clone copies it), which is how Go's runtime adds threads: the
// package sets it on every thread the process has at the time and the rest
// inherit it. Kernels without it (before 6.12) ignore sched_runtime for
// SCHED_OTHER or refuse the call; either way nothing else changes.
//
// tlstap asks for it only with --sched-slice. Measured on a 2-vCPU VM
// (docs/benchmarks.md, issue 19, session 6), the shortest slice did not
// bring single events to standard output sooner, and made them reach stream
// clients later: every thread of tlstap preempts on wake-up, including the
// threads Go's scheduler wakes to look for work and finds none, which then
// preempt the stream client instead of the traced programs.
package sched

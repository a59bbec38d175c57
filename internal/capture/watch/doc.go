// Package watch finds executable files as processes map them, so capture
// can attach to TLS libraries that appear after it started: programs
// started later, libraries loaded with dlopen or from LD_LIBRARY_PATH, and
// files in other mount namespaces (containers, `unshare -m`).
//
// Two tracepoints tell user space which process to look at: sched:
// sched_process_exec (the program itself, which the kernel maps without an
// mmap call) and the return of an mmap(2) with PROT_EXEC of a file (the
// dynamic loader mapping a library's code). The watcher then reads
// /proc/PID/maps and hands every executable file it has not seen before,
// by device and inode, to its Detectors in order; the first that takes it
// wins. Paths are opened through /proc/PID/root, so a file is read in the
// mount namespace of the process that mapped it.
//
// A Detector is the plug-in point: OpenSSL/GnuTLS capture is one, and a Go
// crypto/tls detector can be another. The watcher keeps no per-process
// state (only the set of files seen, bounded by MaxFiles), so processes
// that come and go leave nothing behind.
//
// # The window
//
// A library is probed some milliseconds after its first mapping (ring
// wake-up, /proc read, ELF symbol read, uprobe attach; docs/benchmarks.md
// has the measured figures). TLS calls a process makes before that are
// not captured; those after are.
package watch

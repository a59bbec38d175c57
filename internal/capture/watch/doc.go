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
// that come and go leave nothing behind. Options.ExecOnly watches process
// starts only (Go programs, when the libraries were named by hand).
//
// # Cost per new file, not per process
//
// The kernel side resolves the file each notice is about (from the VMA the
// exec or mmap created, so device and inode are those /proc/PID/maps
// shows, overlayfs included) and sends nothing for a file user space has
// marked known in an LRU map. User space marks a file known after a maps
// read in which the detectors had it, or at once when a notice names only
// files it has already seen in other processes' maps (no /proc read). So
// a process whose program and libraries were all looked at before costs
// a tracepoint and a hash lookup in the kernel and nothing in tlstap; a
// machine running builds no longer keeps tlstap reading /proc.
// Stats.Inspections counts the maps reads.
//
// A file's identity is its device, inode, inode generation and change
// time: an inode number freed by a deletion is soon reused (a build
// replacing its output), and a file rewritten in place keeps its number;
// both then differ in generation or change time and are looked at again.
// A file seen only in the first scan (no notice named it) has no
// generation or change time yet and is taken to be the file a later
// notice names under its number; an inode is not reused while any
// process maps it, so only a file deleted and unmapped between the scan
// and that notice could be mistaken. A detector's answer is final per
// file; one that depends on the process (the Go detector's filter) is
// asked again after Forget, which the capture calls when its filter
// changes and which clears both sets.
//
// # The window
//
// A library is probed some milliseconds after its first mapping (ring
// wake-up, /proc read, ELF symbol read, uprobe attach; docs/benchmarks.md
// has the measured figures). TLS calls a process makes before that are
// not captured; those after are.
package watch

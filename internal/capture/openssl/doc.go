// Package openssl captures TLS plaintext from programs using OpenSSL's
// libssl, with eBPF uprobes on SSL_read, SSL_read_ex, SSL_write,
// SSL_write_ex and SSL_do_handshake (entry and return) and SSL_free, and
// from programs using GnuTLS (gnutls_record_send, _send2, _send_range,
// gnutls_record_recv, _recv_seq, gnutls_handshake and gnutls_deinit), from
// programs using NSS (NSPR's PR_Write, PR_Send, PR_Read, PR_Recv, PR_Writev
// and PR_Close, with NSS's SSL_ImportFD; see "NSS" below), and from Go
// programs' crypto/tls (see "Go programs" below). All share the
// ring buffer, the connection map and the tracepoints, so their chunks
// flow through one reader; Chunk.Library tells them apart.
//
// This is the one description of how capture works; the BPF C in bpf/
// implements it, and docs/architecture.md shows where Source.Run's chunks
// go next.
//
// # GnuTLS
//
// A GnuTLS session is handled exactly like an SSL*: the same BPF helpers,
// the same per-(pid, session) state, so the fd and 4-tuple come from the
// socket tracepoints inside the call even when the program's transport
// pointer is not an fd (libcurl-gnutls). gnutls_record_send calling
// gnutls_record_send2 (3.7.9) is counted once: the inner return emits and
// ends the call. A send that fails with GNUTLS_E_AGAIN or _INTERRUPTED
// has already encrypted its record, and its retry may pass a NULL buffer:
// the plaintext is emitted at the failed call (at most one record, 16 KiB)
// and the retry's success emits nothing.
//
// The TLS version is read where gnutls_protocol_get_version reads it
// (session->security_parameters.pversion->id): rather than a table of
// struct offsets per release, the two offsets are decoded from that
// function's machine code when the library is attached (gnutlsver.go). A
// build whose code has another shape gets version 0, never a guess. It is
// read until known, then kept for the session: a GnuTLS session's version
// is fixed by its first handshake.
//
// # NSS
//
// NSPR's PR_Write, PR_Send, PR_Read, PR_Recv and PR_Writev (libnspr4) call
// the top layer of the PRFileDesc they are given, so they serve files,
// pipes and plain sockets as well as TLS. Only a descriptor whose layer
// stack carries NSS's SSL layer is captured: that layer's identity is a
// number NSPR hands out at run time, different in each process, so the
// return of SSL_ImportFD (libssl3), which returns the SSL layer, teaches it
// per process; a PR_* call then checks the descriptor's identity (and up
// to three layers below, for a program that pushed its own layer on top)
// and returns at once otherwise. The descriptor pointer is the connection,
// tracked like an SSL*: fd and 4-tuple from the socket tracepoints inside
// the call (the handshake runs inside the first PR_Read or PR_Write),
// PR_Write emitted at entry under the same contract as SSL_write (PR_Write
// returns what NSS accepted, -1 with PR_WOULD_BLOCK_ERROR when nothing),
// PR_Writev emitted at return in vector order, PR_Recv with PR_MSG_PEEK
// skipped (the data is read again), PR_Close as the close. The TLS version
// of NSS connections is not read (0). libnspr4 and libssl3 are both
// attached (Library.Kind "nss"); a build folding them into one file
// (Firefox's libnss3) is recognised by its symbols as well.
//
// # How a chunk gets its metadata
//
// The entry probe records the call in the thread's own storage (BPF task
// storage). While the thread is inside the call, the tp_btf tracepoints
// sock:sock_send_length and sock:sock_recv_length give the socket's struct
// sock, from which the 4-tuple is read in the kernel (no /proc race with
// short-lived processes), and the fd is the first argument of the syscall
// they fire in (read, readv, recvfrom, recvmsg, write, writev, sendto,
// sendmsg), read from the thread's saved registers: no tracepoint runs at
// the entry of every read and write. SSL_do_handshake (used by SSL_connect and
// SSL_accept) is tracked the same way, so even a first read that OpenSSL
// serves from data the handshake read ahead has them. Both are cached per (pid, SSL*), so a read that
// OpenSSL serves from its own buffer, without a syscall, still carries them.
// This works whether the program hands OpenSSL its fd (SSL_set_fd: nginx,
// Python) or drives the socket through its own BIO (curl, openssl s_client).
// A connection opened before tlstap started gets its tuple on its next
// syscall. Neither kprobes nor fentry are used.
//
// The TLS version is read from the SSL object: offset 0 for OpenSSL 1.1 to
// 3.1, 64 for 3.2 and later (SSL_CONNECTION), told apart by the library's
// symbol versions or, in static binaries, its version string (offset 0 when
// neither is there). A value that does not look like a TLS version is
// reported as 0. Only 3.0 is verified here (Debian 12).
//
// # Memory BIOs
//
// Python's asyncio and node run OpenSSL over memory BIOs: their SSL calls
// make no socket call, their event loop sends what a call produced right
// after it on the same thread. After any OpenSSL call on a connection whose
// tuple is still unknown, the thread remembers that connection (only the
// latest); the thread's next socket send outside an SSL call teaches it
// the fd (the send syscall's own argument, in the thread's saved
// registers) and tuple (struct sock of the same syscall), once. Receives
// teach nothing (after a call with nothing to send the loop's next
// receive may be another connection's), nor does a write to a file or
// pipe (it never reaches the sock tracepoints). Inside a call, likewise,
// only a socket's send or receive teaches the fd, so a file read during
// node's handshake is not taken for it.
// docs/protocol.md says how reliable this is.
//
// # Delivery and loss
//
// Plaintext travels in a BPF ring buffer (Options.RingBytes) as
// variable-size records of at most MaxData bytes; a larger call arrives as
// several chunks in order. Nothing is cut silently: bytes that do not fit
// in the ring, exceed MaxCallBytes in one call, or cannot be read from the
// process are counted in Stats and reported to the consumer as a
// capture.Lost chunk of the connection and direction, placed where the gap
// is. A connection ends with a capture.Close chunk on SSL_free or on
// close(2) of its fd, whichever comes first, or when its process exits
// (killed processes close nothing themselves).
//
// Before any probe is attached, New has every page of the ring written once
// (tlstap_ring_warm, Source.warmRing): on a hypervisor with shadow page
// tables the first write to each page of a fresh ring traps to the host,
// and over the ring's first lap that cost fell on the traced calls.
//
// # State
//
// Every per-connection, per-fd, per-call and per-process entry in the BPF
// maps is bounded (LRU maps) and removed when its owner ends: a
// connection's at its close, a thread's (call in progress, memory-BIO
// learning) when the thread exits, a process's (its NSS identity, its
// connections and their fd entries, reaped by user space) when its last
// thread exits. TestStateBounded checks the maps after 1,000 short-lived
// TLS processes.
//
// # Timestamps, order and latency
//
// A read is stamped when OpenSSL hands its bytes back (SSL_read's return);
// a write when its bytes are handed to OpenSSL (SSL_write's entry), and it
// is put in the ring right then, so it precedes the peer's read of the same
// bytes in the ring and therefore in delivery. When both ends of a
// connection are captured, the client's request comes before the server's
// receipt of it, which comes before the server's response, which comes
// before the client's receipt of it. A write is emitted before OpenSSL
// says how much it accepted; the bytes it did not accept are remembered
// so the retry OpenSSL mandates after WANT_WRITE or a partial write is not
// emitted twice. Until the connection's tuple is known (its first write
// in a connection opened before capture started), a write is emitted at
// return instead, so it carries its tuple and has been checked against
// tlstap's own endpoints (self-exclusion) before any of it goes out.
//
// The reader has no poll timer. The probes wake it only when it declared
// itself parked (a wake-up is paid by the traced thread: an irq_work
// self-IPI, the largest part of a captured call's cost when every record
// woke the reader). While records come rarely, the reader drains the ring
// and parks again at once, so every record of a single request is
// delivered as soon as the reader runs. Once wake-ups come densely (a
// steady load: ringpoll.DenseWakes in a row with short parks between) it
// lingers after each drain before parking, picking up what came meanwhile:
// 250 µs (ringLinger), doubled while lingers keep finding records, up to
// 2 ms (ringLingerMost). So an idle reader sleeps, and a steady load costs
// one wake-up per linger; the events of one drain are published as one
// batch (capture.DrainRunner), so standard output is written once per
// drain. It waits parked in Go's network poller (internal/capture/ringpoll), not in
// a blocking epoll_wait, and applies the engine's chunk filters itself
// (capture.KeepRunner). The engine's pipeline uses the same hook
// (pipeline.Pipeline.RunSource): the reader's goroutine decodes and
// publishes each record itself, so a record reaches the broker with no
// goroutine hand-off, and a burst waits in the kernel's ring.
//
// # Self-exclusion
//
// tlstap's own process is never captured (by pid, in the probes). Nor is
// any connection with one of tlstap's endpoints at either end, whatever
// process holds it: Source.ExcludeEndpoint puts the endpoint in a kernel
// map consulted when a connection's addresses are learned and again
// before each of its data records goes out if an endpoint was added since
// (an endpoint may be registered just after its peer learned the
// addresses; each one bumps a generation the probes compare with the
// connection's last judgement), and that connection's data is then
// dropped in the kernel, counted in Stats.Excluded* (bpf/self.h).
// internal/selfnet registers the endpoints.
//
// # Which libraries
//
// Options.Libs names libssl, libgnutls, libnspr4 or NSS libssl3 files, or
// executables with OpenSSL linked in statically. Without it, New attaches
// to libssl.so.3, libssl.so.1.1, libgnutls.so.30, libnspr4.so and
// libssl3.so in the usual Debian/Fedora directories, to every such file in ldconfig's cache and to every one
// some running process has mapped (through /proc/PID/root, so libraries
// inside containers are found), and then keeps watching (package watch):
// every executable file a process maps later, or the program a process
// starts, is checked once for OpenSSL's, GnuTLS's or NSS's exported functions and
// attached, whatever its name or mount namespace (a private libssl loaded
// with LD_LIBRARY_PATH or dlopen, a container's libssl, node). Source is
// the watcher's Detector. Files are identified by device and inode: one
// file is attached once whatever its paths. Library.Found says how each
// was found. AttachLib and DetachLib change the set at run time.
//
// A file whose OpenSSL version is known but not one tlstap has the layout
// of (1.1, 3.x) is skipped with a warning naming it: a traced program must
// never pay for a guess.
//
// Calls a process makes between mapping a library and the probes going
// live (a few milliseconds for a library, longer for a 100 MB executable
// such as node; docs/benchmarks.md) are not captured.
//
// # Go programs
//
// Options.GoPrograms names Go executables; Options.WatchGo (tlstap tls sets
// it) scans /proc/*/exe at start and after every filter change, and
// attaches to every Go executable with crypto/tls among the processes the
// filter selects, once per file (uprobes trap in every process running
// it). Programs started later are found at their exec by the watcher,
// which runs in exec-only mode when Options.Libs names the libraries.
// capture/gotls finds crypto/tls.(*Conn).Write, Read, clientHandshake and
// serverHandshake in the symbol table or, in stripped binaries, in .gopclntab with the
// text start taken from the runtime's moduledata (Go 1.26 no longer writes
// it in the pclntab header), lists Read's RET instructions, and finds where
// each function's stack-check prologue ends. tlstap's own executable is never
// probed.
//
// No uretprobe is ever put on Go code: the runtime copies goroutine
// stacks and would carry the trampoline address along. Write is emitted at
// entry from the register ABI's arguments (RAX receiver, RBX/RCX buffer),
// so a request is in the ring before any goroutine can read its response.
// "Entry" is the first instruction after the stack check (CMP SP or R12
// against g.stackguard0, JBE to a block that calls runtime.morestack and
// jumps back to the first instruction): a goroutine whose stack must grow
// runs the prologue twice, so a probe on the first instruction would see
// one call twice, while the prologue only compares and leaves the argument
// registers alone. So Write takes one probe and one trap per call. A
// function without a recognised stack check is probed at its first
// instruction. Read is emitted at whichever RET it
// leaves by, from the state its entry saved under the goroutine (R14), not
// the thread; a buffer on the goroutine's stack is remembered relative to
// the stack top, which stack copying preserves.
//
// The connection is the *tls.Conn (Go's heap does not move objects). Its
// fd and 4-tuple are not read from tls.Conn's net.Conn with per-version
// struct offsets; they come from correlating with the socket tracepoints
// inside the call, like OpenSSL's: a Go call on a connection whose socket
// is still unknown registers the goroutine, and the next socket syscall the
// goroutine makes (the tracepoints read the running goroutine at -8 from
// the thread's FS base, which capture/gotls checks from the binary's
// PT_TLS) teaches them, on whatever thread it runs. clientHandshake and
// serverHandshake are probed so the handshake's first syscall already
// teaches them before the first Write. Not handshakeContext, which calls
// them: every Write and Read calls it first (it returns at once once the
// handshake is done), and a probe there was a second trap per call, about
// as much again as the Write probe's own on a VM. Binaries whose TLS layout is not the checked one fall back
// to the thread's next socket operation (one-shot), which can pick another
// goroutine's socket if the caller blocked in between. A connection whose
// handshake ran before tlstap attached has no fd in the chunks of the Go
// call that learns it, since Write is emitted before its syscall.
//
// A Go binary of another architecture, a toolchain older than 1.17 or newer
// than 1.26, or a layout that does not check out is logged as a warning
// ("Go program not captured") and left alone.
//
// # Limits
//
//   - Programs that run TLS through OpenSSL's SSL BIO (BIO_f_ssl), such as
//     `openssl s_server -www`, reach the record layer through internal
//     functions and are not seen.
//   - BoringSSL/rustls builds without OpenSSL's symbols, and
//     stripped static binaries are not covered; the watcher reads only
//     exported (dynamic) symbols, so a static build that does not export
//     SSL_* needs Options.Libs.
//   - Programs that run TLS over memory BIOs (node, Python asyncio) make no
//     socket call inside their SSL calls: their fd and addresses come from
//     the thread's next socket send after an SSL call (see "Memory BIOs"),
//     a heuristic; a connection established before tlstap attached has
//     none until its next SSL_write.
//   - NSS: a process whose SSL sockets were all created (SSL_ImportFD)
//     before tlstap attached to libssl3 is not captured until it creates
//     another; nor is a child forked after that call that creates none of
//     its own (the identity is kept per process). PR_TransmitFile and
//     PR_SendFile on a TLS socket (selfserv serving a file) are not
//     probed, and NSS's TLS version is not read (0).
//   - A Go program's first TLS calls, made between its exec and the probes
//     going live (the watcher's window), are missed; so is a program whose
//     executable's uprobes could not be placed.
//   - Go's negotiated TLS version is read from tls.Conn's vers field at a
//     per-release offset (capture/gotls); for Go 1.17, 1.18 and 1.20, whose
//     layout was not checked, Chunk.TLSVersion is 0. A Write that itself
//     runs the handshake (no explicit Handshake before it) carries 0 in its
//     first chunk: vers is read before the call.
//   - Nested TLS in one thread (TLS over a TLS proxy tunnel in curl) is
//     attributed to the inner call only: calls are tracked one per thread.
//   - The fd and tuple come from the syscalls a call makes; a connection
//     opened before tlstap started has FD -1 and no tuple until its next
//     syscall inside an SSL call.
//   - A file that was replaced on disk (deleted but still mapped) is not
//     found by discovery.
//   - amd64 only (the BPF object reads x86-64 registers).
//
// # Requirements
//
// Root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE), a kernel with BTF
// (/sys/kernel/btf/vmlinux), uprobes, syscall tracepoints (tracefs is
// mounted if it is not), tp_btf support (Linux 6.3+ for the sock
// tracepoints' BTF) and task storage in tracing programs. New reports which one is missing.
//
// # Regenerating the BPF object
//
// tlstap_x86_bpfel.go and .o are generated from bpf/ and committed, so
// building needs no C toolchain. `go generate ./internal/capture/openssl` rebuilds
// them with github.com/cilium/ebpf/cmd/bpf2go and needs clang, llvm-strip
// (Debian: clang, llvm) and libbpf-dev for bpf_helpers.h; the kernel types
// are declared by hand in bpf/tlstap.h and relocated with CO-RE.
package openssl

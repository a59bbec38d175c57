// Package openssl captures TLS plaintext from programs using OpenSSL's
// libssl, with eBPF uprobes on SSL_read, SSL_read_ex, SSL_write,
// SSL_write_ex and SSL_do_handshake (entry and return) and SSL_free, and
// from programs using GnuTLS (gnutls_record_send, _send2, _send_range,
// gnutls_record_recv, _recv_seq, gnutls_handshake and gnutls_deinit), and
// from Go programs' crypto/tls (see "Go programs" below). All share the
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
// and the retry's success emits nothing. The TLS version of GnuTLS
// connections is not read (0).
//
// # How a chunk gets its metadata
//
// The entry probe records the call by thread. While the thread is inside
// the call, the syscall tracepoints (read, readv, recvfrom, recvmsg, write,
// writev, sendto, sendmsg) give the socket's fd and the tp_btf tracepoints
// sock:sock_send_length and sock:sock_recv_length give its struct sock,
// from which the 4-tuple is read in the kernel (no /proc race with
// short-lived processes). SSL_do_handshake (used by SSL_connect and
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
// The reader has no poll timer: the kernel wakes it whenever it had caught
// up with the ring (the ring buffer's default notification), so an event
// is delivered as soon as the reader runs, an idle reader sleeps, and
// under load records are drained in batches without a wake-up each. It
// waits parked in Go's network poller (internal/capture/ringpoll), not in
// a blocking epoll_wait, and applies the engine's chunk filters itself
// (capture.KeepRunner), so a record reaches the pipeline with one
// goroutine hand-off.
//
// # Self-exclusion
//
// tlstap's own process is never captured (by pid, in the probes). Nor is
// any connection with one of tlstap's endpoints at either end, whatever
// process holds it: Source.ExcludeEndpoint puts the endpoint in a kernel
// map consulted when a connection's addresses are learned and again
// before each of its data records goes out (an endpoint may be registered
// just after its peer learned the addresses), and that connection's data
// is then dropped in the kernel, counted in Stats.Excluded* (bpf/self.h).
// internal/selfnet registers the endpoints.
//
// # Which libraries
//
// Options.Libs names libssl or libgnutls files, or executables with
// OpenSSL linked in statically. Without it, New attaches to libssl.so.3,
// libssl.so.1.1 and libgnutls.so.30 in the usual Debian/Fedora
// directories, to every such file in ldconfig's cache and to every one
// some running process has mapped (through /proc/PID/root, so libraries
// inside containers are found), and then keeps watching (package watch):
// every executable file a process maps later, or the program a process
// starts, is checked once for OpenSSL's or GnuTLS's exported functions and
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
// it) scans /proc/*/exe at start and every 250 ms after, and attaches to
// every Go executable with crypto/tls among the processes the filter
// selects, once per file (uprobes trap in every process running it).
// capture/gotls finds crypto/tls.(*Conn).Write, Read and handshakeContext
// in the symbol table or, in stripped binaries, in .gopclntab with the
// text start taken from the runtime's moduledata (Go 1.26 no longer writes
// it in the pclntab header), and lists Read's and Write's RET
// instructions. tlstap's own executable is never probed.
//
// No uretprobe is ever put on Go code: the runtime copies goroutine
// stacks and would carry the trampoline address along. Write is emitted at
// entry from the register ABI's arguments (RAX receiver, RBX/RCX buffer),
// so a request is in the ring before any goroutine can read its response;
// its RET probes only mark the call finished, so an entry hit the kernel
// replays (a signal during the probe's single-step, which Go's preemption
// makes common) is not emitted twice. Read is emitted at whichever RET it
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
// PT_TLS) teaches them, on whatever thread it runs. handshakeContext is
// probed so the handshake's first syscall already teaches them before the
// first Write. Binaries whose TLS layout is not the checked one fall back
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
//   - NSS, BoringSSL/rustls builds without OpenSSL's symbols, and
//     stripped static binaries are not covered; the watcher reads only
//     exported (dynamic) symbols, so a static build that does not export
//     SSL_* needs Options.Libs.
//   - Programs that run TLS over memory BIOs (node, Python asyncio) have no
//     fd and no addresses: no socket call happens inside their SSL calls.
//   - A Go program that starts and finishes its TLS within one scan
//     interval is missed; so is one whose executable's uprobes could not be
//     placed. Go's TLS version is not read (Chunk.TLSVersion 0).
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
// mounted if it is not) and tp_btf support (Linux 6.3+ for the sock
// tracepoints' BTF). New reports which one is missing.
//
// # Regenerating the BPF object
//
// tlstap_x86_bpfel.go and .o are generated from bpf/ and committed, so
// building needs no C toolchain. `go generate ./internal/capture/openssl` rebuilds
// them with github.com/cilium/ebpf/cmd/bpf2go and needs clang, llvm-strip
// (Debian: clang, llvm) and libbpf-dev for bpf_helpers.h; the kernel types
// are declared by hand in bpf/tlstap.h and relocated with CO-RE.
package openssl

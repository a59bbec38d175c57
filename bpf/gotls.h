/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Go crypto/tls: uprobes on (*Conn).Write, (*Conn).Read,
 * (*Conn).clientHandshake and (*Conn).serverHandshake in Go 1.17+ amd64
 * binaries (register ABI).
 *
 * Go code never gets a uretprobe: the runtime copies goroutine stacks when
 * they grow and would carry the trampoline's return address along. So
 * Write is captured at entry, where the plaintext is (RBX, RCX), and Read
 * with one probe at entry and one on each of its RET instructions (user
 * space finds them by disassembling). "Entry" is the first instruction
 * after the stack-check prologue (gotls.Func.Body): a goroutine whose stack
 * must grow runs the prologue, calls morestack and starts the function
 * over, so a probe on the first instruction would fire twice for one call,
 * while the prologue only compares and leaves the arguments in place. Read's state is keyed by goroutine
 * (the g pointer, in R14), since a goroutine blocked in Read may resume on
 * another thread. A read buffer on the goroutine's own stack is remembered
 * as a distance from the stack's top, which stack copying preserves.
 *
 * The connection is the *tls.Conn, which Go's non-moving heap keeps at one
 * address for its life. Its fd and 4-tuple come from the same sock
 * tracepoints as OpenSSL's (the fd from the syscall's arguments): while a Go call has not learned them yet,
 * go_learn maps the goroutine to the connection, and the tracepoints look
 * up the goroutine the thread is running (Go keeps g at -8 from the FS
 * base; the uprobe cookie says user space checked the binary's TLS layout
 * is that): a goroutine that blocks and resumes on another thread is still
 * followed, and other goroutines' sockets are never taken for its own. For
 * a binary whose layout was not checked, the thread carries a one-shot
 * CALL_GO_LEARN call that its next socket operation consumes instead.
 *
 * The uprobe cookie: bit 0 set when g may be read at -8 from the FS base;
 * cookie >> 1 is the offset of tls.Conn's vers field plus one, 0 when the
 * binary's Go version has no known layout (then events carry version 0).
 *
 * Included from tlstap.bpf.c after its maps and helpers.
 */
#ifndef GOTLS_H
#define GOTLS_H

/* struct call.ex of a Go call: learn fd and tuple from the next socket
 * operation on this thread, then forget the call. */
#define CALL_GO_LEARN 2

struct go_key {
	__u32 pid;
	__u32 _pad;
	__u64 g;
};

struct go_read {
	__u64 conn;
	__u64 buf;   /* address, or distance below the stack top if on_stack */
	__u64 len;   /* len(b) */
	__u8 on_stack;
	__u8 _pad[7];
};

/* Connections still learning their fd and tuple, by goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, __u64);
} tlstap_go_learn SEC(".maps");

/* How many entries each process has in go_learn, so the tracepoints read
 * no FS base and look nothing up by goroutine while none of the process's
 * connections is learning: every send and receive of a Go program whose
 * sockets are all known would otherwise pay a user read and two lookups,
 * on both of its tracepoints. Exact as long as go_learn evicts nothing: an
 * evicted entry leaves its count behind, which only costs that process the
 * lookups again. Nonzero, not positive, means "look": a count recreated
 * after its own eviction may go below zero. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __s64);
} tlstap_go_pids SEC(".maps");

/* The sum of all go_pids counts, so that while no Go connection on the
 * machine is learning (the steady state) the tracepoints, which fire for
 * every send and receive of every process, skip even the go_pids lookup:
 * one array read instead of a hash lookup per sock event. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} tlstap_go_learning SEC(".maps");

/* go_learn_add makes k's goroutine learn the socket of conn, counted in
 * go_pids once per go_learn entry. */
static __always_inline void go_learn_add(struct go_key *k, __u64 conn)
{
	if (bpf_map_update_elem(&tlstap_go_learn, k, &conn, BPF_NOEXIST)) {
		/* Learning already: another connection's entry is replaced,
		 * which counts nothing new. */
		bpf_map_update_elem(&tlstap_go_learn, k, &conn, BPF_ANY);
		return;
	}
	global_add(&tlstap_go_learning, 1);
	__u32 pid = k->pid;
	__s64 *n = bpf_map_lookup_elem(&tlstap_go_pids, &pid);
	if (!n) {
		__s64 one = 1;
		if (!bpf_map_update_elem(&tlstap_go_pids, &pid, &one, BPF_NOEXIST))
			return;
		n = bpf_map_lookup_elem(&tlstap_go_pids, &pid); /* created meanwhile */
		if (!n)
			return;
	}
	__sync_fetch_and_add(n, 1);
}

/* go_learn_del forgets k's go_learn entry, and its count. */
static __always_inline void go_learn_del(struct go_key *k)
{
	if (bpf_map_delete_elem(&tlstap_go_learn, k))
		return;
	global_add(&tlstap_go_learning, -1);
	__u32 pid = k->pid;
	__s64 *n = bpf_map_lookup_elem(&tlstap_go_pids, &pid);
	if (n)
		__sync_fetch_and_add(n, -1);
}

/* go_current returns the goroutine the current thread runs, 0 if unknown. */
static __always_inline __u64 go_current(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 g = 0;
	bpf_probe_read_user(&g, sizeof(g), (void *)(BPF_CORE_READ(task, thread.fsbase) - 8));
	return g;
}

/* go_learning returns the connection the thread's goroutine is learning
 * the socket of, 0 if none; *k is set to its go_learn key. */
static __always_inline __u64 go_learning(__u64 id, struct go_key *k)
{
	if (global_zero(&tlstap_go_learning))
		return 0;
	__u32 pid = id >> 32;
	__s64 *n = bpf_map_lookup_elem(&tlstap_go_pids, &pid);
	if (!n || !*n)
		return 0;
	k->pid = pid;
	k->g = go_current();
	if (!k->g)
		return 0;
	__u64 *conn = bpf_map_lookup_elem(&tlstap_go_learn, k);
	return conn ? *conn : 0;
}

/* LRU: a goroutine whose Read never returns (the program exits, the probes
 * are detached) must not pin an entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct go_read);
} tlstap_go_reads SEC(".maps");

/* runtime.g starts with stack struct { lo, hi uintptr } in every Go
 * release. */
static __always_inline int go_stack(__u64 g, __u64 *lo, __u64 *hi)
{
	__u64 s[2];
	if (bpf_probe_read_user(s, sizeof(s), (void *)g))
		return -1;
	*lo = s[0];
	*hi = s[1];
	return 0;
}

/* go_conn makes sure the connection exists, tagged as Go's, and marks the
 * thread so the next socket operation teaches its fd and tuple while they
 * are unknown. Returns the connection, NULL when it could not be created. */
static __always_inline struct conn *go_conn(struct pt_regs *ctx, __u64 id, __u64 conn)
{
	__u32 pid = id >> 32;
	struct conn_key k = { .pid = pid, .ssl = conn };
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (!cn) {
		struct conn fresh = { .fd = -1, .lib = LIB_GOTLS };
		__u8 one = 1;
		bpf_map_update_elem(&tlstap_conns, &k, &fresh, BPF_NOEXIST);
		bpf_map_update_elem(&tlstap_procs, &pid, &one, BPF_ANY);
		cn = bpf_map_lookup_elem(&tlstap_conns, &k);
		if (!cn)
			return NULL;
	}
	if (cn->fd >= 0 && cn->tuple.family)
		return cn;
	if (bpf_get_attach_cookie(ctx) & 1) {
		struct go_key k = { .pid = pid, .g = ctx->r14 };
		go_learn_add(&k, conn);
	} else {
		struct call c = { .ssl = conn, .dir = DIR_HANDSHAKE, .ex = CALL_GO_LEARN };
		call_put(&c, false);
	}
	return cn;
}

/* go_emit sends n bytes at buf as the data in dir of the connection conn,
 * whose entry is cn, through the same emit_chunks_conn as every other
 * library, on its one-record fast path. */
static __always_inline void go_emit(struct pt_regs *ctx, __u64 id, __u64 conn, struct conn *cn,
				   __u64 buf, __u64 n, __u8 dir)
{
	struct emit_ctx e = {
		.key = { .pid = id >> 32, .ssl = conn },
		.id = id,
		.buf = buf,
		.n = n,
		.dir = dir,
	};
	/* tls.Conn.vers, the negotiated version once the handshake is done;
	 * anything but a TLS version number leaves it unknown. Read until
	 * known: a handshake never changes a version it settled, and the
	 * user read is one of the larger costs of a call here. */
	__u64 vers = bpf_get_attach_cookie(ctx) >> 1;
	__u16 v = 0;
	if (vers && !valid_version(cn->version) &&
	    !bpf_probe_read_user(&v, sizeof(v), (void *)(conn + vers - 1)) && valid_version(v))
		cn->version = v;
	rejudge_self(cn);
	emit_chunks_conn(&e, cn, true);
}

/* func (c *Conn) Write(b []byte) (int, error): c in RAX, b in RBX/RCX.
 * Emitted at entry, so the request is in the ring before any goroutine can
 * read the response. One probe, one call: no RET probe is needed to tell a
 * second pass after stack growth from a new call, since the probe sits
 * after the stack check. */
SEC("uprobe")
int tlstap_go_write_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32, (__u32)bpf_get_current_uid_gid()))
		return 0;
	__u64 conn = ctx->rax, n = ctx->rcx;
	if (!conn)
		return 0;
	struct conn *cn = go_conn(ctx, id, conn);
	if (!cn || !n)
		return 0;
	go_emit(ctx, id, conn, cn, ctx->rbx, n, DIR_WRITE);
	return 0;
}

/* func (c *Conn) Read(b []byte) (int, error): c in RAX, b in RBX/RCX. */
SEC("uprobe")
int tlstap_go_read_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32, (__u32)bpf_get_current_uid_gid()))
		return 0;
	__u64 conn = ctx->rax;
	if (!conn || !go_conn(ctx, id, conn))
		return 0;
	struct go_key k = { .pid = id >> 32, .g = ctx->r14 };
	struct go_read r = { .conn = conn, .buf = ctx->rbx, .len = ctx->rcx };
	__u64 lo, hi;
	if (!go_stack(k.g, &lo, &hi) && r.buf >= lo && r.buf < hi) {
		r.buf = hi - r.buf;
		r.on_stack = 1;
	}
	bpf_map_update_elem(&tlstap_go_reads, &k, &r, BPF_ANY);
	return 0;
}

/* On each RET of Read: n in RAX. Replays are harmless here: the entry
 * probe only overwrites, and a replayed RET finds its entry gone. */
SEC("uprobe")
int tlstap_go_read_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_key k = { .pid = id >> 32, .g = ctx->r14 };
	struct go_read *rp = bpf_map_lookup_elem(&tlstap_go_reads, &k);
	if (!rp)
		return 0;
	struct go_read r = *rp;
	bpf_map_delete_elem(&tlstap_go_reads, &k);

	/* A call that read from its buffer without a syscall leaves its
	 * learning entry behind: drop it before the goroutine's (or thread's)
	 * next socket, maybe another connection's, is taken for this one. */
	struct call *c = call_get();
	if (c && c->ex == CALL_GO_LEARN && c->ssl == r.conn)
		c->live = 0;
	__u64 *learning = bpf_map_lookup_elem(&tlstap_go_learn, &k);
	if (learning && *learning == r.conn)
		go_learn_del(&k);

	__s64 n = (__s64)ctx->rax;
	if (n <= 0 || (__u64)n > r.len)
		return 0;
	if (r.on_stack) {
		__u64 lo, hi;
		if (go_stack(k.g, &lo, &hi) || r.buf > hi - lo)
			return 0;
		r.buf = hi - r.buf;
	}
	struct conn_key ck = { .pid = k.pid, .ssl = r.conn };
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &ck);
	if (cn)
		go_emit(ctx, id, r.conn, cn, r.buf, n, DIR_READ);
	return 0;
}

/* func (c *Conn) clientHandshake(ctx context.Context) error and
 * serverHandshake: c in RAX. The handshake's syscalls teach the fd and
 * tuple before the first Write, which is emitted at entry. Not on
 * handshakeContext: every Write and Read calls that first, and a second
 * trap per call would cost as much as the Write probe itself. */
SEC("uprobe")
int tlstap_go_handshake_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32, (__u32)bpf_get_current_uid_gid()))
		return 0;
	if (ctx->rax)
		go_conn(ctx, id, ctx->rax);
	return 0;
}

#endif

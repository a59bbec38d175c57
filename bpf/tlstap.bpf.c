// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tlstap's capture probes: uprobes on OpenSSL, GnuTLS, NSS/NSPR and Go crypto/tls
 * calls, syscall and sock tracepoints that learn each connection's fd and
 * 4-tuple, and one ring buffer of variable-size records of at most
 * MAX_DATA bytes. What is captured and why is described once, in
 * internal/capture/openssl/doc.go; this comment keeps only the contract the probes
 * below must all follow.
 *
 * Emission contract (enter/leave, shared by every TLS library's probes):
 *  - A read is emitted by leave(), when TLS hands the bytes back, stamped
 *    then.
 *  - A write is emitted by enter(), when the bytes are handed to TLS,
 *    stamped then, as soon as the connection's tuple is known (learned by
 *    on_sock, which also judged it against tlstap's own endpoints: see
 *    self.h); before that, by leave() like a read, after the call's own
 *    socket operations learned and judged the tuple. on_sock learns the
 *    fd and the tuple together, from the socket a send or receive
 *    syscall is using.
 *    The ring keeps reservation order, so the record is ahead of anything
 *    the peer can read of it: a write is sequenced before its read.
 *  - Emitting before the library accepted the bytes is made exact by
 *    conn.ahead: bytes emitted but not (yet) accepted. A failed call (<= 0,
 *    e.g. WANT_WRITE) leaves all of them ahead, a partial one the rest; the
 *    retry the library mandates (the same bytes, or the remaining ones with
 *    partial writes, possibly from a moved buffer) skips that many, so
 *    nothing is emitted twice. A write abandoned after a failure was still
 *    handed to TLS, and stays emitted.
 *  - Records wake the reader only when it declared itself parked (see
 *    tlstap_reader and ring_flags): a wake-up is paid by the thread that
 *    commits the record (an irq_work, so a self-IPI, then a cross-CPU
 *    wake: each a VM exit on a hypervisor), and it was the largest part
 *    of a captured call's cost when every record woke a reader that had
 *    just caught up. A parked reader gets each event at once; an awake one
 *    lingers a bounded time before parking and picks up what came meanwhile.
 *
 * Every byte that does not make it to the ring is counted in stats and in
 * the connection's lost[dir]; the next record of that direction carries the
 * count so user space can tell decoders where the gap is.
 */
#include "tlstap.h"
#include "record.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Per-call cap: larger SSL_write calls are cut (and the rest counted lost)
 * so one call cannot monopolise the ring. */
#define MAX_CALL_CHUNKS 256

enum stat {
	STAT_CALLS,
	STAT_BYTES,
	STAT_RECORDS,
	STAT_LOST_RING_BYTES,
	STAT_LOST_RING_RECORDS,
	STAT_LOST_CAP_BYTES,
	STAT_LOST_FAULT_BYTES,
	STAT_LOST_NOTICES,
	STAT_EXCLUDED_CONNS,   /* see self.h */
	STAT_EXCLUDED_RECORDS,
	STAT_EXCLUDED_BYTES,
	STAT_MAX,
};

struct conn_key {
	__u32 pid;
	__u32 _pad;
	__u64 ssl;
};

struct conn {
	struct tuple tuple;
	__u64 lost[2];
	__u64 ahead; /* write bytes emitted at entry, not yet accepted */
	__s32 fd;
	__u16 version;
	__u8 excluded; /* one end is tlstap's: see self.h */
	__u8 lib; /* enum lib, copied into every event */
	__u32 judged; /* self_generation() of the last judgement of tuple, 0: none (self.h) */
	__u32 _pad;
};

struct call {
	__u64 ssl;
	__u64 buf;
	__u64 lenp;   /* size_t * of the _ex functions, 0 otherwise */
	__u64 cookie; /* offset of the version field in the SSL struct + 1, 0 = unknown */
	__u64 num;    /* bytes the write asked for (write-at-entry) */
	__u64 size;   /* the length argument */
	__u8 dir; /* DIR_HANDSHAKE: no data, only learning fd and tuple */
	__u8 ex;
	__u8 early; /* a write emitted at entry: leave() only settles ahead */
	__u8 lib; /* enum lib */
	__u32 _pad0;
	__u8 live; /* the thread is in this call (see call_get) */
	__u8 _pad[3];
};

struct fd_key {
	__u32 pid;
	__s32 fd;
};

/* Filters are double-buffered: user space fills the inactive generation,
 * then flips active, so a probe never sees half a filter. */
struct config {
	__u32 self_pid;
	__u8 pids_on;
	__u8 uids_on;
	__u8 comms_on;
	__u8 _pad;
};

struct id_key {
	__u32 gen;
	__u32 id;
};

struct comm_key {
	__u32 gen;
	char comm[TASK_COMM_LEN];
};

/* Records are written in place (emit_into), so no map holds a struct
 * record any more; this keeps it (and struct event) in the object's BTF
 * for bpf2go, which mirrors them for the decoder's tests (record_test.go). */
const struct record *tlstap_record_type __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* replaced by the loader */
} tlstap_events SEC(".maps");

/* The target of ring_flags' locked add: one word per CPU, so the barrier
 * moves no cache line between CPUs (see there). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tlstap_fence SEC(".maps");

/*
 * The ring reader's state, shared with user space through mmap
 * (internal/capture/ringpoll). awake is 0 while the reader is parked or
 * about to park, and records then force a wake-up; while it is 1 the
 * reader will look at the ring again within its linger time by itself, and
 * records are committed without one. A reader that knows nothing of this
 * leaves it 0 and is woken for every record.
 *
 * No record is stranded: the producer reserves its record (advancing the
 * ring's producer position) and only then reads awake with a full barrier
 * (ring_flags); the reader stores 0 with a full barrier and only then
 * checks the ring before parking. Either the producer sees 0 and wakes the
 * reader after its commit, or the reader sees the reservation and does not
 * park (it waits for a busy record's commit in ringbuf.Reader).
 */
struct reader_state {
	__u32 awake;
	__u32 _pad;
	__u64 fence; /* unused since ring_flags fences on tlstap_fence; kept
		      * so the shared layout does not change */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reader_state);
} tlstap_reader SEC(".maps");

/* ring_flags returns the submit flags for a record already reserved: a
 * forced wake-up if the reader is parked, none otherwise. The reservation
 * must be ordered before the read of awake; with -mcpu=v1 there is no
 * fetching atomic, but an atomic add is a locked instruction on x86-64,
 * which is a full barrier whatever its target. The target is a per-CPU
 * word (tlstap_fence), not reader_state.fence: a locked add on the shared
 * word took its cache line away from every other CPU on every record, and
 * each producer on another CPU, and the reader reading awake, then paid a
 * cross-CPU miss for it. awake itself is only read here, and written only
 * when the reader parks or wakes, so it stays in every CPU's cache. */
static __always_inline __u64 ring_flags(void)
{
	__u32 zero = 0;
	struct reader_state *st = bpf_map_lookup_elem(&tlstap_reader, &zero);
	__u64 *fence = bpf_map_lookup_elem(&tlstap_fence, &zero);
	if (!st || !fence)
		return BPF_RB_FORCE_WAKEUP;
	__sync_fetch_and_add(fence, 1);
	if (*(volatile __u32 *)&st->awake)
		return BPF_RB_NO_WAKEUP;
	return BPF_RB_FORCE_WAKEUP;
}

/*
 * The call each thread is in, in the thread's own storage (task storage),
 * not a hash keyed by thread id: every data call stored its call at entry
 * and took it back at return, and each syscall and sock tracepoint of
 * every thread on the machine looked its thread up, which made four to
 * six hash operations per captured call (an LRU insert and delete among
 * them), the largest part of the probes' own time after the record.
 * A task storage lookup reads the thread's storage pointer (nothing for a
 * thread that never made a TLS call) and a small per-thread cache. The
 * storage is created by a thread's first call and reused (live says
 * whether the thread is in a call), and the kernel frees it with the
 * thread: a thread killed inside a call leaves nothing behind, and a
 * new thread that reuses its id does not inherit it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct call);
} tlstap_calls SEC(".maps");

/* call_get returns the call the current thread is in, NULL if none. */
static __always_inline struct call *call_get(void)
{
	struct call *c = bpf_task_storage_get(&tlstap_calls, bpf_get_current_task_btf(), 0, 0);
	return c && c->live ? c : NULL;
}

/* call_put makes v the current thread's call; with noexist, only if the
 * thread is in no call. 0 on success. */
static __always_inline long call_put(const struct call *v, bool noexist)
{
	struct call *c = bpf_task_storage_get(&tlstap_calls, bpf_get_current_task_btf(), 0,
					      BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c || (noexist && c->live))
		return -1;
	*c = *v;
	c->live = 1;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn);
} tlstap_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fd_key);
	__type(value, __u64);
} tlstap_fd_conns SEC(".maps");

/* Processes with connections, so an exit is only reported for them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} tlstap_procs SEC(".maps");

/*
 * Memory-BIO programs (Python asyncio, node) make no socket call inside
 * their SSL calls: the event loop sends what a call produced (a handshake
 * message, a record) right after it, on the same thread. An OpenSSL call
 * on a connection whose socket is still unknown leaves the connection
 * here, by thread, replacing the thread's previous one; the thread's next
 * socket send made outside any SSL call teaches it the fd (the
 * syscall's argument) and the tuple (from its struct sock), once. Receives
 * teach nothing: after a read that produced nothing to send, the loop's
 * next receive may well be another connection's. A write to a file or
 * pipe in between teaches nothing: only a socket's send reaches on_sock.
 */
struct bio_learn {
	__u64 ssl;
	__s32 fd; /* unused (on_sock reads the syscall's fd) */
	__u32 live; /* the thread has a connection waiting */
};

/* In the thread's storage, like tlstap_calls and for the same reasons:
 * every socket send of every thread looked it up. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bio_learn);
} tlstap_bio_learn SEC(".maps");

/* How many threads have a connection waiting (bio_learn.live), so that
 * the send tracepoint, which fires for every socket send of every thread
 * on the machine, looks no thread's storage up while none waits (nearly
 * always: only memory-BIO programs ever wait, and only until their first
 * send): one array read instead of a task storage lookup per send. A
 * thread that exits while waiting is taken off by sched_process_exit,
 * unless its process has dropped out of tlstap_procs (an LRU): then its
 * count stays behind, which only costs every send the lookup again, as
 * before this count. Nonzero, not positive, means "look". */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} tlstap_bio_waiting SEC(".maps");

/* global_add and global_zero work on a machine-wide count kept in a
 * one-word array (tlstap_bio_waiting; tlstap_go_learning in gotls.h), which
 * lets a tracepoint that fires for every socket operation skip a
 * per-thread lookup while the count is 0. */
static __always_inline void global_add(void *count, __s64 d)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(count, &zero);
	if (n)
		__sync_fetch_and_add(n, d);
}

/* global_zero: a count that cannot be read is not zero, so the caller
 * looks. */
static __always_inline bool global_zero(void *count)
{
	__u32 zero = 0;
	__s64 *n = bpf_map_lookup_elem(count, &zero);
	return n && !*(volatile __s64 *)n;
}

static __always_inline struct bio_learn *bio_get(void)
{
	if (global_zero(&tlstap_bio_waiting))
		return NULL;
	struct bio_learn *b = bpf_task_storage_get(&tlstap_bio_learn, bpf_get_current_task_btf(), 0, 0);
	return b && b->live ? b : NULL;
}

/* bio_done ends the current thread's wait (b is its live bio_learn). */
static __always_inline void bio_done(struct bio_learn *b)
{
	b->live = 0;
	global_add(&tlstap_bio_waiting, -1);
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct config);
} tlstap_configs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tlstap_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct id_key);
	__type(value, __u8);
} tlstap_filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct id_key);
	__type(value, __u8);
} tlstap_filter_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct comm_key);
	__type(value, __u8);
} tlstap_filter_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tlstap_stats SEC(".maps");

static __always_inline void count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&tlstap_stats, &stat);
	if (v)
		*v += n; /* per-CPU: no atomics needed */
}

#include "self.h"

/*
 * A thread's last filter verdict, in its own storage: with a filter on, every
 * probe judged its thread again with one to three hash lookups (the comm's
 * with a 20-byte key), about a quarter of a Go Write probe's own time when
 * only a comm was filtered on. A verdict holds while the filter, the
 * thread's pid, uid and comm are the ones it was taken for: active is
 * tlstap_active's whole value, which user space bumps on every SetFilter
 * (filter.go; the low bit still picks the generation).
 */
struct filter_cache {
	__u32 active;
	__u32 pid;
	__u32 uid;
	__u8 valid;
	__u8 verdict;
	__u8 _pad[2];
	__u64 comm[2]; /* TASK_COMM_LEN bytes, as words to compare */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct filter_cache);
} tlstap_filter_cache SEC(".maps");

static __always_inline bool wanted(__u32 pid, __u32 uid)
{
	__u32 zero = 0;
	__u32 *gen = bpf_map_lookup_elem(&tlstap_active, &zero);
	if (!gen)
		return false;
	__u32 active = *(volatile __u32 *)gen;
	__u32 g = active & 1;
	struct config *c = bpf_map_lookup_elem(&tlstap_configs, &g);
	if (!c || pid == c->self_pid)
		return false;
	if (!c->pids_on && !c->uids_on && !c->comms_on)
		return true;

	__u64 comm[2] = {};
	if (c->comms_on)
		bpf_get_current_comm(comm, sizeof(comm));
	struct filter_cache *fc = bpf_task_storage_get(&tlstap_filter_cache, bpf_get_current_task_btf(), 0,
						       BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (fc && fc->valid && fc->active == active && fc->pid == pid && fc->uid == uid &&
	    fc->comm[0] == comm[0] && fc->comm[1] == comm[1])
		return fc->verdict;

	bool verdict = true;
	if (c->pids_on) {
		struct id_key k = { .gen = g, .id = pid };
		if (!bpf_map_lookup_elem(&tlstap_filter_pids, &k))
			verdict = false;
	}
	if (verdict && c->uids_on) {
		struct id_key k = { .gen = g, .id = uid };
		if (!bpf_map_lookup_elem(&tlstap_filter_uids, &k))
			verdict = false;
	}
	if (verdict && c->comms_on) {
		struct comm_key k = { .gen = g };
		__builtin_memcpy(k.comm, comm, sizeof(k.comm));
		if (!bpf_map_lookup_elem(&tlstap_filter_comms, &k))
			verdict = false;
	}
	if (fc) {
		fc->active = active;
		fc->pid = pid;
		fc->uid = uid;
		fc->comm[0] = comm[0];
		fc->comm[1] = comm[1];
		fc->verdict = verdict;
		fc->valid = 1;
	}
	return verdict;
}

static __always_inline void fill(struct event *ev, __u64 id, __u64 ssl,
				 struct conn *cn, __u8 kind, __u8 dir)
{
	ev->ts = bpf_ktime_get_ns();
	ev->conn = ssl;
	ev->lost = 0;
	ev->pid = id >> 32;
	ev->tid = (__u32)id;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->fd = cn->fd;
	ev->len = 0;
	ev->version = cn->version;
	ev->kind = kind;
	ev->dir = dir;
	ev->tuple = cn->tuple;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	ev->lib = cn->lib;
	ev->cgroup = bpf_get_current_cgroup_id();
}

/* ensure_conn makes sure the connection exists before the tracepoints fire,
 * so they can fill in its fd and tuple, and returns it if it existed
 * already (NULL when it was created now, which is rare enough not to look
 * it up again). Look up first: an LRU update takes a node off the free
 * list even when the key exists. */
static __always_inline struct conn *ensure_conn(__u32 pid, __u64 ssl, __u8 lib)
{
	struct conn_key k = { .pid = pid, .ssl = ssl };
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (!cn) {
		struct conn fresh = { .fd = -1, .lib = lib };
		__u8 one = 1;
		bpf_map_update_elem(&tlstap_conns, &k, &fresh, BPF_NOEXIST);
		bpf_map_update_elem(&tlstap_procs, &pid, &one, BPF_ANY);
	}
	return cn;
}

struct emit_ctx {
	struct conn_key key;
	__u64 id;
	__u64 buf;
	__u64 n;
	__u8 dir;
};

/* emit_into reserves a record of the size class CLASS (a constant, as
 * bpf_ringbuf_reserve needs) for len (<= CLASS) bytes at src, and fills
 * its header and data in place. A record is only as large as its class,
 * and nothing goes through a scratch buffer: the header and the data are
 * written once, straight into the ring, instead of twice (scratch, then
 * ring). The ring record is up to CLASS - len bytes longer than the data;
 * user space reads hdr.len, not the record's length. */
static __always_inline void emit_into(struct emit_ctx *e, struct conn *cn, __u64 src,
				      __u64 len, __u8 dir, __u64 lost, const __u64 class)
{
	/* len <= class is known here, but clang proves it and drops the
	 * check the verifier needs to bound the copy: hide it. */
	asm volatile("" : "+r"(len));
	if (len > class)
		return;
	struct event *ev = bpf_ringbuf_reserve(&tlstap_events, sizeof(struct event) + class, 0);
	if (!ev) {
		__sync_fetch_and_add(&cn->lost[dir], len);
		count(STAT_LOST_RING_BYTES, len);
		count(STAT_LOST_RING_RECORDS, 1);
		return;
	}
	if (bpf_probe_read_user((void *)(ev + 1), len, (void *)src)) {
		bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
		__sync_fetch_and_add(&cn->lost[dir], len);
		count(STAT_LOST_FAULT_BYTES, len);
		return;
	}
	fill(ev, e->id, e->key.ssl, cn, KIND_DATA, dir);
	ev->lost = lost;
	ev->len = len;
	bpf_ringbuf_submit(ev, ring_flags());
	if (lost)
		__sync_fetch_and_sub(&cn->lost[dir], lost);
	count(STAT_RECORDS, 1);
}

/* emit_slice sends the MAX_DATA slice of a call at off (< e->n) of
 * connection cn, in the smallest size class that holds it: powers of two
 * from 64 bytes, so a record wastes less than half its data's size, and a
 * small call's record is not a 16 KiB reservation. */
static __always_inline long emit_slice(struct emit_ctx *e, struct conn *cn, __u64 off)
{
	__u64 len = e->n - off;
	if (len > MAX_DATA)
		len = MAX_DATA;
	__u8 dir = e->dir & 1;
	__u64 src = e->buf + off;

	if (cn->excluded) {
		count(STAT_EXCLUDED_RECORDS, 1);
		count(STAT_EXCLUDED_BYTES, len);
		return 0;
	}
	__u64 lost = cn->lost[dir];
	if (len <= 64)
		emit_into(e, cn, src, len, dir, lost, 64);
	else if (len <= 128)
		emit_into(e, cn, src, len, dir, lost, 128);
	else if (len <= 256)
		emit_into(e, cn, src, len, dir, lost, 256);
	else if (len <= 512)
		emit_into(e, cn, src, len, dir, lost, 512);
	else if (len <= 1024)
		emit_into(e, cn, src, len, dir, lost, 1024);
	else if (len <= 2048)
		emit_into(e, cn, src, len, dir, lost, 2048);
	else if (len <= 4096)
		emit_into(e, cn, src, len, dir, lost, 4096);
	else if (len <= 8192)
		emit_into(e, cn, src, len, dir, lost, 8192);
	else
		emit_into(e, cn, src, len, dir, lost, MAX_DATA);
	return 0;
}

/* emit_chunk sends the i-th MAX_DATA slice of a call. It derives the offset
 * from i and never writes to e: a callback whose state does not change
 * between iterations is verified once, not once per iteration. */
static long emit_chunk(__u32 i, void *data)
{
	struct emit_ctx *e = data;
	__u64 off = (__u64)i * MAX_DATA;

	if (off >= e->n)
		return 1;
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &e->key);
	if (!cn)
		return 1;
	return emit_slice(e, cn, off);
}

/* emit_chunks_conn sends a call's e->n bytes in MAX_DATA slices, counted;
 * the part past MAX_CALL_CHUNKS is counted lost. Every library's data goes
 * through it. With fast, cn is the call's connection and a call that fits
 * one record, nearly every call, is sent without bpf_loop and without
 * looking the connection up again; not in a bpf_loop callback (NSS's
 * writev), where the inlined slice makes the verifier's work explode. */
static __always_inline void emit_chunks_conn(struct emit_ctx *e, struct conn *cn, bool fast)
{
	__u64 n = e->n;
	count(STAT_CALLS, 1);
	count(STAT_BYTES, n);
	if (fast && n <= MAX_DATA) {
		if (n)
			emit_slice(e, cn, 0);
		return;
	}
	__u64 max = (__u64)MAX_CALL_CHUNKS * MAX_DATA;
	if (n > max) {
		e->n = max;
		count(STAT_LOST_CAP_BYTES, n - max);
	}
	bpf_loop((e->n + MAX_DATA - 1) / MAX_DATA, emit_chunk, e, 0);
	/* The cut tail follows this call's chunks, so it is added only now and
	 * reported before the connection's next record (or at its close). */
	if (n > max) {
		struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &e->key);
		if (cn)
			__sync_fetch_and_add(&cn->lost[e->dir & 1], n - max);
	}
}

static __always_inline bool valid_version(int v)
{
	return (v >= 0x0300 && v <= 0x0304) || v == 0xfeff || v == 0xfefd;
}

/* The attach cookie of a GnuTLS data probe: COOKIE_GNUTLS, the offset of
 * the session's version entry pointer (bits 0-15) and of the protocol id in
 * that entry (bits 16-31), as gnutls_protocol_get_version reads them. */
#define COOKIE_GNUTLS (1ULL << 63)
static __always_inline int gnutls_version(__u64 session, __u64 cookie);

/* emit_any sends n bytes at buf as the call's data, in MAX_DATA slices,
 * after refreshing the connection's TLS version; the part past
 * MAX_CALL_CHUNKS is counted lost. cn is the call's connection if the
 * caller has looked it up, NULL otherwise; fast: see emit_chunks_conn. */
static __always_inline void emit_any(__u64 id, struct call *c, struct conn *cn, __u64 buf, __u64 n, bool fast)
{
	struct emit_ctx e = {
		.key = { .pid = id >> 32, .ssl = c->ssl },
		.id = id,
		.buf = buf,
		.n = n,
		.dir = c->dir,
	};
	if (!cn)
		cn = bpf_map_lookup_elem(&tlstap_conns, &e.key);
	if (!cn) {
		/* Evicted since entry; recreate so the data is not dropped. */
		struct conn fresh = { .fd = -1, .lib = c->lib };
		bpf_map_update_elem(&tlstap_conns, &e.key, &fresh, BPF_NOEXIST);
		cn = bpf_map_lookup_elem(&tlstap_conns, &e.key);
		if (!cn)
			return;
	}
	if (c->cookie & COOKIE_GNUTLS) {
		/* Read until known, then never again: a GnuTLS session's
		 * version is fixed by its first handshake (a rehandshake may
		 * not change it) and the session dies with gnutls_deinit, so
		 * the two reads of user memory per call bought nothing. */
		if (!cn->version) {
			int v = gnutls_version(c->ssl, c->cookie);
			if (v)
				cn->version = v;
		}
	} else if (c->cookie) {
		int v = 0;
		if (!bpf_probe_read_user(&v, sizeof(v), (void *)(c->ssl + c->cookie - 1)) &&
		    valid_version(v))
			cn->version = v;
	}

	rejudge_self(cn);
	emit_chunks_conn(&e, cn, fast);
}

/* emit_conn is emit_any for a probe's own program (not a callback). */
static __always_inline void emit_conn(__u64 id, struct call *c, struct conn *cn, __u64 buf, __u64 n)
{
	emit_any(id, c, cn, buf, n, true);
}

static __always_inline void emit(__u64 id, struct call *c, __u64 buf, __u64 n)
{
	emit_any(id, c, NULL, buf, n, false);
}

/* bio_wait leaves a connection on which no socket operation was ever seen
 * to the thread's next socket send (see tlstap_bio_learn). An fd is only
 * the connection's once a socket confirmed it (on_sock), so a file read
 * inside a memory-BIO call (node's handshake) does not count. */
static __always_inline void bio_wait(__u64 id, __u64 ssl)
{
	struct conn_key k = { .pid = id >> 32, .ssl = ssl };
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (!cn || cn->fd >= 0 || cn->tuple.family)
		return; /* a socket was seen: not a memory BIO */
	struct bio_learn *b = bpf_task_storage_get(&tlstap_bio_learn, bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!b)
		return;
	b->ssl = ssl;
	if (!b->live) {
		/* Only this thread changes its live, so the count moves once
		 * per wait. */
		b->live = 1;
		global_add(&tlstap_bio_waiting, 1);
	}
}

/* enter records a data call. num is the byte count the call is asked to
 * write (unused for reads); a write on a connection whose tuple is known
 * (and so judged against tlstap's endpoints) is emitted here (see the
 * emission contract at the top). */
static __always_inline int enter(struct pt_regs *ctx, __u8 lib, __u8 dir, __u8 ex, __u64 num)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;

	if (!wanted(pid, (__u32)bpf_get_current_uid_gid()))
		return 0;

	struct call c = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.lenp = ex ? PT_REGS_PARM4(ctx) : 0,
		.cookie = bpf_get_attach_cookie(ctx),
		.size = PT_REGS_PARM3(ctx),
		.dir = dir,
		.ex = ex,
		.lib = lib,
	};
	struct conn *cn = ensure_conn(pid, c.ssl, lib);
	/* A connection created just now has no tuple yet. */
	if (dir == DIR_WRITE && num && cn && cn->fd >= 0 && cn->tuple.family) {
		__u64 skip = cn->ahead < num ? cn->ahead : num;
		c.num = num;
		c.early = 1;
		if (num > skip)
			emit_conn(id, &c, cn, c.buf + skip, num - skip);
		/* The same entry: emit recreates a connection only when it
		 * is given none. */
		cn->ahead = num;
	}
	call_put(&c, false);
	return 0;
}

static __always_inline int leave(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *cp = call_get();
	if (!cp)
		return 0;
	struct call c = *cp;
	if (c.dir == DIR_HANDSHAKE)
		return 0; /* not this probe's call */
	cp->live = 0;

	/* Return values are C ints: SSL_read returns -1 on "would block". */
	int ret = (int)PT_REGS_RC(ctx);
	__u64 n = 0;
	if (c.ex) {
		if (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)c.lenp))
			n = 0;
	} else if (ret > 0) {
		n = ret;
	}

	if (c.early) {
		/* Emitted at entry: what was not accepted is ahead of the retry. */
		struct conn_key k = { .pid = id >> 32, .ssl = c.ssl };
		struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
		if (cn)
			cn->ahead = n < c.num ? c.num - n : 0;
		return 0;
	}
	if (n)
		emit_conn(id, &c, NULL, c.buf, n);
	if (c.lib == LIB_OPENSSL)
		bio_wait(id, c.ssl);
	return 0;
}

/* emit_call emits the first n bytes of call c's buffer: the return-time
 * path of libraries whose writes are not emitted at entry (GnuTLS). */
static __always_inline int emit_call(__u64 id, struct call *c, __u64 n)
{
	if (n)
		emit_conn(id, c, NULL, c->buf, n);
	return 0;
}

static __always_inline void notice(__u64 id, __u64 ssl, struct conn *cn, __u8 kind,
				   __u8 dir, __u64 lost)
{
	struct event *ev = bpf_ringbuf_reserve(&tlstap_events, sizeof(*ev), 0);
	if (!ev) {
		count(STAT_LOST_NOTICES, 1);
		return;
	}
	fill(ev, id, ssl, cn, kind, dir);
	ev->lost = lost;
	bpf_ringbuf_submit(ev, ring_flags());
}

/* end reports a connection's end (with any loss not yet reported) and
 * forgets it. */
static __always_inline void end(__u64 id, struct conn_key *k, struct conn *cn)
{
	if (cn->excluded) {
		/* Nothing of it was reported, so there is nothing to end. */
		bpf_map_delete_elem(&tlstap_conns, k);
		return;
	}
	if (cn->lost[DIR_READ])
		notice(id, k->ssl, cn, KIND_LOST, DIR_READ, cn->lost[DIR_READ]);
	if (cn->lost[DIR_WRITE])
		notice(id, k->ssl, cn, KIND_LOST, DIR_WRITE, cn->lost[DIR_WRITE]);
	notice(id, k->ssl, cn, KIND_CLOSE, DIR_READ, 0);
	bpf_map_delete_elem(&tlstap_conns, k);
}

SEC("uprobe")
int BPF_KPROBE(tlstap_ssl_write_enter)
{
	int num = (int)PT_REGS_PARM3(ctx);
	return enter(ctx, LIB_OPENSSL, DIR_WRITE, 0, num > 0 ? num : 0);
}

SEC("uprobe")
int BPF_KPROBE(tlstap_ssl_write_ex_enter) { return enter(ctx, LIB_OPENSSL, DIR_WRITE, 1, PT_REGS_PARM3(ctx)); }

SEC("uprobe")
int BPF_KPROBE(tlstap_ssl_read_enter) { return enter(ctx, LIB_OPENSSL, DIR_READ, 0, 0); }

SEC("uprobe")
int BPF_KPROBE(tlstap_ssl_read_ex_enter) { return enter(ctx, LIB_OPENSSL, DIR_READ, 1, 0); }

SEC("uretprobe")
int BPF_KRETPROBE(tlstap_ssl_return) { return leave(ctx); }

/* The handshake's syscalls teach the fd and tuple before the first data
 * call, which OpenSSL may serve entirely from what the handshake read
 * ahead. NOEXIST: never displace a data call the handshake is nested in. */
static __always_inline int handshake_enter(struct pt_regs *ctx, __u8 lib)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;

	if (!wanted(pid, (__u32)bpf_get_current_uid_gid()))
		return 0;
	struct call c = { .ssl = PT_REGS_PARM1(ctx), .dir = DIR_HANDSHAKE, .lib = lib };
	if (call_put(&c, true))
		return 0;
	ensure_conn(pid, c.ssl, lib);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tlstap_ssl_handshake_enter) { return handshake_enter(ctx, LIB_OPENSSL); }

SEC("uretprobe")
int BPF_KRETPROBE(tlstap_ssl_handshake_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = call_get();
	if (c && c->dir == DIR_HANDSHAKE) {
		__u64 ssl = c->ssl;
		c->live = 0;
		bio_wait(id, ssl);
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tlstap_ssl_free)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key k = { .pid = id >> 32, .ssl = PT_REGS_PARM1(ctx) };
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (!cn)
		return 0;
	if (cn->fd >= 0) {
		struct fd_key fk = { .pid = k.pid, .fd = cn->fd };
		__u64 *ssl = bpf_map_lookup_elem(&tlstap_fd_conns, &fk);
		if (ssl && *ssl == k.ssl)
			bpf_map_delete_elem(&tlstap_fd_conns, &fk);
	}
	end(id, &k, cn);
	return 0;
}

#include "gotls.h"
#include "nss.h"

SEC("tracepoint/syscalls/sys_enter_close")
int tlstap_sys_enter_close(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct fd_key fk = { .pid = id >> 32, .fd = (__s32)ctx->args[0] };
	__u64 *ssl = bpf_map_lookup_elem(&tlstap_fd_conns, &fk);
	if (!ssl)
		return 0;
	struct conn_key k = { .pid = fk.pid, .ssl = *ssl };
	bpf_map_delete_elem(&tlstap_fd_conns, &fk);
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	/* A stale mapping: the SSL* moved on to another fd. */
	if (!cn || cn->fd != fk.fd)
		return 0;
	end(id, &k, cn);
	return 0;
}

/* A process that dies without SSL_free or close(2) (killed, or exiting
 * with connections open) has its fds closed by the kernel, which no
 * syscall tracepoint sees. When its last thread exits, user space is told
 * and reports its remaining connections closed. */
SEC("tracepoint/sched/sched_process_exit")
int tlstap_sched_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	/* Per-thread state (tlstap_calls, tlstap_bio_learn) is freed by the
	 * kernel with the thread; a wait it leaves must leave the count. */
	bool conns = bpf_map_lookup_elem(&tlstap_procs, &pid);
	if (!conns && !bpf_map_lookup_elem(&tlstap_nss_ids, &pid))
		return 0;
	struct bio_learn *b = bio_get();
	if (b)
		bio_done(b);
	struct task_struct *task = bpf_get_current_task_btf();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0; /* other threads live on */
	bpf_map_delete_elem(&tlstap_nss_ids, &pid);
	if (!conns)
		return 0;
	bpf_map_delete_elem(&tlstap_procs, &pid);

	struct event *ev = bpf_ringbuf_reserve(&tlstap_events, sizeof(*ev), 0);
	if (!ev) {
		count(STAT_LOST_NOTICES, 1);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts = bpf_ktime_get_ns();
	ev->pid = pid;
	ev->tid = (__u32)id;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->fd = -1;
	ev->kind = KIND_EXIT;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, ring_flags());
	return 0;
}

/*
 * syscall_fd returns the fd of the send or receive syscall the current
 * thread is in (read, write, readv, writev, sendto, recvfrom, sendmsg,
 * recvmsg: all take it first), -1 for any other. The sock tracepoints
 * fire inside the syscall, and the syscall's arguments are in the
 * thread's saved user registers, so the fd and the socket's tuple are
 * learned in one place: no syscall-entry tracepoint is needed for the fd.
 * Those eight tracepoints ran a program on every such syscall of every
 * process, and each put the syscall on perf's tracepoint path (buffer,
 * argument copy, dispatch): a few hundred ns per captured call, in the
 * traced thread, on top of the probe. Only a socket operation gets here,
 * so a file read inside a call (node's handshake does one) is never
 * taken for the connection's fd; nor is a sendfile's or io_uring's
 * (other syscall numbers), which were not traced before either.
 */
static __always_inline __s32 syscall_fd(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	switch (regs->orig_rax) {
	case 0:  /* read */
	case 1:  /* write */
	case 19: /* readv */
	case 20: /* writev */
	case 44: /* sendto */
	case 45: /* recvfrom */
	case 46: /* sendmsg */
	case 47: /* recvmsg */
		return (__s32)regs->rdi;
	}
	return -1;
}

/* sock_tuple reads sk's 4-tuple; false when it is not a connected inet
 * socket (a reset or closed socket has been unhashed, which zeroes
 * skc_num: the tuple it had while connected is kept). */
static __always_inline bool sock_tuple(struct sock *sk, struct tuple *t)
{
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(t->laddr, &l, 4);
		__builtin_memcpy(t->raddr, &r, 4);
	} else if (t->family == AF_INET6) {
		BPF_CORE_READ_INTO(&t->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return false;
	}
	return t->lport && t->rport;
}

/* tuple_eq compares two tuples as the five words they are. */
static __always_inline bool tuple_eq(const struct tuple *a, const struct tuple *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	_Static_assert(sizeof(struct tuple) == 40, "struct tuple is five words");
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* bio_learn_sock teaches a memory-BIO connection waiting on this thread
 * (tlstap_bio_learn) the fd and tuple of the thread's socket operation. */
static __always_inline int bio_learn_sock(__u64 id, struct sock *sk)
{
	struct bio_learn *b = bio_get();
	if (!b)
		return 0;
	struct conn_key k = { .pid = id >> 32, .ssl = b->ssl };
	__s32 fd = syscall_fd();
	struct tuple t = {};
	if (fd < 0 || !sock_tuple(sk, &t))
		return 0;
	bio_done(b);
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (!cn || cn->fd >= 0 || cn->tuple.family)
		return 0;
	cn->fd = fd;
	cn->tuple = t;
	exclude_self(cn, &t);
	struct fd_key fk = { .pid = k.pid, .fd = fd };
	bpf_map_update_elem(&tlstap_fd_conns, &fk, &k.ssl, BPF_ANY);
	return 0;
}

/* on_sock copies the 4-tuple of the socket the thread uses inside an SSL call. */
static __always_inline int on_sock(struct sock *sk, bool send)
{
	if (!sk)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = call_get();
	struct go_key gk = {};
	struct conn_key k = { .pid = id >> 32, .ssl = c ? c->ssl : go_learning(id, &gk) };
	if (!k.ssl)
		return send ? bio_learn_sock(id, sk) : 0;
	if (c && c->ex == CALL_GO_LEARN)
		c->live = 0; /* one-shot, see gotls.h */
	else if (!c)
		go_learn_del(&gk); /* learnt, see gotls.h */
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (!cn)
		return 0;
	__s32 fd = syscall_fd();
	if (fd >= 0 && cn->fd != fd) {
		cn->fd = fd;
		struct fd_key fk = { .pid = k.pid, .fd = fd };
		bpf_map_update_elem(&tlstap_fd_conns, &fk, &k.ssl, BPF_ANY);
	}

	struct tuple t __attribute__((aligned(8))) = {};
	if (!sock_tuple(sk, &t))
		return 0; /* not a connected inet socket: keep what we had */
	if (!tuple_eq(&cn->tuple, &t)) {
		cn->tuple = t;
		cn->judged = 0;
	}
	rejudge_self(cn);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tlstap_sock_send_length, struct sock *sk, int ret, int flags) { return on_sock(sk, true); }

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tlstap_sock_recv_length, struct sock *sk, int ret, int flags) { return on_sock(sk, false); }


/*
 * tlstap_ring_warm touches every page of the ring once, through the
 * kernel's mapping of it, before any probe is attached (source.go,
 * warmRing): it reserves page-sized records until the ring is full and
 * discards them, so each reservation writes its header at the start of a
 * new page. Why: the first write to each page of a freshly allocated ring
 * costs the writer a page walk that, on a hypervisor with shadow page
 * tables (PVM, measured in docs/benchmarks.md), is a trap into the host;
 * on this VM it was ~15 µs per page, ~650 ns per 64-byte GnuTLS record
 * over the ring's first lap (64 MiB by default), paid by the traced
 * thread. The reader then skips the discarded records, which touches each
 * page of its own mapping once as well.
 */
#define WARM_RECORD (4096 - 8) /* plus the 8-byte record header: one page */

static long warm_page(__u32 i, void *pages)
{
	void *p = bpf_ringbuf_reserve(&tlstap_events, WARM_RECORD, 0);
	if (!p) {
		/* A ring never fills to its last byte: one word less still
		 * starts its record on the last page. */
		p = bpf_ringbuf_reserve(&tlstap_events, WARM_RECORD - 8, 0);
		if (p) {
			bpf_ringbuf_discard(p, BPF_RB_NO_WAKEUP);
			(*(__u32 *)pages)++;
		}
		return 1;
	}
	bpf_ringbuf_discard(p, BPF_RB_NO_WAKEUP);
	(*(__u32 *)pages)++;
	return 0;
}

/* Returns the number of pages written. */
SEC("syscall")
int tlstap_ring_warm(void *ctx)
{
	__u32 pages = 0;
	/* bpf_loop's limit, 1 << 23 pages, is a 32 GiB ring. */
	bpf_loop(1 << 23, warm_page, &pages, 0);
	return pages;
}

#include "gnutls.h"

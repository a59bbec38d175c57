/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NSS/NSPR: PR_Write, PR_Send, PR_Read, PR_Recv and PR_Writev in libnspr4,
 * PR_Close as the close, SSL_ImportFD (and DTLS_ImportFD) in libssl3.
 *
 * Included at the end of tlstap.bpf.c. NSPR's I/O functions serve files,
 * pipes and plain sockets as well as TLS: they only call the top layer's
 * method of the PRFileDesc they are given. A descriptor carries TLS when
 * its layer stack holds NSS's SSL layer, whose identity is a number NSPR
 * hands out at run time (PR_GetUniqueIdentity("SSL")), so it differs from
 * process to process. SSL_ImportFD returns the SSL layer: its return probe
 * reads that layer's identity and keeps it per process. A PR_* call is then
 * captured only when the process has such an identity and the descriptor
 * (or one of the few layers below it, for a program that pushed its own
 * layer on top) has it; everything else returns after one map lookup.
 *
 * The descriptor pointer the program holds is the connection (NSPR pushes a
 * layer by swapping the contents of the top PRFileDesc, so the pointer the
 * program got from PR_NewTCPSocket stays its top), so a TLS connection is
 * keyed by it exactly like an SSL*: the same enter()/leave() helpers, the
 * same write-at-entry contract (PR_Write returns what NSS accepted, -1 with
 * PR_WOULD_BLOCK_ERROR when it accepted nothing), the fd and 4-tuple from
 * the socket tracepoints inside the call, and PR_Close as the end.
 */
#ifndef TLSTAP_NSS_H
#define TLSTAP_NSS_H

/* struct PRFileDesc (prio.h, unchanged since NSPR 4.0): methods, secret,
 * lower, higher, dtor, identity. */
#define PRFD_LOWER 16
#define PRFD_IDENTITY 40

/* Layers walked down from the descriptor a program passes: the SSL layer
 * is the top one unless the program pushed its own above it. */
#define NSS_MAX_LAYERS 4

/* PR_MAX_IOVECTOR_SIZE: PR_Writev refuses more. */
#define NSS_MAX_IOV 16

/* PR_Recv's flag that leaves the data in the socket: it will be read again. */
#define PR_MSG_PEEK 2

/* Per process, the identity of NSS's SSL layer, learned from the
 * descriptor SSL_ImportFD returns; deleted when the process exits. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __s32);
} tlstap_nss_ids SEC(".maps");

/* nss_tls reports whether fd carries NSS's SSL layer. */
static __always_inline bool nss_tls(__u32 pid, __u64 fd)
{
	__s32 *ssl = bpf_map_lookup_elem(&tlstap_nss_ids, &pid);
	if (!ssl)
		return false;
	__s32 want = *ssl;
	for (int i = 0; i < NSS_MAX_LAYERS; i++) {
		__s32 ident;
		if (!fd || bpf_probe_read_user(&ident, sizeof(ident), (void *)(fd + PRFD_IDENTITY)))
			return false;
		if (ident == want)
			return true;
		if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(fd + PRFD_LOWER)))
			return false;
	}
	return false;
}

static __always_inline int nss_enter(struct pt_regs *ctx, __u8 dir, __u64 num)
{
	if (!nss_tls(bpf_get_current_pid_tgid() >> 32, PT_REGS_PARM1(ctx)))
		return 0;
	return enter(ctx, LIB_NSS, dir, 0, num);
}

/* PR_Write(fd, buf, amount) and PR_Send(fd, buf, amount, flags, timeout). */
SEC("uprobe")
int BPF_KPROBE(tlstap_nss_write_enter)
{
	int amount = (int)PT_REGS_PARM3(ctx);
	return nss_enter(ctx, DIR_WRITE, amount > 0 ? amount : 0);
}

/* PR_Read(fd, buf, amount). */
SEC("uprobe")
int BPF_KPROBE(tlstap_nss_read_enter) { return nss_enter(ctx, DIR_READ, 0); }

/* PR_Recv(fd, buf, amount, flags, timeout): a peek is read again later. */
SEC("uprobe")
int BPF_KPROBE(tlstap_nss_recv_enter)
{
	if ((int)PT_REGS_PARM4(ctx) & PR_MSG_PEEK)
		return 0;
	return nss_enter(ctx, DIR_READ, 0);
}

/*
 * PR_Writev(fd, const PRIOVec *iov, PRInt32 iov_size, timeout) is emitted
 * at return, in iovec order, up to the count it returns: NSS's writev
 * coalesces the vectors and sends them as one write, and a would-block
 * writev is retried by the program with the same vectors. Its order
 * against the peer's read of the same bytes is therefore not guaranteed as
 * it is for PR_Write.
 */
struct nss_iov {
	__u64 base;
	__s32 len;
	__s32 _pad;
};

SEC("uprobe")
int BPF_KPROBE(tlstap_nss_writev_enter)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;

	if (!nss_tls(pid, PT_REGS_PARM1(ctx)) || !wanted(pid, (__u32)bpf_get_current_uid_gid()))
		return 0;
	struct call c = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.size = (__u32)PT_REGS_PARM3(ctx),
		.dir = DIR_WRITE,
		.lib = LIB_NSS,
	};
	ensure_conn(pid, c.ssl, LIB_NSS);
	call_put(&c, false);
	return 0;
}

struct writev_ctx {
	struct call c;
	__u64 id;
	__u64 left; /* bytes the call returned, not yet emitted */
};

static long emit_iov(__u32 i, void *data)
{
	struct writev_ctx *w = data;
	struct nss_iov v;

	if (i >= w->c.size || !w->left)
		return 1;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(w->c.buf + (__u64)i * sizeof(v))))
		return 1;
	if (v.len <= 0)
		return 0;
	__u64 n = (__u64)v.len < w->left ? (__u64)v.len : w->left;
	emit(w->id, &w->c, v.base, n);
	w->left -= n;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(tlstap_nss_writev_return)
{
	struct writev_ctx w = { .id = bpf_get_current_pid_tgid() };
	struct call *cp = call_get();
	if (!cp || cp->dir == DIR_HANDSHAKE)
		return 0;
	w.c = *cp;
	cp->live = 0;
	int ret = (int)PT_REGS_RC(ctx);
	if (ret <= 0)
		return 0;
	w.left = ret;
	bpf_loop(NSS_MAX_IOV, emit_iov, &w, 0);
	return 0;
}

/* SSL_ImportFD(model, fd) and DTLS_ImportFD return the SSL layer. */
SEC("uretprobe")
int BPF_KRETPROBE(tlstap_nss_import_return)
{
	__u64 fd = PT_REGS_RC(ctx);
	__s32 ident;
	if (!fd || bpf_probe_read_user(&ident, sizeof(ident), (void *)(fd + PRFD_IDENTITY)))
		return 0;
	/* 0 is NSPR's own bottom layer, negatives are reserved values. */
	if (ident <= 0)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	bpf_map_update_elem(&tlstap_nss_ids, &pid, &ident, BPF_ANY);
	return 0;
}

#endif

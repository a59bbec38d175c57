/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * GnuTLS: gnutls_record_send{,2,_range} and gnutls_record_recv{,_seq}.
 *
 * Included at the end of tlstap.bpf.c: a GnuTLS session is tracked exactly
 * like an OpenSSL SSL*, through the same enter()/emit_conn() helpers and
 * the same conns map, so fd and 4-tuple come from the socket tracepoints
 * that fire inside the call whatever transport pointer the program set
 * (libcurl's is not an fd). gnutls_deinit is the close (ssl_free) and
 * gnutls_handshake teaches the socket early (ssl_handshake_return).
 *
 * All five functions take (session, data, size, ...) and return ssize_t.
 * Since 3.6.3 gnutls_record_send is a tail call of gnutls_record_send2, so
 * user space probes only send2 there. Were both probed, the inner entry
 * would overwrite the outer one's call with the same arguments, the inner
 * return emit and delete it, and the outer return find nothing: a call is
 * counted once however the library nests them.
 */
#ifndef TLSTAP_GNUTLS_H
#define TLSTAP_GNUTLS_H

#define GNUTLS_E_AGAIN (-28)
#define GNUTLS_E_INTERRUPTED (-52)

/* gnutls_version reads the negotiated version the way
 * gnutls_protocol_get_version does (session->security_parameters.pversion
 * ->id, offsets from the attach cookie, which user space took from that
 * function's code) and returns it as on the wire; 0 before the handshake
 * chose one or for a value that is not a TLS version. */
static __always_inline int gnutls_version(__u64 session, __u64 cookie)
{
	__u64 entry = 0;
	int proto = 0;
	if (bpf_probe_read_user(&entry, sizeof(entry), (void *)(session + (cookie & 0xffff))) || !entry)
		return 0;
	if (bpf_probe_read_user(&proto, sizeof(proto), (void *)(entry + ((cookie >> 16) & 0xffff))))
		return 0;
	switch (proto) { /* gnutls_protocol_t */
	case 1: return 0x0300; /* SSL3 */
	case 2: return 0x0301;
	case 3: return 0x0302;
	case 4: return 0x0303;
	case 5: return 0x0304;
	case 201: return 0xfeff; /* DTLS 1.0 */
	case 202: return 0xfefd; /* DTLS 1.2 */
	}
	return 0;
}

/* GnuTLS sends at most one record per call: a larger size is cut to the
 * maximum record size (16 KiB unless negotiated lower). */
#define GNUTLS_MAX_RECORD 16384

/*
 * A send that returns E_AGAIN or E_INTERRUPTED has already encrypted its
 * record into the session's buffer; the caller then retries, possibly with
 * a NULL buffer and size 0, and the retry returns the original size. The
 * plaintext is only readable at the failed call, so it is emitted there
 * and its length kept in conn.ahead; the retry's success clears ahead
 * instead of emitting. This is the same contract as emitting a write at
 * entry: bytes emitted ahead of a failed return are counted per connection
 * and a retry does not emit them twice.
 */
static __always_inline int gnutls_leave(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *cp = call_get();
	if (!cp)
		return 0;
	struct call c = *cp;
	if (c.dir == DIR_HANDSHAKE)
		return 0;
	cp->live = 0;

	long ret = (long)PT_REGS_RC(ctx);
	if (c.dir == DIR_READ)
		return ret > 0 ? emit_call(id, &c, ret) : 0;

	struct conn_key k = { .pid = id >> 32, .ssl = c.ssl };
	struct conn *cn = bpf_map_lookup_elem(&tlstap_conns, &k);
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
		if (!cn || cn->ahead || !c.buf || !c.size)
			return 0; /* a retry that failed again: already emitted */
		__u64 n = c.size < GNUTLS_MAX_RECORD ? c.size : GNUTLS_MAX_RECORD;
		cn->ahead = n;
		emit_conn(id, &c, cn, c.buf, n);
		return 0;
	}
	if (ret <= 0)
		return 0;
	if (cn && cn->ahead) {
		cn->ahead = 0; /* the retry of a send emitted when it failed */
		return 0;
	}
	/* cn, looked up once for the whole return (NULL: recreated there). */
	emit_conn(id, &c, cn, c.buf, ret);
	return 0;
}

/* num 0: GnuTLS writes are emitted at return (gnutls_leave), not at entry,
 * because a retry after E_AGAIN may pass a NULL buffer and only the failed
 * call's buffer holds the plaintext. Their order against the peer's read is
 * therefore not guaranteed as it is for OpenSSL. */
SEC("uprobe")
int BPF_KPROBE(tlstap_gnutls_send_enter) { return enter(ctx, LIB_GNUTLS, DIR_WRITE, 0, 0); }

SEC("uprobe")
int BPF_KPROBE(tlstap_gnutls_recv_enter) { return enter(ctx, LIB_GNUTLS, DIR_READ, 0, 0); }

SEC("uretprobe")
int BPF_KRETPROBE(tlstap_gnutls_return) { return gnutls_leave(ctx); }

SEC("uprobe")
int BPF_KPROBE(tlstap_gnutls_handshake_enter) { return handshake_enter(ctx, LIB_GNUTLS); }

#endif

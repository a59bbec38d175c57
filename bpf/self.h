/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Self-exclusion: connections with one end at an endpoint of tlstap's own
 * (its listeners, the peers it accepted, the local ends of its forwarders'
 * and sinks' connections) are never captured, whichever process holds the
 * other end. Without it a stream client using OpenSSL would be sent its own
 * reads back, and a local webhook server would feed the forwarder.
 *
 * User space fills self_endpoints; on_sock marks a connection excluded the
 * first time its tuple matches, emit (rejudge_self) checks the tuple again
 * before any data of it goes out, and emit_chunk drops its data, counted.
 * A write is only emitted at entry once its tuple is known (see the
 * emission contract in tlstap.bpf.c), so no data leaves unjudged when its
 * tuple can be known.
 * tlstap registers an endpoint before any byte crosses it (an accepted
 * peer before the TLS handshake can complete, an outgoing connection
 * before it is handed to its user), so the mark is in place before the
 * first data call returns.
 */
#ifndef TLSTAP_SELF_H
#define TLSTAP_SELF_H

/* Addresses are IPv6, IPv4 as ::ffff:a.b.c.d, so a dual-stack socket and
 * an AF_INET one meet at one key. Keep in sync with self.go. */
struct endpoint {
	__u8 addr[16];
	__u16 port; /* host byte order */
	__u16 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct endpoint);
	__type(value, __u8);
} tlstap_self_endpoints SEC(".maps");

static __always_inline bool self_endpoint(__u8 family, const __u8 *addr, __u16 port)
{
	struct endpoint k = { .port = port };
	if (family == AF_INET) {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], addr, 4);
	} else {
		__builtin_memcpy(k.addr, addr, 16);
	}
	return bpf_map_lookup_elem(&tlstap_self_endpoints, &k) != NULL;
}

/* Bumped by user space after every endpoint it adds (self.go), so a
 * connection judged since the last bump need not be judged again: the two
 * hash lookups of a judgement were a good part of a small call's cost. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tlstap_self_gen SEC(".maps");

/* self_generation returns the endpoint set's generation plus one, never 0
 * (conn.judged's "not judged"); 0 only if the map cannot be read, which
 * matches no connection's judgement. */
static __always_inline __u32 self_generation(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&tlstap_self_gen, &zero);
	if (!g)
		return 0;
	__u32 v = *(volatile __u32 *)g + 1;
	return v ? v : 1;
}

/* exclude_self marks cn when either end of t is one of tlstap's. The
 * generation is read before the lookups: an endpoint added meanwhile bumps
 * it after its insertion, so the next rejudge_self looks again. */
static __always_inline void exclude_self(struct conn *cn, const struct tuple *t)
{
	if (cn->excluded)
		return;
	__u32 gen = self_generation();
	if (self_endpoint(t->family, t->laddr, t->lport) ||
	    self_endpoint(t->family, t->raddr, t->rport)) {
		cn->excluded = 1;
		count(STAT_EXCLUDED_CONNS, 1);
		return;
	}
	cn->judged = gen;
}

/* rejudge_self checks a connection's known tuple again just before its data
 * is emitted, unless no endpoint was added since it was last judged.
 * on_sock judges the tuple when it learns it, but an endpoint may be
 * registered a moment later (tlstap registers an outgoing connection's
 * local end when connect returns; its peer can have read, and failed with
 * EAGAIN, before that), and data served from the library's buffer or
 * written at entry crosses no socket operation that would judge it again. */
static __always_inline void rejudge_self(struct conn *cn)
{
	if (cn->tuple.family && !cn->excluded && (!cn->judged || cn->judged != self_generation()))
		exclude_self(cn, &cn->tuple);
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Minimal kernel type definitions for tlstap's BPF programs.
 *
 * Only the members tlstap reads are declared. preserve_access_index makes
 * clang emit CO-RE relocations, so the loader resolves every offset against
 * the running kernel's BTF and no vmlinux.h is needed. Members the kernel
 * nests in anonymous unions (skc_daddr, skc_num, ...) are declared flat:
 * the CO-RE resolver searches anonymous members by name.
 */
#ifndef TLSTAP_H
#define TLSTAP_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>

enum {
	AF_INET = 2,
	AF_INET6 = 10,
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct thread_struct {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct {
	struct signal_struct *signal;
	struct thread_struct thread;
} __attribute__((preserve_access_index));

/* x86-64 registers as a uprobe sees them, with the user-space member names
 * bpf_tracing.h expects outside the kernel. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};

/* The common layout of every syscalls:sys_enter_* tracepoint record. */
struct sys_enter_ctx {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

#endif

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tlstap's process watcher: tells user space when a process may have
 * gained an executable file, so it can look for TLS libraries to probe.
 *
 * Two moments: exec (the kernel maps the program itself, which no mmap
 * call shows: a static node or Go binary) and a successful mmap with
 * PROT_EXEC of a file (the dynamic loader mapping a library's code, at
 * start or on dlopen). The mmap is reported at its return, so the mapping
 * is already in /proc/PID/maps when user space looks.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PROT_EXEC 0x4

enum reason { REASON_EXEC = 0, REASON_MMAP = 1 };

struct notice {
	__u64 ts; /* bpf_ktime_get_ns */
	__u32 pid;
	__u32 reason; /* enum reason */
};

struct sys_enter_ctx {
	__u64 common;
	__s64 id;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s64 id;
	__s64 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} tlstap_notices SEC(".maps");

/* Threads inside an mmap(PROT_EXEC) of a file. LRU: a thread killed inside
 * the call leaves an entry that must not stay forever. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} tlstap_mmaps SEC(".maps");

/* lost counts notices the full ring refused. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tlstap_lost SEC(".maps");

/* self is tlstap's own pid, set by the loader: it never watches itself. */
volatile const __u32 self = 0;

static __always_inline void tell(__u32 pid, __u32 reason)
{
	struct notice n = { .ts = bpf_ktime_get_ns(), .pid = pid, .reason = reason };
	if (bpf_ringbuf_output(&tlstap_notices, &n, sizeof(n), 0)) {
		__u32 zero = 0;
		__u64 *v = bpf_map_lookup_elem(&tlstap_lost, &zero);
		if (v)
			*v += 1;
	}
}

SEC("tracepoint/sched/sched_process_exec")
int tlstap_sched_process_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (pid != self)
		tell(pid, REASON_EXEC);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int tlstap_sys_enter_mmap(struct sys_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((id >> 32) == self || !(ctx->args[2] & PROT_EXEC) || (__s32)ctx->args[4] < 0)
		return 0;
	__u32 tid = (__u32)id;
	__u8 one = 1;
	bpf_map_update_elem(&tlstap_mmaps, &tid, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int tlstap_sys_exit_mmap(struct sys_exit_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	if (!bpf_map_lookup_elem(&tlstap_mmaps, &tid))
		return 0;
	bpf_map_delete_elem(&tlstap_mmaps, &tid);
	/* Errors are small negative numbers; addresses are not. */
	if (ctx->ret < 0 && ctx->ret > -4096)
		return 0;
	tell(id >> 32, REASON_MMAP);
	return 0;
}

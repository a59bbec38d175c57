// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tlstap's process watcher: tells user space when a process has mapped an
 * executable file user space has not looked at yet, so it can look for
 * TLS libraries to probe.
 *
 * Two moments: exec (the kernel maps the program itself, which no mmap
 * call shows: a static node or Go binary) and a successful mmap with
 * PROT_EXEC of a file (the dynamic loader mapping a library's code, at
 * start or on dlopen). The mmap is reported at its return, so the mapping
 * is already in /proc/PID/maps when user space looks.
 *
 * The cost follows new files, not process starts: the mapped file is
 * resolved here to its identity (struct file_key) and looked up in
 * tlstap_known, which user space fills once it has looked at a file
 * (whether or not it took it). A process whose program and libraries are
 * all known produces no notice at all, which on a machine running builds
 * is nearly every process.
 *
 * The file is taken from the VMA the mapping created (bpf_find_vma), not
 * from mmap's fd or task->mm->exe_file: on overlayfs those are the
 * overlay's file while the VMA holds the real one, and it is the VMA's
 * device and inode that /proc/PID/maps shows and user space matches.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PROT_EXEC 0x4

enum reason { REASON_EXEC = 0, REASON_MMAP = 1 };

/* Only the members read here; CO-RE resolves them against the kernel's
 * BTF (see tlstap.h). */
struct super_block {
	__u32 s_dev;
} __attribute__((preserve_access_index));

struct inode {
	struct super_block *i_sb;
	unsigned long i_ino;
	__s64 i_ctime_sec;
	__u32 i_ctime_nsec;
	__u32 i_generation;
} __attribute__((preserve_access_index));

/* The change time's older layouts: a timespec64 named __i_ctime (6.6 to
 * 6.10) or i_ctime (before 6.6); CO-RE keeps the branch that matches. */
struct timespec64 {
	__s64 tv_sec;
	long tv_nsec;
};

struct inode___v66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___v60 {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct vm_area_struct {
	struct file *vm_file;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long start_code;
} __attribute__((preserve_access_index));

struct task_struct {
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

/*
 * file_key identifies a file's contents as well as the kernel can say
 * cheaply. Device and inode alone are not enough: an inode number is
 * reused as soon as its file is deleted (a build replacing its output, a
 * package upgrade), and the new file must be looked at. The inode's
 * generation (random per new inode on ext4, xfs, btrfs and tmpfs) and its
 * change time (set at creation and by every write, truncate, chmod or
 * rename) tell a reused or rewritten inode from the one user space saw.
 * dev is the kernel's dev_t (major << 20 | minor). ino 0 means "not
 * resolved": such a notice is never marked known.
 */
struct file_key {
	__u64 ino;
	__u32 dev;
	__u32 gen;
	__s64 ctime_sec;
	__u32 ctime_nsec;
	__u32 pad;
};

struct notice {
	__u64 ts; /* bpf_ktime_get_ns */
	__u32 pid;
	__u32 reason; /* enum reason */
	struct file_key file;
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

/* Files user space has looked at. LRU: a file evicted costs one more look,
 * nothing else. Sized for the executables a busy machine keeps mapping. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct file_key);
	__type(value, __u8);
} tlstap_known SEC(".maps");

/* lost counts notices the full ring refused. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tlstap_lost SEC(".maps");

/* self is tlstap's own pid, set by the loader: it never watches itself. */
volatile const __u32 self = 0;

static long key_of_vma(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	struct file_key *k = ctx;
	struct inode *ino = BPF_CORE_READ(vma, vm_file, f_inode);
	if (!ino)
		return 0;
	k->ino = BPF_CORE_READ(ino, i_ino);
	k->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	k->gen = BPF_CORE_READ(ino, i_generation);
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		k->ctime_sec = BPF_CORE_READ(ino, i_ctime_sec);
		/* Bit 31 is I_CTIME_QUERIED (multigrain timestamps, 6.13+),
		 * which a mere stat sets: not part of the time. Nanoseconds
		 * never reach it. */
		k->ctime_nsec = BPF_CORE_READ(ino, i_ctime_nsec) & 0x7fffffff;
	} else if (bpf_core_field_exists(((struct inode___v66 *)ino)->__i_ctime)) {
		struct inode___v66 *o = (void *)ino;
		k->ctime_sec = BPF_CORE_READ(o, __i_ctime.tv_sec);
		k->ctime_nsec = BPF_CORE_READ(o, __i_ctime.tv_nsec);
	} else {
		struct inode___v60 *o = (void *)ino;
		k->ctime_sec = BPF_CORE_READ(o, i_ctime.tv_sec);
		k->ctime_nsec = BPF_CORE_READ(o, i_ctime.tv_nsec);
	}
	return 0;
}

/* file_at fills k with the file mapped at addr in the current process; k
 * stays zero when there is none or the mm's lock was busy. */
static __always_inline void file_at(__u64 addr, struct file_key *k)
{
	struct task_struct *task = bpf_get_current_task_btf();
	bpf_find_vma(task, addr, key_of_vma, k, 0);
}

static __always_inline void tell(__u32 pid, __u32 reason, struct file_key *k)
{
	if (k->ino && bpf_map_lookup_elem(&tlstap_known, k))
		return;
	struct notice n = { .ts = bpf_ktime_get_ns(), .pid = pid, .reason = reason, .file = *k };
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
	if (pid == self)
		return 0;
	/* start_code lies in the program's executable segment, mapped from
	 * the file itself (the interpreter, ld.so, is mapped elsewhere). */
	struct task_struct *task = bpf_get_current_task_btf();
	struct file_key k = {};
	__u64 code = BPF_CORE_READ(task, mm, start_code);
	if (code)
		file_at(code, &k);
	tell(pid, REASON_EXEC, &k);
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
	struct file_key k = {};
	file_at((__u64)ctx->ret, &k);
	tell(id >> 32, REASON_MMAP, &k);
	return 0;
}

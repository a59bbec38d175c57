/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ring record layout shared by the BPF side and Go.
 *
 * Every record in tlstap_events is a struct event header followed by up to
 * MAX_DATA bytes of plaintext. bpf2go mirrors these types in
 * tlstap_x86_bpfel.go; internal/capture/openssl/record.go decodes records
 * with fixed offsets, and record_test.go checks those offsets against the
 * mirrored struct and the enum values below against this file, so the C
 * and the Go cannot drift apart.
 */
#ifndef TLSTAP_RECORD_H
#define TLSTAP_RECORD_H

#include <linux/types.h>

/* One TLS record carries at most 16 KiB of plaintext, so an SSL_read never
 * needs more than one ring record. */
#define MAX_DATA 16384
#define TASK_COMM_LEN 16

/* KIND_EXIT is internal: user space turns it into a Close per connection. */
enum kind { KIND_DATA = 0, KIND_CLOSE = 1, KIND_LOST = 2, KIND_EXIT = 3 };
enum dir { DIR_READ = 0, DIR_WRITE = 1, DIR_HANDSHAKE = 2 };
enum lib { LIB_OPENSSL = 0, LIB_GNUTLS = 1, LIB_NSS = 2, LIB_GOTLS = 3 };

struct tuple {
	__u8 family;
	__u8 _pad;
	__u16 lport; /* host byte order */
	__u16 rport; /* host byte order */
	__u16 _pad2;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* The ring record header; plaintext follows it. */
struct event {
	__u64 ts;
	__u64 conn;
	__u64 lost; /* bytes of this direction lost just before this record */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 fd;
	__u32 len;
	__u16 version;
	__u8 kind;
	__u8 dir;
	struct tuple tuple;
	char comm[TASK_COMM_LEN];
	__u8 lib; /* enum lib */
	__u8 _pad3[7];
	/* The calling thread's cgroup v2 id (the cgroup directory's inode):
	 * user space maps it to a cgroup path and a container id. */
	__u64 cgroup;
};

struct record {
	struct event hdr;
	__u8 data[MAX_DATA];
};

#endif

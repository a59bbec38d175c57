package openssl

// The generated tlstap_x86_bpfel.{go,o} are committed, so building needs no
// clang. Regenerating needs clang, llvm-strip and libbpf-dev (bpf_helpers.h);
// see doc.go.
//go:generate go tool bpf2go -cc clang -strip llvm-strip -target amd64 -type event -type record -type config -type id_key -type comm_key -type conn_key -type conn tlstap ../../../bpf/tlstap.bpf.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu

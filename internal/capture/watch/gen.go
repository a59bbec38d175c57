package watch

// The generated watch_x86_bpfel.{go,o} are committed, so building needs no
// clang. Regenerating needs clang, llvm-strip and libbpf-dev.
//go:generate go tool bpf2go -cc clang -strip llvm-strip -target amd64 watch ../../../bpf/watch.bpf.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu

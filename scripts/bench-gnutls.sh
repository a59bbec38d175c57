#!/usr/bin/env bash
# bench-gnutls.sh: cost per gnutls_record_send with tlstap's GnuTLS probes
# against a bare trap on the same function, and the same for SSL_write,
# all measured in one run with the modes interleaved.
#
#   sudo scripts/bench-gnutls.sh [ROUNDS]
#   CAPS="main=/path/to/benchcap ..." sudo scripts/bench-gnutls.sh [ROUNDS]
#
# Modes: none (no probes), bare-trap (bpftrace counting entry and return of
# the function tlstap traps: gnutls_record_send2, which gnutls_record_send
# tail-calls; SSL_write for OpenSSL), tlstap (internal/benchcap, discovery
# as without flags), and one mode per NAME=PATH in CAPS: another benchcap
# build (another commit's, for instance), run the same way. Clients:
# scripts/bench/gnutls_bench.c (libgnutls) and ssl_bench.c (libssl), N
# calls of SIZE bytes to an ssl_bench "serve" process linked statically,
# which no probe is on. The figure is the client thread's CPU time per call
# (CLOCK_THREAD_CPUTIME_ID around the send loop): the trap and the BPF program run on that thread, and CPU time,
# unlike wall time, is barely moved by other load on a shared machine.
#
# Needs root, gcc, libssl-dev (libssl.a), libgnutls30, bpftrace, openssl, go.
set -euo pipefail

ROUNDS=${1:-5}
N=${N:-20000}
SIZE=${SIZE:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
BGPID=
SERVEPID=
cleanup() {
	for p in $BGPID $SERVEPID; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

SSL=$(ldconfig -p | awk '$1 == "libssl.so.3" && /x86-64/ {print $NF; exit}')
GNUTLS=$(ldconfig -p | awk '$1 == "libgnutls.so.30" && /x86-64/ {print $NF; exit}')
[[ -n $SSL && -n $GNUTLS ]] || { echo "need libssl.so.3 and libgnutls.so.30" >&2; exit 1; }

gcc -O2 -Wall -o "$WORK/ssl_bench" "$ROOT/scripts/bench/ssl_bench.c" -lssl -lcrypto
gcc -O2 -Wall -o "$WORK/ssl_serve" "$ROOT/scripts/bench/ssl_bench.c" \
	-Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -ldl -pthread
gcc -O2 -Wall -o "$WORK/gnutls_bench" "$ROOT/scripts/bench/gnutls_bench.c" -l:libgnutls.so.30
(cd "$ROOT" && go build -o "$WORK/benchcap" ./internal/capture/openssl/internal/benchcap)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 1 2>/dev/null

start_bg() { # OUT READY CMD...
	local out=$1 ready=$2; shift 2
	: >"$out"
	"$@" >>"$out" 2>&1 &
	BGPID=$!
	for _ in $(seq 300); do
		grep -q "$ready" "$out" && return 0
		kill -0 "$BGPID" 2>/dev/null || { cat "$out" >&2; exit 1; }
		sleep 0.1
	done
	echo "timeout waiting for $ready" >&2; cat "$out" >&2; exit 1
}
stop_bg() {
	kill -TERM "$BGPID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$BGPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$BGPID" 2>/dev/null || true
	wait "$BGPID" || true
	BGPID=
}

with_mode() { # MODE LIB FUNC CMD...
	local mode=$1 lib=$2 fn=$3; shift 3
	case $mode in
	none) "$@" ;;
	bare-trap)
		start_bg "$WORK/bt.out" Attaching bpftrace -e \
			"uprobe:$lib:$fn { @e = count(); } uretprobe:$lib:$fn { @r = count(); }"
		sleep 0.5; "$@"; stop_bg ;;
	tlstap)
		start_bg "$WORK/cap.out" ready "$WORK/benchcap"
		"$@"; stop_bg ;;
	*)
		start_bg "$WORK/cap.out" ready "${CAPBIN[$mode]}"
		"$@"; stop_bg ;;
	esac
}

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

MODES=(none bare-trap tlstap)
declare -A CAPBIN=()
for c in ${CAPS:-}; do
	[[ $c == *=* && -x ${c#*=} ]] || { echo "CAPS: $c is not NAME=executable" >&2; exit 1; }
	CAPBIN[${c%%=*}]=${c#*=}
	MODES+=("${c%%=*}")
done

"$WORK/ssl_serve" "$WORK/cert.pem" "$WORK/key.pem" serve >"$WORK/serve.out" &
SERVEPID=$!
for _ in $(seq 100); do grep -qs port= "$WORK/serve.out" && break; sleep 0.1; done
PORT=$(sed -n 's/port=//p' "$WORK/serve.out")

echo "# $ROUNDS rounds x $N calls of $SIZE bytes, $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	for m in "${MODES[@]}"; do
		with_mode "$m" "$GNUTLS" gnutls_record_send2 "$WORK/gnutls_bench" "$PORT" "$N" "$SIZE" |
			field cpu_ns_per_write >>"$WORK/gnutls-$m.ns"
		with_mode "$m" "$SSL" SSL_write "$WORK/ssl_bench" "$WORK/cert.pem" "$WORK/key.pem" write "$N" "$SIZE" 0 "$PORT" |
			field cpu_ns_per_write >>"$WORK/openssl-$m.ns"
	done
done
for lib in gnutls openssl; do
	for m in "${MODES[@]}"; do
		printf '%-8s %-10s median %7.2f min %7.2f us CPU/call  (runs, ns: %s)\n' "$lib" "$m" \
			"$(median <"$WORK/$lib-$m.ns" | awk '{print $1/1000}')" "$(sort -n "$WORK/$lib-$m.ns" | awk 'NR == 1 {print $1/1000}')" \
			"$(tr '\n' ' ' <"$WORK/$lib-$m.ns")"
	done
	for m in "${MODES[@]:2}"; do
		awk -v lib="$lib" -v m="$m" -v t="$(median <"$WORK/$lib-$m.ns")" -v b="$(median <"$WORK/$lib-bare-trap.ns")" 'BEGIN {
			printf "%s: %s / bare trap = %.3fx per call\n", lib, m, t/b }'
	done
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"

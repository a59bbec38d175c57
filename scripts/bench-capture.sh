#!/usr/bin/env bash
# bench-capture.sh: cost of tlstap's OpenSSL capture, measured side by side.
#
#   sudo scripts/bench-capture.sh [ROUNDS]
#
# 1. Cost per SSL_write, modes interleaved ROUNDS times (default 5):
#      none        no probes
#      bare-trap   bpftrace counting SSL_write entry+return, nothing else
#      tlstap      full capture (capture/openssl via internal/benchcap)
#    Workload (scripts/bench/ssl_bench.c): a client linked to the system
#    libssl does N SSL_write calls of SIZE bytes over 127.0.0.1 to a server
#    linked statically (its OpenSSL carries no probe), timed until the server
#    has read everything. Only the client's SSL_write is trapped.
# 2. Events/s through the ring with loss counters: a forked client/server
#    pair, both captured (one event per SSL_write and per SSL_read),
#    unpaced and paced to 50,000 events/s.
# 3. A TLS download (forked pair, both sides captured) with and without
#    capture, with RING_SMALL (16 MiB) and RING_BIG (64 MiB, the default) rings.
# Medians are printed with the individual runs.
#
# Needs root, gcc, libssl-dev (libssl.a too), bpftrace, openssl, go.
set -euo pipefail

ROUNDS=${1:-5}
N=${N:-20000}
SIZE=${SIZE:-64}
DOWNLOAD=${DOWNLOAD:-200000000}
RING_SMALL=${RING_SMALL:-16777216}
RING_BIG=${RING_BIG:-67108864} # the default since it lost nothing here
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
BGPID=
SERVEPID=
cleanup() {
	for p in $BGPID $SERVEPID; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

LIB=$(ldconfig -p | awk '$1 == "libssl.so.3" && /x86-64/ {print $NF; exit}')
[[ -n $LIB ]] || { echo "no libssl.so.3 in ldconfig cache" >&2; exit 1; }

gcc -O2 -Wall -o "$WORK/ssl_bench" "$ROOT/scripts/bench/ssl_bench.c" -lssl -lcrypto
gcc -O2 -Wall -o "$WORK/ssl_serve" "$ROOT/scripts/bench/ssl_bench.c" \
	-Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -ldl -pthread
(cd "$ROOT" && go build -o "$WORK/benchcap" ./internal/capture/openssl/internal/benchcap)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 1 2>/dev/null
bench() { "$WORK/ssl_bench" "$WORK/cert.pem" "$WORK/key.pem" "$@"; }

# start_bg OUT READY CMD...: run CMD in the background until READY appears in OUT.
start_bg() {
	local out=$1 ready=$2; shift 2
	# Truncate here, not in the child: the child's redirection may run after
	# the first grep and leave the previous run's READY in the file.
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
# stop_bg ends the background process, with SIGKILL if SIGTERM is not
# enough within 10 s (bpftrace sometimes misses it).
stop_bg() {
	kill -TERM "$BGPID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$BGPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$BGPID" 2>/dev/null || true
	wait "$BGPID" || true
	BGPID=
}

with_mode() { # MODE CMD...: run CMD with MODE's probes attached
	local mode=$1; shift
	case $mode in
	none) "$@" ;;
	bare-trap)
		start_bg "$WORK/bt.out" Attaching bpftrace -e \
			"uprobe:$LIB:SSL_write { @e = count(); } uretprobe:$LIB:SSL_write { @r = count(); }"
		sleep 0.5; "$@"; stop_bg ;;
	tlstap)
		start_bg "$WORK/cap.out" ready "$WORK/benchcap" -lib "$LIB" -ring "${CAP_RING:-0}"
		"$@"; stop_bg; tail -1 "$WORK/cap.out" >>"$WORK/cap.stats" ;;
	esac
}

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$WORK/ssl_serve" "$WORK/cert.pem" "$WORK/key.pem" serve >"$WORK/serve.out" &
SERVEPID=$!
for _ in $(seq 100); do grep -qs port= "$WORK/serve.out" && break; sleep 0.1; done
PORT=$(sed -n 's/port=//p' "$WORK/serve.out")

MODES="none bare-trap tlstap"
echo "# SSL_write cost: $ROUNDS rounds x $N calls of $SIZE bytes, $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	for m in $MODES; do
		with_mode "$m" bench write "$N" "$SIZE" 0 "$PORT" | field ns_per_write >>"$WORK/$m.ns"
	done
done
for m in $MODES; do
	printf '%-10s median %7.2f us/SSL_write  (runs, ns: %s)\n' "$m" \
		"$(median <"$WORK/$m.ns" | awk '{print $1/1000}')" "$(tr '\n' ' ' <"$WORK/$m.ns")"
done
awk -v t="$(median <"$WORK/tlstap.ns")" -v b="$(median <"$WORK/bare-trap.ns")" -v n="$(median <"$WORK/none.ns")" 'BEGIN {
	printf "tlstap over bare trap: %+.1f%% per call; probe cost over none: bare %.2f us, tlstap %.2f us\n",
		(t/b-1)*100, (b-n)/1000, (t-n)/1000 }'
echo "tlstap counters per round:"; cat "$WORK/cap.stats"
: >"$WORK/cap.stats"

echo "# ring: events/s delivered (one event per SSL_write and per SSL_read)"
for rate in 0 25000; do
	label=$([[ $rate == 0 ]] && echo "unpaced" || echo "paced to $((rate * 2)) events/s")
	for r in $(seq "$ROUNDS"); do
		with_mode tlstap bench write $((N * 5)) "$SIZE" "$rate" >/dev/null
	done
	printf '%-28s median %s events/s; lost ring records per round: %s\n' "$label" \
		"$(field events_per_s <"$WORK/cap.stats" | median)" "$(field lost_ring_records <"$WORK/cap.stats" | tr '\n' ' ')"
	: >"$WORK/cap.stats"
done

echo "# TLS download of $DOWNLOAD bytes (64 KiB SSL_write calls, 16 KiB records), both sides captured"
for r in $(seq "$ROUNDS"); do
	with_mode none bench download "$DOWNLOAD" | field download_mb_per_s >>"$WORK/dl-none"
	CAP_RING=$RING_SMALL with_mode tlstap bench download "$DOWNLOAD" | field download_mb_per_s >>"$WORK/dl-tlstap"
	mv "$WORK/cap.stats" "$WORK/cap.default"
	CAP_RING=$RING_BIG with_mode tlstap bench download "$DOWNLOAD" | field download_mb_per_s >>"$WORK/dl-big"
	mv "$WORK/cap.stats" "$WORK/cap.big.$r"
	cat "$WORK/cap.default" >>"$WORK/cap.default.all"
done
cat "$WORK"/cap.big.* >"$WORK/cap.big.all"
printf 'none                 median %6s MB/s  (runs: %s)\n' "$(median <"$WORK/dl-none")" "$(tr '\n' ' ' <"$WORK/dl-none")"
printf 'tlstap, %d MiB ring  median %6s MB/s  (runs: %s); lost ring bytes per run: %s\n' $((RING_SMALL >> 20)) \
	"$(median <"$WORK/dl-tlstap")" "$(tr '\n' ' ' <"$WORK/dl-tlstap")" "$(field lost_ring_bytes <"$WORK/cap.default.all" | tr '\n' ' ')"
printf 'tlstap, %d MiB ring  median %6s MB/s  (runs: %s); lost ring bytes per run: %s\n' $((RING_BIG >> 20)) \
	"$(median <"$WORK/dl-big")" "$(tr '\n' ' ' <"$WORK/dl-big")" "$(field lost_ring_bytes <"$WORK/cap.big.all" | tr '\n' ' ')"

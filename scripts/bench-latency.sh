#!/usr/bin/env bash
# bench-latency.sh: how long an event takes from its capture timestamp to
# tlstap's stdout and to a stream client, against a baseline build of
# tlstap measured in the same run (internal/bench/latency).
#
#   sudo scripts/bench-latency.sh [BASELINE_REV]
#
# BASELINE_REV (default 3f83191, the last commit before adaptive ring
# wake-ups and write-at-entry) is built from git next to the working tree's
# tlstap. Then, for each tool in turn, RUNS times (default 3):
#   - single requests: SINGLE curls (default 20) per protocol, HTTP/1.1 and
#     HTTP/2, against a private nginx, one at a time;
#   - load: h2load -n LOAD (default 20000) -c 10 -t 1, HTTP/1.1 and HTTP/2:
#     req/s, tool CPU time, latency percentiles;
#   - idle (first run only): tool CPU time over IDLE (default 60s).
# The traffic runs as nobody and tlstap captures only that uid. ALSO (e.g.
# ALSO=--realtime=false) measures the working tree's tlstap a second time
# with those flags, as a third tool in the same runs. The bench reads both
# outputs on real-time threads with blocking reads, times each line or
# message by the read that delivered it and parses it later, off those
# threads (OBSERVER=normal: the reader before session 7, whose own wake-up
# on busy CPUs took up to ~9 ms).
#
# Needs root, go, git, nginx, curl, h2load (nghttp2-client), openssl.
set -euo pipefail

BASE=${1:-3f83191}
RUNS=${RUNS:-3}
SINGLE=${SINGLE:-20}
LOAD=${LOAD:-20000}
IDLE=${IDLE:-60s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir "$WORK/base"
git -C "$ROOT" archive "$BASE" | tar -x -C "$WORK/base"
(cd "$WORK/base" && go build -buildvcs=false -o "$WORK/tlstap-base" ./cmd/tlstap)
(cd "$ROOT" && go build -o "$WORK/tlstap" ./cmd/tlstap && go build -o "$WORK/latency" ./internal/bench/latency)

echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$WORK/latency" -tlstap "$WORK/tlstap" -baseline "$WORK/tlstap-base" \
	-runs "$RUNS" -single "$SINGLE" -load "$LOAD" -idle "$IDLE" \
	-observer "${OBSERVER:-rt}" ${ALSO:+-also "$ALSO"} ${RAW:+-raw "$RAW"}
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

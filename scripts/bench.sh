#!/usr/bin/env bash
# Runs every Go benchmark of tlstap on one core, COUNT times (default 6, the fewest benchstat gives a confidence interval for),
# interleaved package by package, and prints benchstat's medians. The
# figures in docs/benchmarks.md come from this script (and, for capture
# overhead, scripts/bench-capture.sh, which needs root and bpftrace).
#
#   scripts/bench.sh [COUNT] > bench.txt
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-6}
gobin=$(go env GOPATH)/bin
[[ -x $gobin/benchstat ]] || go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
out=$(mktemp)
pkgs=(./internal/pipeline ./internal/api ./internal/decoder/http1 ./internal/decoder/http2 ./internal/decoder/websocket ./internal/decoder/session ./internal/server ./internal/sink ./internal/forward ./internal/capture/openssl)
for i in $(seq "$count"); do
	for p in "${pkgs[@]}"; do
		go test -run '^$' -bench . -benchmem -cpu 1 -count 1 "$p" | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >>"$out"
	done
done
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
"$gobin/benchstat" "$out"

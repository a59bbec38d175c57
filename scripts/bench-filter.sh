#!/usr/bin/env bash
# Per-event filter cost, before the one filter model (bfe4d6a) and now:
# server.BenchmarkQueryMatch (the stream query's older parameters) and
# forward.BenchmarkFilterMatch (--forward-filter), each built into a test
# binary from both trees and run alternately, one CPU, PAIRS pairs;
# prints the medians and their ratio (docs/benchmarks.md, "Filter model").
#
#   scripts/bench-filter.sh [PAIRS]      (default 21)
set -euo pipefail
pairs=${1:-21}
base=${BASE:-bfe4d6a}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git -C "$root" worktree add --detach "$work/old" "$base" >/dev/null 2>&1
# The old tree had BenchmarkFilterMatch but not BenchmarkQueryMatch: give
# it the same benchmark code, taken from today's query_test.go.
{
	printf 'package server\n\nimport (\n\t"net/url"\n\t"testing"\n\n\teventpb "github.com/tlstap/tlstap/proto/gen/go/event"\n)\n\n'
	sed -n '/^\/\/ BenchmarkQueryMatch/,/^}/p' "$root/internal/server/query_test.go"
} >"$work/old/internal/server/query_bench_test.go"

for tree in old new; do
	dir=$work/old
	[[ $tree == new ]] && dir=$root
	(cd "$dir" && nice -n 19 go test -c -o "$work/$tree-server.test" ./internal/server &&
		nice -n 19 go test -c -o "$work/$tree-forward.test" ./internal/forward)
done

run() { # bench pkg
	for _ in $(seq "$pairs"); do
		for tree in old new; do
			printf '%s ' "$tree"
			"$work/$tree-$2.test" -test.run '^$' -test.bench "^Benchmark$1\$" -test.benchtime 300ms -test.cpu 1 |
				awk '/^Benchmark/ {print $3}'
		done
	done | python3 -c '
import statistics, sys
d = {"old": [], "new": []}
for line in sys.stdin:
    tree, ns = line.split()
    d[tree].append(float(ns))
o, n = statistics.median(d["old"]), statistics.median(d["new"])
pairs = sorted(b / a for a, b in zip(d["old"], d["new"]))
print(f"'"$1"': old {o:.1f} ns, new {n:.1f} ns, new/old {n / o:.2f} (median of pair ratios {statistics.median(pairs):.2f}, {len(pairs)} pairs)")
'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run QueryMatch server
run FilterMatch forward
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

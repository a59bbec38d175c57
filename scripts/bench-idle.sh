#!/usr/bin/env bash
# bench-idle.sh: CPU time of an idle `tlstap tls` while other programs
# start, against a baseline build measured in the same run (issue 19).
#
#   scripts/bench-idle.sh [BASELINE_REV]
#
# BASELINE_REV (default main) is built from git next to the working tree's
# tlstap. Then RUNS times (default 3), baseline and tlstap in turn, each
# started as bench-latency.sh starts it but capturing only uid 64999, which
# no user has (so no one's traffic is captured: others may be running
# traffic as nobody), and left to settle for 5 s:
#   - quiet: its CPU time over IDLE seconds (default 40) with no load of
#     this script's (whatever else runs on the machine keeps running);
#   - execs: its CPU time over IDLE seconds while one process starts
#     EXECS programs a second (default 50, /bin/true: a program every
#     process on the machine has mapped already, as in a build).
# Prints each measurement, then the medians and the ratio to the baseline.
#
# Needs root, go, git, python3.
set -euo pipefail

BASE=${1:-main}
RUNS=${RUNS:-3}
IDLE=${IDLE:-40}
EXECS=${EXECS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PID=
cleanup() {
	if [[ -n $PID ]]; then kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir "$WORK/base"
git -C "$ROOT" archive "$BASE" | tar -x -C "$WORK/base"
(cd "$WORK/base" && go build -buildvcs=false -o "$WORK/tlstap-base" ./cmd/tlstap)
(cd "$ROOT" && go build -o "$WORK/tlstap" ./cmd/tlstap)

# cpu PID: utime+stime in clock ticks (1/100 s).
cpu() {
	local s
	s=$(cat "/proc/$1/stat")
	s=${s##*) }
	awk '{print $12 + $13}' <<<"$s"
}

# start BIN: runs tlstap tls in the background, sets PID once it serves.
start() {
	local port=$((20000 + RANDOM % 20000))
	rm -rf "$WORK/state"
	"$1" tls --uid 64999 -o json --listen "127.0.0.1:$port" --tls=false --auth none \
		--state-dir "$WORK/state" --log-level warn >/dev/null 2>"$WORK/stderr" &
	PID=$!
	for _ in $(seq 300); do
		if grep -q "serving events" "$WORK/stderr"; then return; fi
		if ! kill -0 "$PID" 2>/dev/null; then cat "$WORK/stderr" >&2; exit 1; fi
		sleep 0.1
	done
	echo "tlstap did not start" >&2
	cat "$WORK/stderr" >&2
	exit 1
}

stop() {
	kill -INT "$PID"
	wait "$PID" || true
	PID=
}

execs() {
	/usr/bin/python3 - "$EXECS" "$IDLE" <<'EOF'
import subprocess, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
n = 0
while (now := time.monotonic()) < start + secs:
    due = start + n / rate
    if now < due:
        time.sleep(due - now)
        continue
    subprocess.run(["/bin/true"])
    n += 1
print(n)
EOF
}

echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -A quiet busy
for run in $(seq "$RUNS"); do
	for tool in baseline tlstap; do
		bin=$WORK/tlstap
		[[ $tool == baseline ]] && bin=$WORK/tlstap-base
		start "$bin"
		sleep 5
		c0=$(cpu "$PID")
		sleep "$IDLE"
		c1=$(cpu "$PID")
		n=$(execs)
		c2=$(cpu "$PID")
		stop
		quiet[$tool]+="$((c1 - c0)) "
		busy[$tool]+="$((c2 - c1)) "
		echo "run $run $tool: quiet $((c1 - c0))0 ms, with $n execs $((c2 - c1))0 ms (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| tool | quiet ${IDLE} s: CPU ms (% core) | ${EXECS} execs/s for ${IDLE} s: CPU ms (% core) |"
echo "|---|---|---|"
for tool in baseline tlstap; do
	q=$(median "${quiet[$tool]}")
	b=$(median "${busy[$tool]}")
	awk -v t="$tool" -v q="$q" -v b="$b" -v s="$IDLE" \
		'BEGIN {printf "| %s | %d (%.2f %%) | %d (%.2f %%) |\n", t, q*10, q/s, b*10, b/s}'
done
qb=$(median "${quiet[baseline]}") qt=$(median "${quiet[tlstap]}")
bb=$(median "${busy[baseline]}") bt=$(median "${busy[tlstap]}")
awk -v qb="$qb" -v qt="$qt" -v bb="$bb" -v bt="$bt" \
	'BEGIN {printf "\nratio tlstap/baseline (medians of '"$RUNS"'): quiet %s, execs %s\n", (qb ? sprintf("%.2f", qt/qb) : "n/a"), (bb ? sprintf("%.2f", bt/bb) : "n/a")}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

#!/usr/bin/env bash
# bench-memory.sh: tlstap's memory while a large download streams through
# the decoders (issue 18: parts are emitted and forgotten, so memory stays
# flat whatever the body's size).
#
#   sudo scripts/bench-memory.sh
#
# Builds the working tree's tlstap, starts a private nginx on 127.0.0.1
# serving a SMALL (default 1 MB, the baseline) and a BIG (default 100 MB)
# file over TLS, then RUNS times (default 3), interleaved: a fresh
# `tlstap tls --uid 65534 -o json` (stdout to /dev/null) captures curl,
# run as nobody, downloading one file over HTTP/1.1 and then over HTTP/2.
# For each download it prints the tool's peak RSS (VmHWM, exact), its
# peak Go heap in use (go_memstats_heap_inuse_bytes from /metrics,
# sampled every 100 ms), the events it emitted and the plaintext bytes the
# kernel could not hand over (ring full: a loaded machine starves the
# reader; lost bytes become gaps, and the decoders resynchronise), then
# the medians.
#
# BASE=<git revision> also builds that revision of tlstap and runs it
# interleaved with the working tree's (column "tree": base or work), for a
# baseline measured in the same run.
#
# Needs root, go, nginx, curl (with HTTP/2), openssl.
set -euo pipefail

RUNS=${RUNS:-3}
SMALL=${SMALL:-1000000}
BIG=${BIG:-100000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
NGX_PID=
cleanup() {
	[ -n "$NGX_PID" ] && kill "$NGX_PID" 2>/dev/null && wait "$NGX_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$WORK/tlstap-work" ./cmd/tlstap)
TREES=work
if [ -n "${BASE:-}" ]; then
	mkdir "$WORK/base"
	(cd "$ROOT" && git archive "$BASE" | tar -x -C "$WORK/base")
	(cd "$WORK/base" && go build -o "$WORK/tlstap-base" ./cmd/tlstap)
	TREES="base work"
fi
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/tmp"
chmod 777 "$WORK/www" "$WORK/tmp"
head -c "$SMALL" /dev/urandom >"$WORK/www/small.bin"
head -c "$BIG" /dev/urandom >"$WORK/www/big.bin"
chmod 644 "$WORK"/www/*
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
NGX_PORT=$(port)
cat >"$WORK/nginx.conf" <<CONF
daemon off; master_process off; pid $WORK/tmp/nginx.pid; error_log stderr warn;
events { worker_connections 64; }
http {
	access_log off; sendfile off;
	client_body_temp_path $WORK/tmp/body; proxy_temp_path $WORK/tmp/proxy; fastcgi_temp_path $WORK/tmp/fastcgi;
	uwsgi_temp_path $WORK/tmp/uwsgi; scgi_temp_path $WORK/tmp/scgi;
	server { listen 127.0.0.1:$NGX_PORT ssl http2; ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem; root $WORK/www; }
}
CONF
setpriv --reuid=65534 --regid=65534 --clear-groups nginx -p "$WORK" -c "$WORK/nginx.conf" -e stderr &
NGX_PID=$!
for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$NGX_PORT/small.bin" && break; sleep 0.1; done

metric() { # metric API NAME: sum of a /metrics series
	curl -s "http://$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f", s }'
}

# one TREE FILE PROTO: prints "tree file proto rss_kib heap_kib events lost_bytes"
one() {
	local api tl sampler peak=0 h tree=$1
	shift
	api=127.0.0.1:$(port)
	"$WORK/tlstap-$tree" tls --uid 65534 -o json --listen "$api" --tls=false --auth none \
		--state-dir "$WORK/state" --log-level warn >/dev/null 2>"$WORK/tlstap.err" &
	tl=$!
	for _ in $(seq 300); do curl -s -o /dev/null "http://$api/api/v1/status" && break; sleep 0.1; done
	sleep 1
	(
		while kill -0 "$tl" 2>/dev/null; do
			h=$(metric "$api" go_memstats_heap_inuse_bytes)
			[ "${h:-0}" -gt "$peak" ] && peak=$h && echo "$peak" >"$WORK/heap"
			sleep 0.1
		done
	) &
	sampler=$!
	setpriv --reuid=65534 --regid=65534 --clear-groups curl -sSk "$2" -o /dev/null "https://127.0.0.1:$NGX_PORT/$1"
	sleep 1 # the last parts reach the output
	local events rss lost
	events=$(metric "$api" tlstap_events_total)
	lost=$(curl -s "http://$api/metrics" | awk 'index($1, "tlstap_drops_total{") == 1 && index($1, "capture_lost_bytes") { s += $2 } END { printf "%.0f", s }')
	rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$tl/status")
	kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
	kill -INT "$tl"; wait "$tl" || true
	echo "$tree $1 $2 $rss $(($(cat "$WORK/heap" 2>/dev/null || echo 0) / 1024)) $events $lost"
	rm -f "$WORK/heap"
}

echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "tree file proto peak_rss_kib peak_heap_kib events lost_bytes"
for _ in $(seq "$RUNS"); do
	for f in small.bin big.bin; do
		for p in --http1.1 --http2; do
			for t in $TREES; do
				one "$t" "$f" "$p"
			done
		done
	done
done | tee "$WORK/results"
echo
echo "medians of $RUNS runs:"
sort -k1,3 "$WORK/results" | awk -v runs="$RUNS" '
	{ k = $1 " " $2 " " $3; n[k]++; rss[k, n[k]] = $4; heap[k, n[k]] = $5; ev[k, n[k]] = $6; lost[k, n[k]] = $7 }
	function med(a, k, c,   i, j, t, v) {
		for (i = 1; i <= c; i++) v[i] = a[k, i]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return v[int((c + 1) / 2)]
	}
	END { for (k in n) printf "%s peak RSS %.1f MiB, peak heap %.1f MiB, events %d, lost bytes %d\n", k, med(rss, k, n[k]) / 1024, med(heap, k, n[k]) / 1024, med(ev, k, n[k]), med(lost, k, n[k]) }' | sort
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

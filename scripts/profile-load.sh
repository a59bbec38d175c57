#!/usr/bin/env bash
# profile-load.sh: one h2load run against nginx with a live tlstap
# attached, for profiling tlstap under load (docs/benchmarks.md, issue 19,
# session 5). The setup is bench-latency.sh's: nginx serves a 256-byte file
# over TLS as nobody, tlstap captures only nobody (--uid 65534 -o json), its
# standard output goes to a reader (wc -l) and one stream client
# (tlstap watch) is connected.
#
#   scripts/profile-load.sh TLSTAP h1|h2 [stat|perf|strace] [REQUESTS]
#
# Prints h2load's req/s, tlstap's CPU ticks (1/100 s) during the run, its
# voluntary and involuntary context switches (all threads) before and
# after, and the lines seen on stdout and by the stream client. perf:
# `perf record -g -p` of tlstap during the run, left in perf.data of the
# printed directory; strace: `strace -c -f -p` (slows tlstap down: for
# system call counts only).
#
# Needs root, nginx, curl, h2load (nghttp2-client), openssl, perf/strace.
set -euo pipefail

BIN=$1 P=$2 MODE=${3:-stat} N=${4:-20000}
D=$(mktemp -d /tmp/tlstap-profile-load.XXXXXX)
chmod 755 "$D"
mkdir -p "$D/ngx/www" "$D/ngx/tmp"
chmod 777 "$D/ngx" "$D/ngx/www" "$D/ngx/tmp"
printf 'latency\n%.0s' {1..32} >"$D/ngx/www/f.txt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-keyout "$D/ngx/key.pem" -out "$D/ngx/cert.pem" 2>/dev/null
chmod 644 "$D/ngx/key.pem"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPORT=$(port) TPORT=$(port)
cat >"$D/ngx/nginx.conf" <<CONF
daemon off;
master_process off;
pid $D/ngx/tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $D/ngx/tmp/body;
	proxy_temp_path $D/ngx/tmp/proxy;
	fastcgi_temp_path $D/ngx/tmp/fastcgi;
	uwsgi_temp_path $D/ngx/tmp/uwsgi;
	scgi_temp_path $D/ngx/tmp/scgi;
	sendfile off;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NPORT ssl http2;
		ssl_certificate $D/ngx/cert.pem;
		ssl_certificate_key $D/ngx/key.pem;
		root $D/ngx/www;
	}
}
CONF
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
URL=https://127.0.0.1:$NPORT/f.txt

"${NOBODY[@]}" nginx -p "$D/ngx" -c "$D/ngx/nginx.conf" -e stderr 2>"$D/nginx.err" &
NGX=$!
mkfifo "$D/out"
wc -l <"$D/out" >"$D/lines" &
WC=$!
"$BIN" tls --uid 65534 -o json --listen 127.0.0.1:$TPORT --tls=false --auth none --state-dir "$D/state" \
	--log-level warn --client-queue 1000000 >"$D/out" 2>"$D/tlstap.err" &
TL=$!
for _ in $(seq 150); do curl -s -o /dev/null http://127.0.0.1:$TPORT/api/v1/status && break; sleep 0.2; done
"$BIN" watch ws://127.0.0.1:$TPORT/ws --json --no-reconnect >"$D/watch.out" 2>"$D/watch.err" &
WA=$!
sleep 1
for _ in 1 2 3; do "${NOBODY[@]}" curl -sk -o /dev/null "$URL"; done
sleep 1

H=()
[ "$P" = h1 ] && H=(--h1)
ctx() { cat /proc/$TL/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/{v+=$2}/^nonvoluntary/{n+=$2}END{print v "/" n}'; }
cpu() { awk '{print $14+$15}' /proc/$TL/stat; }
c0=$(cpu) x0=$(ctx) PF=
case $MODE in
perf) perf record -g -o "$D/perf.data" -p $TL 2>"$D/perf.err" & PF=$! ;;
strace) strace -c -f -p $TL -o "$D/strace.txt" & PF=$!; sleep 1 ;;
esac
"${NOBODY[@]}" h2load -n "$N" -c 10 -t 1 "${H[@]}" "$URL" >"$D/h2load.txt" 2>&1
sleep 1
if [ -n "$PF" ]; then kill -INT $PF; wait $PF || true; fi
c1=$(cpu) x1=$(ctx)
kill -INT $WA $TL
wait $TL || true
wait $WC || true
kill -QUIT $NGX
wait $NGX || true
rps=$(grep -o 'finished in [^,]*, [0-9.]* req/s' "$D/h2load.txt" | awk '{print $(NF-1)}')
echo "$P req/s=$rps cpu_ticks=$((c1 - c0)) ctx_vol/invol=$x0->$x1 stdout_lines=$(cat "$D/lines") stream_lines=$(wc -l <"$D/watch.out") load=$(cut -d' ' -f1-3 /proc/loadavg) dir=$D"

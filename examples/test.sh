#!/usr/bin/env bash
# Runs the Python, Node and Go examples against a live `tlstap demo` and
# checks that each prints requests the demo recording is known to contain.
#
#   examples/test.sh [path/to/tlstap]     (default: go build ./cmd/tlstap)
#
# Environment:
#   TLSTAP_STATE_DIR   the server's state directory, where it keeps its token
#                      and certificate (default /var/lib/tlstap as root)
#   TLSTAP_URL         stream URL (default wss://127.0.0.1:28256/ws)
#   TLSTAP_DEMO_ARGS   extra arguments for `tlstap demo`
#   PYTHON             interpreter with websocket-client and protobuf
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d)
demo_pid=
cleanup() {
	if [[ -n $demo_pid ]]; then
		kill "$demo_pid" 2>/dev/null || true
		wait "$demo_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if [[ $# -ge 1 ]]; then
	tlstap=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
else
	echo "building tlstap"
	(cd "$root" && go build -o "$work/tlstap" ./cmd/tlstap)
	tlstap=$work/tlstap
fi
state=${TLSTAP_STATE_DIR:-/var/lib/tlstap}
url=${TLSTAP_URL:-wss://127.0.0.1:28256/ws}

python=${PYTHON:-}
if [[ -z $python ]]; then
	for cand in python3 /usr/bin/python3; do
		if "$cand" -c 'import websocket, google.protobuf' 2>/dev/null; then
			python=$cand
			break
		fi
	done
fi
[[ -n $python ]] || { echo "no python3 with websocket-client and protobuf (apt-get install python3-websocket python3-protobuf)" >&2; exit 1; }

if [[ ! -d $here/node/node_modules/ws ]]; then
	echo "installing node dependencies"
	(cd "$here/node" && npm ci --no-audit --no-fund >/dev/null)
fi
echo "building the Go example"
(cd "$root" && go build -o "$work/watch-go" ./examples/go)

# shellcheck disable=SC2086 # TLSTAP_DEMO_ARGS is a list of words
"$tlstap" demo --loop -o none ${TLSTAP_DEMO_ARGS:-} >"$work/demo.log" 2>&1 &
demo_pid=$!

hostport=${url#wss://}
hostport=${hostport%%/*}
ready=
for _ in $(seq 300); do
	if ! kill -0 "$demo_pid" 2>/dev/null; then
		echo "tlstap demo exited:" >&2
		cat "$work/demo.log" >&2
		exit 1
	fi
	if [[ -s $state/token ]] && "$python" - "$hostport" <<'PY' 2>/dev/null; then
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
PY
		ready=1
		break
	fi
	sleep 0.1
done
[[ -n $ready ]] || { echo "tlstap demo did not start listening on $hostport" >&2; cat "$work/demo.log" >&2; exit 1; }

# The fingerprint as the server logged it, else computed from its certificate.
fp=$(grep -o 'sha256=[0-9A-Fa-f:]*' "$work/demo.log" | head -1 | cut -d= -f2 || true)
if [[ -z $fp ]]; then
	fp=$("$python" - "$state/server.crt" <<'PY'
import hashlib, ssl, sys
print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())).hexdigest())
PY
)
fi

passed=0
failed=0
# check NAME EXPECTED... -- COMMAND...: COMMAND's output must contain every EXPECTED line.
check() {
	local name=$1
	shift
	local want=()
	while [[ $1 != -- ]]; do
		want+=("$1")
		shift
	done
	shift
	local out rc=0
	out=$("$@" --url "$url" --token-file "$state/token" --fingerprint "$fp" --replay --no-logs --timeout 60 2>"$work/err") || rc=$?
	if [[ $rc -ne 0 ]]; then
		echo "FAIL $name: exit status $rc"
		cat "$work/err"
		failed=$((failed + 1))
		return
	fi
	for w in "${want[@]}"; do
		if ! grep -qF -- "$w" <<<"$out"; then
			echo "FAIL $name: no line containing '$w' in:"
			echo "$out"
			failed=$((failed + 1))
			return
		fi
	done
	echo "ok   $name"
	passed=$((passed + 1))
}

declare -A clients=(
	[python]="$python $here/python/watch.py"
	[node]="node $here/node/watch.js"
	[go]="$work/watch-go"
)
for lang in python node go; do
	# shellcheck disable=SC2206 # split the command line into words
	cmd=(${clients[$lang]})
	check "$lang: HTTP/1.1 requests to shop.example.com" \
		'GET /api/products HTTP/1.1' 'POST /api/login HTTP/1.1' 'host=shop.example.com' -- \
		"${cmd[@]}" --host shop.example.com --type http1-request --count 5
	check "$lang: HTTP/2 requests to api.example.com" \
		'HTTP/2' 'host=api.example.com' -- \
		"${cmd[@]}" --host api.example.com --type http2-request --count 1
	check "$lang: responses paired with their requests" \
		'http1-response' 'status=200' 'request=#' -- \
		"${cmd[@]}" --type http1-response --host shop.example.com --count 2
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

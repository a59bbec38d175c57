#!/usr/bin/env bash
# Installs what tlstap's tests use, idempotently and quietly: Debian
# packages (real TLS peers and tools) and the Node example's npm packages.
# Run as root on Debian. Go tools are not installed: go.mod's tool block
# pins bpf2go, protoc-gen-go and staticcheck, proto/tools.mod pins buf
# (kept apart so its many dependencies do not touch tlstap's build), and
# scripts run them with `go tool`.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(
	curl openssl libssl3 libssl-dev gcc ca-certificates  # TLS peers, the libssl we probe, a static libssl for tests
	nginx nghttp2-client                  # HTTP/2 + TLS server and client
	python3 python3-websocket python3-protobuf  # Python example client
	mitmproxy                             # stand-in for Burp Suite
	protobuf-compiler                     # protoc built-ins for Python bindings
	nodejs npm                            # Node example client
	jq                                    # README examples
	tshark                                # dissects the --pcapng files in tests
	chromium                              # a web page must not read the eCaptureQ listener
	golang-1.19-go                        # Go capture tests: programs built by Go 1.19
	gnutls-bin wget git                   # GnuTLS programs the capture tests run
	libnss3-tools iproute2                # NSS programs (tstclnt, selfserv, certutil); a network namespace for selfserv
)
missing=()
for p in "${apt_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node and npm may come from outside Debian on some machines; keep those.
if command -v node >/dev/null && command -v npm >/dev/null; then
	missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
	echo "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# wireshark-common asks whether non-root users may capture: no.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx from Debian starts a system instance on port 80; tests run their own.
systemctl disable --now nginx >/dev/null 2>&1 || true

if [[ ! -d examples/node/node_modules/ws ]]; then
	echo "installing npm packages for examples/node"
	(cd examples/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

if [[ ! -d internal/exporttest/validator/node_modules/har-validator ]]; then
	echo "installing the HAR validator for output tests"
	(cd internal/exporttest/validator && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

#!/usr/bin/env bash
# Runs `go test ./...` as an unprivileged user, to check what an
# unprivileged developer sees: the suite passes, every test that needs root
# skips saying why (testenv.RequireRoot), and nothing else skips. Run it as
# root; extra arguments go to go test (e.g. -run, -p 1).
#
# The user (TLSTAP_TEST_USER, default tlstaptest) is created if missing. It
# gets a copy of this tree (tracked and untracked files and the npm packages
# install-deps.sh installed, not other ignored files) and of root's module
# cache, and runs offline (GOPROXY=off) with its own
# build cache, so nothing of root's is written to.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $EUID -eq 0 ]] || { echo "run as root: it creates and switches to an unprivileged user"; exit 1; }

user=${TLSTAP_TEST_USER:-tlstaptest}
id "$user" >/dev/null 2>&1 || useradd -m "$user"
home=$(getent passwd "$user" | cut -d: -f6)
[[ -n $home && $home != / ]] || { echo "user $user has no home directory"; exit 1; }

# The tree, fresh each run.
src=$home/tlstap
rm -rf "$src"
mkdir -p "$src"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$src"
# What install-deps.sh put into the tree (git ignores it): npm packages.
find . -name node_modules -type d -prune -print0 | tar --null -T - -cf - | tar -xf - -C "$src"
chown -R "$user": "$src"

# Root's module cache, updated in place: the user cannot read /root.
go mod download
mkdir -p "$home/go/pkg/mod"
cp -a -u "$(go env GOMODCACHE)/." "$home/go/pkg/mod/"
chown -R "$user": "$home/go"

cd "$src"
runuser -u "$user" -- env -i \
	PATH="$(dirname "$(command -v go)"):/usr/local/bin:/usr/bin:/bin" \
	HOME="$home" GOPATH="$home/go" GOCACHE="$home/.cache/go-build" \
	GOFLAGS=-buildvcs=false GOPROXY=off GOTOOLCHAIN=local \
	go test -count=1 -json "$@" ./... | python3 scripts/gotest-report.py

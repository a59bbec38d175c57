#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root: the eBPF tests capture for
# real and must not be skipped). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:$(go env GOPATH)/bin

bash scripts/install-deps.sh

echo "== static checks"
unformatted=$(gofmt -l $(git ls-files '*.go'))
[[ -z $unformatted ]] || { echo "gofmt needed: $unformatted"; exit 1; }
go vet ./...
staticcheck ./...
(cd proto && buf lint)
(cd proto && buf generate)
git diff --exit-code -- proto/gen || { echo "generated protobuf code is stale: run 'cd proto && buf generate'"; exit 1; }
[[ -z $(git status --porcelain -- proto/gen) ]] || { echo "buf generate created untracked files"; git status --porcelain -- proto/gen; exit 1; }

echo "== short fuzz runs"
fuzztime=${FUZZTIME:-4s}
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/dev/null ||
			{ echo "fuzz $pkg $target failed"; go test -run "^${target}\$" "$pkg"; exit 1; }
		echo "fuzz ok $pkg $target"
	done
done

echo "== examples against tlstap demo"
go build -o /tmp/tlstap-ci ./cmd/tlstap
bash examples/test.sh /tmp/tlstap-ci

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

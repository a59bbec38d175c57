#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root: the eBPF tests capture for
# real and must not be skipped). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== static checks"
unformatted=$(gofmt -l $(git ls-files '*.go'))
[[ -z $unformatted ]] || { echo "gofmt needed: $unformatted"; exit 1; }
go vet ./...
go tool staticcheck ./...
buf() { (cd proto && go tool -modfile=tools.mod buf "$@"); }
buf lint
buf generate
git diff --exit-code -- proto/gen || { echo "generated protobuf code is stale: run 'cd proto && go tool -modfile=tools.mod buf generate'"; exit 1; }
[[ -z $(git status --porcelain -- proto/gen) ]] || { echo "buf generate created untracked files"; git status --porcelain -- proto/gen; exit 1; }

echo "== short fuzz runs"
# A crash the fuzzer finds is written to testdata/fuzz/ and then fails the
# plain test run of the target, which is what decides. The budget is a
# number of executions, not a duration: Go 1.26's fuzz coordinator can
# report "context deadline exceeded" as a failure when a duration runs out
# (go.dev/issue/75804, fixed in Go 1.27), with no failing input and no slow
# one. Should the engine still fail without a crasher, that is reported but
# is not a test failure.
fuzztime=${FUZZTIME:-10000x}
fuzzlog=$(mktemp)
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" >"$fuzzlog" 2>&1; then
			echo "fuzz ok $pkg $target"
			continue
		fi
		tail -n 20 "$fuzzlog"
		go test -count=1 -run "^${target}\$" "$pkg" || { echo "fuzz $pkg $target: failing input found (see testdata/fuzz)"; exit 1; }
		echo "fuzz $pkg $target: fuzzing engine failed without a failing input (above); corpus still passes"
	done
done
rm -f "$fuzzlog"

echo "== examples against tlstap demo"
go build -o /tmp/tlstap-ci ./cmd/tlstap
bash examples/test.sh /tmp/tlstap-ci

echo "== go test -race"
# As root nothing may skip: the only skips are testenv.RequireRoot's, for
# unprivileged users, and a skipped eBPF test is a test that did not run.
# The report lists every skipped test; as root any skip fails the run.
report=(python3 scripts/gotest-report.py)
[[ $EUID -eq 0 ]] && report+=(--no-skips)
go test -race -count=1 -timeout 20m -json ./... | "${report[@]}"

echo "== Kubernetes manifests (their own module: the main one does not depend on the Kubernetes API)"
(cd deploy/kubernetes && go vet ./... && go test -count=1 ./...)

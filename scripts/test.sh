#!/usr/bin/env bash
# Runs everything CI runs: generated-code check, formatting, vet, cross-
# builds for darwin and windows, and the whole test suite under the race
# detector. Installs what it needs (buf and the protoc plugins, built as
# Go modules) idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== generated code is up to date"
scripts/genproto.sh --check

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

# Every platform raygo supports builds (linux, darwin, windows), and vet
# checks darwin's files, tests included. Cross-compiling needs no cgo.
# Vet first: it compiles darwin/arm64's dependencies, so that build is
# then nearly free. The cross-builds run beside the race tests (which
# spend much of their time waiting on processes); their output is shown,
# and their failure fails the run, at the end.
cross_log=$(mktemp)
trap 'rm -f "$cross_log"' EXIT
(
  set -e
  CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 go vet ./...
  for target in darwin/arm64 darwin/amd64 windows/amd64; do
    CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go build ./...
  done
) >"$cross_log" 2>&1 &
cross_pid=$!

# The ray package's tests take the longest (a minute and a half on two
# cores: they start clusters, nodes and drivers as processes); go test
# starts packages in the order given, so naming it first runs it beside
# all the others instead of after them.
echo "== go test -race"
test_status=0
# -vet=off: go vet ./... ran above (with every analyzer, not go test's
# subset), so the test build does not vet each package again.
go test -race -count=1 -vet=off -timeout 25m ./ray ./... || test_status=$?

echo "== cross-build: go vet for darwin/arm64; build darwin/arm64, darwin/amd64, windows/amd64"
cross_status=0
wait "$cross_pid" || cross_status=$?
cat "$cross_log"
if [ "$cross_status" -ne 0 ]; then
  echo "cross-build failed"
fi
if [ "$test_status" -ne 0 ] || [ "$cross_status" -ne 0 ]; then
  exit 1
fi

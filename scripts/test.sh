#!/usr/bin/env bash
# Runs everything CI runs: generated-code check, formatting, vet, cross-
# builds for darwin and windows, and the whole test suite under the race
# detector. Installs what it needs (buf and the protoc plugins, built as
# Go modules; redis-server, prometheus and chromium, Debian's packages;
# the npm packages of the MCP tests) idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

# Redis (Debian's redis-server) for the control store's Redis storage
# tests, which start their own servers; installed once, and its absence
# then fails those tests instead of skipping them.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (apt-get install -y redis-server)"
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y redis-server >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null 2>&1 && $sudo apt-get install -y redis-server >/dev/null 2>&1; } ||
    { echo "could not install redis-server: the storage tests need it"; exit 1; }
fi
export RAYGO_TEST_REQUIRE_REDIS=1

# Prometheus (Debian's package) for the metrics test that scrapes a real
# cluster, and Chromium for the dashboard's browser tests; installed once,
# and their absence then fails those tests instead of skipping them.
echo "== prometheus and chromium"
scripts/ensure-prometheus.sh
scripts/ensure-chromium.sh
export RAYGO_REQUIRE_PROMETHEUS=1 RAYGO_REQUIRE_CHROMIUM=1

# The npm MCP clients and servers (the TypeScript SDK, the Inspector's CLI,
# server-memory and server-everything, pinned) for the MCP tests
# (internal/mcptest); installed once into a cache directory, and their
# absence then fails those tests instead of skipping them.
echo "== npm MCP packages"
export RAYGO_MCP_NPM_DIR=${RAYGO_MCP_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/raygo/mcp-npm}
scripts/ensure-mcp-npm.sh
export RAYGO_REQUIRE_MCP_NPM=1

echo "== generated code is up to date"
scripts/genproto.sh --check

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

# Beside the race tests (which spend much of their time waiting on
# processes), and reported at the end: go vet with every analyzer (go
# test's own vet, a subset, is off below), and every platform raygo
# supports building (linux, darwin, windows). Vet type-checks darwin's and
# windows' files, tests included; the builds then cost little (vet
# compiled their packages). No file is specific to a CPU architecture, so
# darwin/arm64 stands for darwin/amd64 too. Cross-compiling needs no cgo.
cross_log=$(mktemp)
trap 'rm -f "$cross_log"' EXIT
(
  set -e
  echo "-- go vet (linux)"
  go vet ./...
  for target in darwin/arm64 windows/amd64; do
    echo "-- $target"
    CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go vet ./...
    CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go build ./...
  done
  if find . -name '*.go' -not -path './node_modules/*' | grep -Eq '_(amd64|arm64|386|arm)(_test)?\.go$' ||
    grep -rlEq --include='*.go' '^//go:build.*\b(amd64|arm64|386|arm)\b' --exclude-dir=node_modules .; then
    echo "an architecture-specific file exists: build darwin/amd64 too"; exit 1
  fi
) >"$cross_log" 2>&1 &
cross_pid=$!

# The ray package's tests take the longest (a minute and a half on two
# cores: they start clusters, nodes and drivers as processes); go test
# starts packages in the order given, so naming it first runs it beside
# all the others instead of after them.
# The race runtime sleeps 1 s before every process exits (GORACE's
# atexit_sleep_ms, so that other threads can finish printing a report).
# The tests start hundreds of race-built processes (test binaries, worker
# processes, helpers) and wait for many to exit: without the sleep
# internal/... takes 60 s instead of 90. A GORACE of the caller's own
# comes after, so its atexit_sleep_ms wins.
export GORACE="atexit_sleep_ms=0${GORACE:+ $GORACE}"

echo "== go test -race"
test_status=0
# -vet=off: go vet ./... runs beside it (with every analyzer, not go
# test's subset), so the test build does not vet each package again.
go test -race -count=1 -vet=off -timeout 25m ./ray ./... || test_status=$?

echo "== go vet (linux, darwin/arm64, windows/amd64) and go build (darwin/arm64, windows/amd64)"
cross_status=0
wait "$cross_pid" || cross_status=$?
cat "$cross_log"
if [ "$cross_status" -ne 0 ]; then
  echo "vet or cross-build failed"
fi
if [ "$test_status" -ne 0 ] || [ "$cross_status" -ne 0 ]; then
  exit 1
fi

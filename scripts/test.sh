#!/usr/bin/env bash
# Runs everything CI runs: generated-code check, formatting, vet, and the
# whole test suite under the race detector. Installs what it needs
# (buf and the protoc plugins, built as Go modules) idempotently.
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

echo "== go test -race"
go test -race -count=1 -timeout 25m ./...

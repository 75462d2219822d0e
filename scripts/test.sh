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
# then nearly free.
echo "== cross-build: go vet for darwin/arm64; build darwin/arm64, darwin/amd64, windows/amd64"
CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 go vet ./...
for target in darwin/arm64 darwin/amd64 windows/amd64; do
  CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go build ./...
done

echo "== go test -race"
go test -race -count=1 -timeout 25m ./...

#!/usr/bin/env bash
# Regenerates internal/pb from proto/. With --check, fails if the committed
# generated code differs from what the current .proto files produce.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"
command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null; }
command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
command -v protoc-gen-go-grpc >/dev/null || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
command -v protoc-gen-go-vtproto >/dev/null || go install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@v0.6.1-0.20240319094008-0393e58bdf10
out=internal/pb
if [ "${1:-}" = "--check" ]; then out=$(mktemp -d); fi
protoc -I proto --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  --go-vtproto_out="$out" --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size \
  proto/*.proto
if [ "${1:-}" = "--check" ]; then
  for f in "$out"/*.go; do
    if ! diff -q "$f" "internal/pb/$(basename "$f")" >/dev/null; then
      echo "genproto: internal/pb/$(basename "$f") is out of date; run scripts/genproto.sh" >&2; exit 1
    fi
  done
  rm -rf "$out"
fi

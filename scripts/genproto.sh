#!/usr/bin/env bash
# Regenerates internal/pb from proto/. With --check, fails if the committed
# generated code differs from what the current .proto files produce.
#
# Needs only Go and the module proxy (or a warm module cache): buf and the
# three protoc plugins are Go modules, built once at pinned versions into
# a cache directory ($RAYGO_TOOLS_DIR, default ~/.cache/raygo/tools) and
# reused after. No protoc and no system package is involved. The first run
# builds buf (about two minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
# vtprotobuf is also a runtime dependency: generate with the version go.mod
# requires, so generated code and its helpers always match.
VTPROTO_VERSION=$(go list -m -f '{{.Version}}' github.com/planetscale/vtprotobuf)

tools=${RAYGO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/raygo/tools}

# tool NAME PACKAGE VERSION prints the path of NAME built from
# PACKAGE@VERSION, building it first if this version is not cached yet.
tool() {
  local dir="$tools/$1@$3"
  if [ ! -x "$dir/$1" ]; then
    echo "genproto: building $2@$3" >&2
    mkdir -p "$dir"
    GOBIN="$dir" GOFLAGS= go install "$2@$3"
  fi
  echo "$dir/$1"
}

buf=$(tool buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION")
gen_go=$(tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION")
gen_grpc=$(tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION")
gen_vt=$(tool protoc-gen-go-vtproto github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto "$VTPROTO_VERSION")

out=internal/pb
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

template=$(cat <<EOF
{"version": "v2", "plugins": [
  {"local": "$gen_go", "out": "$out", "opt": ["paths=source_relative"]},
  {"local": "$gen_grpc", "out": "$out", "opt": ["paths=source_relative"]},
  {"local": "$gen_vt", "out": "$out", "opt": ["paths=source_relative", "features=marshal+unmarshal+size"]}
]}
EOF
)
"$buf" generate proto --template "$template"

if [ "${1:-}" = "--check" ]; then
  drift=0
  for name in $( (ls -- "$out"; ls -- internal/pb | grep '\.pb\.go$') | sort -u); do
    if ! cmp -s "$out/$name" "internal/pb/$name"; then
      echo "genproto: internal/pb/$name is out of date; run scripts/genproto.sh" >&2
      drift=1
    fi
  done
  exit "$drift"
fi

#!/usr/bin/env bash
# Regenerates the OpAMP protobuf code in src/opamp/gen/ (committed; do not edit those files).
#
#   bash scripts/opamp-codegen.sh
#
# Source: the opamp-spec messages (opamp.proto, anyvalue.proto) as compiled into opamp-go, at the
# version pinned in test/opamp-go/go.mod (v0.23.0); the spec's .proto files live on GitHub, which
# this project's machines cannot reach, while the Go module proxy serves opamp-go. Generator:
# protoc-gen-es, pinned in package.json, run by test/opamp-go/protogen (no protoc or buf needed).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/test/opamp-go"
go run ./protogen "$root/node_modules/.bin/protoc-gen-es" "$root/src/opamp/gen"

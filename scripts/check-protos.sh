#!/usr/bin/env bash
# Regenerates pitaya-protocol's protobuf code (tools/protogen: protox + prost-build,
# no protoc) and fails if the checked-in copy under pitaya-protocol/src/protos
# was stale. Run `cargo run -p protogen` and commit the result to fix.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo run --quiet --locked -p protogen
if ! git diff --exit-code -- pitaya-protocol/src/protos; then
    echo "error: pitaya-protocol/src/protos is stale; run \`cargo run -p protogen\` and commit the result" >&2
    exit 1
fi
echo "protos are up to date"

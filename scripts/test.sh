#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every test of
# the workspace (unit, integration, doc tests). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# pitaya-cluster's feature split (cheap: `cargo tree` resolves, compiles
# nothing): NATS alone builds no etcd-client (nor anything needing protoc),
# the in-process cluster alone neither backend.
no_crates() { # <crate-name regex> <cargo tree args...>
    local forbidden=$1 tree found
    shift
    tree=$(cargo tree --locked -e normal,build --prefix none "$@")
    found=$(grep -E "^($forbidden) " <<<"$tree" | sort -u || true)
    if [[ -n $found ]]; then
        echo "error: \`cargo tree $*\` contains:" >&2
        echo "$found" >&2
        exit 1
    fi
}
no_crates 'etcd-client|prost-build|tonic-build|tonic-prost-build' \
    -p pitaya-cluster --no-default-features --features nats
no_crates 'etcd-client|async-nats' -p pitaya-cluster --no-default-features

# A real etcd and a real NATS server on free 127.0.0.1 ports for the
# cluster suites (installed with apt if absent), stopped on exit.
cluster_env=$(bash scripts/cluster-deps.sh start)
eval "$cluster_env"
trap 'bash scripts/cluster-deps.sh stop' EXIT

cargo test --workspace --locked \
    --features pitaya-cluster/real-cluster-tests,pitaya-tests/real-cluster-tests,cluster/real-cluster-tests "$@"

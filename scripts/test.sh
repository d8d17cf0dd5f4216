#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every test of
# the workspace (unit, integration, doc tests). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# A real etcd and a real NATS server on free 127.0.0.1 ports for the
# cluster suites (installed with apt if absent), stopped on exit.
cluster_env=$(bash scripts/cluster-deps.sh start)
eval "$cluster_env"
trap 'bash scripts/cluster-deps.sh stop' EXIT

cargo test --workspace --locked \
    --features pitaya-cluster/real-cluster-tests,pitaya-tests/real-cluster-tests "$@"

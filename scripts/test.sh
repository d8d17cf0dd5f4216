#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every test of
# the workspace (unit, integration, doc tests). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo test --workspace --locked "$@"

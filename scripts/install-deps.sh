#!/usr/bin/env bash
# Installs what building and testing pitaya-rs needs on a Debian machine.
# Idempotent: installs only what is missing. Run as root (or with sudo).
set -euo pipefail

need_cmd() { command -v "$1" >/dev/null 2>&1; }

if ! need_cmd cargo; then
    echo "error: cargo is not installed; install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi

# Debian packages the build and the tests use (command -> package).
declare -A packages=(
    [cc]=gcc
    [c++]=g++                    # libFuzzer, built by the fuzz targets (scripts/fuzz.sh)
    [pkg-config]=pkg-config
    [protoc]=protobuf-compiler   # etcd-client's build script (pitaya-cluster's `etcd` feature)
)
missing=()
for cmd in "${!packages[@]}"; do
    need_cmd "$cmd" || missing+=("${packages[$cmd]}")
done

# protoc needs the well-known types (google/protobuf/*.proto), which Debian
# ships in libprotobuf-dev (only recommended by protobuf-compiler).
[[ -f /usr/include/google/protobuf/descriptor.proto ]] || missing+=(libprotobuf-dev)

if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

#!/usr/bin/env bash
# Hostile load, before and after: runs `hostile-bench` (tests/src/bin) --
# the four attacks of the hardening issue, each bounded (<= 1,000 sockets,
# <= ~30 s) -- against examples/echo built at an older commit ("before",
# default 68407ac, the commit the findings were made at) and against the
# current tree ("after"), both in release with 2 worker threads, on
# 127.0.0.1. Prints one markdown table row per attack and server; the
# "Hostile load" section of BENCHMARKS.md is made from them.
#
#   scripts/hostile-bench.sh [BEFORE_COMMIT] [-- hostile-bench flags...]
#
# The "before" build lives in a git worktree at /tmp/pitaya-<commit> with
# its own target dir; it is removed at the end (`git worktree remove`)
# unless HOSTILE_BENCH_KEEP=1 (a kept one is reused by the next run).
# SKIP_BEFORE=1 runs only the current tree; ATTACKS="zlib headers" runs
# only those attacks (of: handshake zlib headers partial deadline).
set -euo pipefail

before=68407ac
if [[ $# -gt 0 && $1 != "--" ]]; then
    before=$1
    shift
fi
[[ ${1:-} == "--" ]] && shift
bench_flags=("$@")

root=$(git rev-parse --show-toplevel)
cd "$root"

# 1,000 hostile sockets plus the server's own: raise the soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096 || true
echo "# open files limit: $(ulimit -n)" >&2

cargo build --release -p echo -p pitaya-tests --bin hostile-bench >&2
bench="$root/target/release/hostile-bench"
after_echo="$root/target/release/echo"

worktree="/tmp/pitaya-$before"
server_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${HOSTILE_BENCH_KEEP:-0} != 1 && ${SKIP_BEFORE:-0} != 1 && -d $worktree ]]; then
        git -C "$root" worktree remove --force "$worktree" || true
    fi
}
trap cleanup EXIT

# Runs each attack against a fresh echo process (so one attack's
# leftovers, e.g. memory the allocator keeps, do not hide the next one's).
run() {
    local label=$1 binary=$2 attack
    for attack in ${ATTACKS:-handshake zlib headers partial deadline}; do
        run_one "$label" "$binary" "$attack"
    done
}

# Starts an echo binary on free ports and runs one attack against it.
run_one() {
    local label=$1 binary=$2 attack=$3
    local out
    out=$(mktemp)
    "$binary" --tcp 127.0.0.1:0 --ws 127.0.0.1:0 --threads 2 >"$out" 2>/dev/null &
    server_pid=$!
    local tcp=""
    for _ in $(seq 100); do
        tcp=$(sed -n 's|^echo listening on tcp://||p' "$out" | head -n1)
        [[ -n $tcp ]] && break
        sleep 0.1
    done
    if [[ -z $tcp ]]; then
        echo "$label: the server did not start" >&2
        exit 1
    fi
    echo "# $label: $binary, pid $server_pid, tcp $tcp" >&2
    "$bench" --tcp "$tcp" --pid "$server_pid" --label "$label" --attacks "$attack" \
        --no-header "${bench_flags[@]}"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    rm -f "$out"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -sr)"
echo "| server | attack | hostile sockets | server's answer / closed within | peak RSS (growth) | peak VmSize (growth) | canary p50 / p99 / max | canary failures |"
echo "|---|---|---|---|---|---|---|---|"
if [[ ${SKIP_BEFORE:-0} != 1 ]]; then
    if [[ ! -d $worktree ]]; then
        git worktree add --detach "$worktree" "$before" >&2
    fi
    (cd "$worktree" && CARGO_TARGET_DIR="$worktree/target" cargo build --release -p echo >&2)
    run "before ($before)" "$worktree/target/release/echo"
fi
run "after ($(git rev-parse --short HEAD)+working tree)" "$after_echo"

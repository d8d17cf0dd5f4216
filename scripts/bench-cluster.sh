#!/usr/bin/env bash
# Cluster benchmark: the echo route through a frontend forwarding to a
# backend, next to the standalone server, all in one run so the ratios
# compare like with like. Four servers, over TCP at 10 and 100 connections:
#   - raw-echo: the codec-only reference every figure is divided by;
#   - echo: the echo component, standalone (`examples/echo`);
#   - echo-dev: a `connector` frontend and an `echo` backend in one process
#     on the in-process cluster (`--mode dev`): forwarding without a network;
#   - echo-nats: `--mode frontend` and `--mode backend`, two processes on an
#     etcd + NATS pair started for this run (scripts/cluster-deps.sh).
# Results (one JSON per run from pitaya-bench, the servers' logs, summary.md)
# go to bench-results/<timestamp>-cluster/. Each scenario runs REPS times
# (default 3), alternating the servers, and the summary reports medians.
# Errors and the warnings the servers log during a run (e.g. NATS slow
# consumer drops, whose requests time out after 5 s) are summed over the
# runs: pitaya-bench does not count failures of requests sent during the
# warm-up, the server logs show them.
# NATS_BUFFER=N passes --nats-buffer N to the frontend and the backend.
# Usage: bash scripts/bench-cluster.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
reps=${REPS:-3}
nats_buffer=${NATS_BUFFER:-}
out="bench-results/$(date -u +%Y%m%dT%H%M%SZ)-cluster"
mkdir -p "$out"
deps_dir="$PWD/$out/cluster-deps"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release --locked -q -p raw-echo -p echo -p pitaya-tools --bins
bin=target/release

pids=()
deps_started=""
alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 200); do alive "$pid" || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $deps_started ]]; then
        PITAYA_CLUSTER_DEPS_DIR=$deps_dir bash scripts/cluster-deps.sh stop 2>/dev/null || true
    fi
}
trap cleanup EXIT

deps_started=1
deps_env=$(PITAYA_CLUSTER_DEPS_DIR=$deps_dir bash scripts/cluster-deps.sh start)
eval "$deps_env"

# start_server NAME READY-PATTERN BINARY ARGS...: starts it, waits for
# READY-PATTERN on its stdout.
start_server() {
    local name=$1 ready=$2 binary=$3
    shift 3
    "$bin/$binary" "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do
        grep -q "$ready" "$out/$name.stdout" 2>/dev/null && return 0
        alive "$pid" || break
        sleep 0.05
    done
    echo "$name did not start" >&2
    cat "$out/$name.stderr" >&2
    exit 1
}
tcp_url() { grep -o 'tcp://[^ ]*' "$out/$1.stdout"; }

nats_args=(--etcd "$PITAYA_TEST_ETCD" --nats "$PITAYA_TEST_NATS")
[[ -z $nats_buffer ]] || nats_args+=(--nats-buffer "$nats_buffer")

start_server raw-echo "listening on" raw-echo --tcp 127.0.0.1:0
start_server echo "listening on" echo --tcp 127.0.0.1:0
start_server echo-dev "echo backend .* registered" echo --mode dev --tcp 127.0.0.1:0
start_server echo-nats-backend "echo backend .* registered" echo --mode backend "${nats_args[@]}"
start_server echo-nats "echo frontend .* registered" echo --mode frontend --tcp 127.0.0.1:0 "${nats_args[@]}"
declare -A url=(
    [raw-echo]=$(tcp_url raw-echo)
    [echo]=$(tcp_url echo)
    [echo-dev]=$(tcp_url echo-dev)
    [echo-nats]=$(tcp_url echo-nats)
)
# The server logs (stderr) of each scenario, for the warnings of each run.
declare -A logs=(
    [raw-echo]="$out/raw-echo.stderr"
    [echo]="$out/echo.stderr"
    [echo-dev]="$out/echo-dev.stderr"
    [echo-nats]="$out/echo-nats.stderr $out/echo-nats-backend.stderr"
)
servers=(raw-echo echo echo-dev echo-nats)

# One request must go through before measuring (the frontend may not see
# the backend yet).
for server in "${servers[@]}"; do
    ok=""
    for _ in $(seq 30); do
        if "$bin/pitaya-bench" "${url[$server]}" -c 1 -n 1 -w 0s --timeout 2s --quiet \
            --json "$out/$server.probe.json" >/dev/null 2>&1 &&
            python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["requests"]
sys.exit(0 if r["ok"] >= 1 and r["errors"] == 0 else 1)' "$out/$server.probe.json"; then
            ok=1
            break
        fi
        sleep 0.5
    done
    [[ -n $ok ]] || { echo "no request went through $server (${url[$server]})" >&2; exit 1; }
done

run() { # server connections rep
    local label="$1-c$2-r$3" file i
    local -a files before=()
    read -ra files <<<"${logs[$1]}"
    for file in "${files[@]}"; do before+=("$(wc -l <"$file")"); done
    "$bin/pitaya-bench" "${url[$1]}" -c "$2" -d "${secs}s" -w 2s --quiet --label "$label" \
        --json "$out/$label.json" >/dev/null
    # What the servers logged (warn and above) during the run.
    : >"$out/$label.log"
    for i in "${!files[@]}"; do
        tail -n +"$((before[i] + 1))" "${files[i]}" >>"$out/$label.log"
    done
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
    for c in 10 100; do
        for server in "${servers[@]}"; do
            run "$server" "$c" "$rep"
        done
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out" "$reps" "$secs" "$(nproc)" "$load_start" "$load_end" "${nats_buffer:-default (NatsConfig: 65,536)}" <<'PY'
import collections, json, pathlib, re, statistics, sys
out, reps, secs, cpus, load_start, load_end, nats_buffer = sys.argv[1:8]
out, reps = pathlib.Path(out), int(reps)
servers = [("raw-echo", "raw-echo"), ("echo", "echo standalone"),
           ("echo-dev", "echo dev (in-process cluster)"), ("echo-nats", "echo via NATS (frontend -> NATS -> backend)")]
ansi = re.compile(r"\x1b\[[0-9;]*m")
def runs(server, conns):
    return [(rep, json.loads((out / f"{server}-c{conns}-r{rep}.json").read_text())) for rep in range(1, reps + 1)]
def median(results, key):
    values = [r["throughput_rps"] if key == "rps" else (r["latency_ms"] or {}).get(key, float("nan")) for _, r in results]
    return statistics.median(values)
def log_lines(server, conns, rep):
    path = out / f"{server}-c{conns}-r{rep}.log"
    return [ansi.sub("", line) for line in path.read_text().splitlines()] if path.exists() else []
rows = [f"Cluster benchmark: {reps} alternating runs of {secs} s per scenario (closed loop, depth 1, 2 s warm-up,",
        'payload {"msg":"hello"}, route echo.echo.echo, TCP), medians; ' + f"{cpus} CPUs (nproc), load average {load_start} at the start, {load_end} at the end;",
        f"NATS subscription buffer: {nats_buffer}. The client, the servers, etcd and NATS share the machine.", "",
        "| scenario | conns | req/s | / raw-echo | p50 ms | p99 ms | errors (all runs) | server warnings (all runs) |",
        "|---|---|---|---|---|---|---|---|"]
warnings = collections.Counter()
for conns in (10, 100):
    raw = median(runs("raw-echo", conns), "rps")
    for server, name in servers:
        results = runs(server, conns)
        rps = median(results, "rps")
        codes = collections.Counter()
        failed = dropped = 0
        for _, r in results:
            codes.update(r["errors_by_code"])
            failed += r["connections"]["failed"]
            dropped += r["connections"]["dropped"]
        errors = sum(codes.values())
        parts = [f"{code} x{n}" for code, n in sorted(codes.items())]
        if failed:
            parts.append(f"{failed} connections failed")
        if dropped:
            parts.append(f"{dropped} connections dropped")
        err_text = f"**{errors}** ({', '.join(parts)})" if parts else "0"
        logged = 0
        for rep, _ in results:
            lines = log_lines(server, conns, rep)
            logged += len(lines)
            for line in lines:
                # Drop the timestamp; keep level, target and message.
                warnings[(server, re.sub(r"^\S+\s+", "", line).strip())] += 1
        warn_text = f"**{logged}**" if logged else "0"
        rows.append(f"| {name} | {conns} | {rps:,.0f} | {rps / raw:.2f} | {median(results, 'p50'):.3f} | "
                    f"{median(results, 'p99'):.2f} | {err_text} | {warn_text} |")
if warnings:
    rows += ["", "Server warnings logged during the runs (count, scenario, message):", ""]
    rows += [f"- {n} x {server}: `{message}`" for (server, message), n in warnings.most_common(20)]
text = "\n".join(rows)
(out / "summary.md").write_text(text + "\n")
print(text)
PY
echo "results in $out"

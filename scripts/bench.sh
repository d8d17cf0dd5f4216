#!/usr/bin/env bash
# Benchmark scenarios, all in one run so the ratios compare like with like:
#   - raw-echo (the codec-only reference) and the echo component, over TCP
#     at 1, 10, 100 and 1000 connections, and over WebSocket at 100;
#   - resident memory per idle handshaken connection (heartbeats on).
# Results (one JSON per run from pitaya-bench, plus summary.md) go to
# bench-results/<timestamp>/. Each scenario runs REPS times (default 3),
# alternating the two servers, and the summary reports medians: on a shared
# machine one run can be off by 2x. Usage: bash scripts/bench.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
idle_conns=${IDLE_CONNECTIONS:-10000}
reps=${REPS:-3}
out="bench-results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release --locked -q -p raw-echo -p echo -p pitaya-tools --bins
bin=target/release

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# start_server NAME ARGS...: starts it, waits for its "listening on" line.
start_server() {
    local name=$1; shift
    "$bin/$name" "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" &
    pids+=($!)
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$out/$name.stdout" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$name did not start" >&2; cat "$out/$name.stderr" >&2; exit 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

start_server raw-echo --tcp 127.0.0.1:0 --ws 127.0.0.1:0
raw_pid=$server_pid
raw_tcp=$(grep -o 'tcp://[^ ]*' "$out/raw-echo.stdout")
raw_ws=$(grep -o 'ws://[^ ]*' "$out/raw-echo.stdout")
start_server echo --tcp 127.0.0.1:0 --ws 127.0.0.1:0
echo_pid=$server_pid
echo_tcp=$(grep -o 'tcp://[^ ]*' "$out/echo.stdout")
echo_ws=$(grep -o 'ws://[^ ]*' "$out/echo.stdout")

run() { # label endpoint connections
    "$bin/pitaya-bench" "$2" -c "$3" -d "${secs}s" -w 2s --quiet --label "$1" --json "$out/$1.json" >/dev/null
}

for rep in $(seq "$reps"); do
    for c in 1 10 100 1000; do
        run "raw-echo-tcp-c$c-r$rep" "$raw_tcp" "$c"
        run "echo-tcp-c$c-r$rep" "$echo_tcp" "$c"
    done
    run "raw-echo-ws-c100-r$rep" "$raw_ws" 100
    run "echo-ws-c100-r$rep" "$echo_ws" 100
done

# Memory per idle connection: RSS before and while idle connections are held.
idle() { # label pid endpoint
    local before after
    before=$(rss_kib "$2")
    "$bin/pitaya-bench" "$3" -c "$idle_conns" --idle -d 20s -w 0s --quiet --connect-timeout 30s \
        --json "$out/$1.json" >/dev/null &
    local bench=$!
    sleep 15
    after=$(rss_kib "$2")
    wait "$bench"
    echo "{\"label\":\"$1\",\"connections\":$idle_conns,\"rss_before_kib\":$before,\"rss_idle_kib\":$after}" >"$out/$1.rss.json"
}
idle "echo-idle" "$echo_pid" "$echo_tcp"
idle "raw-echo-idle" "$raw_pid" "$raw_tcp"

python3 - "$out" "$reps" <<'PY'
import json, pathlib, statistics, sys
out, reps = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def load(label):
    return json.loads((out / f"{label}.json").read_text())
def median(server, scenario, key):
    runs = [load(f"{server}-{scenario}-r{rep}") for rep in range(1, reps + 1)]
    values = [run["throughput_rps"] if key == "rps" else run["latency_ms"][key] for run in runs]
    return statistics.median(values)
rows = [f"medians of {reps} alternating runs", "",
        "| scenario | raw-echo req/s | echo req/s | echo / raw-echo | raw-echo p50 / p99 ms | echo p50 / p99 ms |",
        "|---|---|---|---|---|---|"]
for transport, conns in [("tcp", 1), ("tcp", 10), ("tcp", 100), ("tcp", 1000), ("ws", 100)]:
    scenario = f"{transport}-c{conns}"
    r, e = median("raw-echo", scenario, "rps"), median("echo", scenario, "rps")
    lat = lambda server: f"{median(server, scenario, 'p50'):.3f} / {median(server, scenario, 'p99'):.2f}"
    rows.append(f"| {transport} {conns} conns | {r:,.0f} | {e:,.0f} | {e / r:.2f} | {lat('raw-echo')} | {lat('echo')} |")
for label in ["echo-idle", "raw-echo-idle"]:
    m = json.loads((out / f"{label}.rss.json").read_text())
    held = load(label)["connections"]["connected"]
    per = (m["rss_idle_kib"] - m["rss_before_kib"]) / max(held, 1)
    rows.append(f"\n{label}: {held} idle connections, RSS {m['rss_before_kib']} -> {m['rss_idle_kib']} KiB = {per:.2f} KiB per connection")
text = "\n".join(rows)
(out / "summary.md").write_text(text + "\n")
print(text)
PY
echo "results in $out"

#!/usr/bin/env bash
# Smoke-fuzzes pitaya-core's wire decoders: builds the cargo-fuzz targets in
# fuzz/ and runs each for SECONDS (default 60), starting from the committed
# seed corpus in fuzz/corpus/<target>/ copied to a temporary directory (the
# committed corpus never grows). Exits non-zero if any target finds a crash,
# a failed invariant, a timeout or an out-of-memory; the input that did it
# is kept in fuzz/artifacts/<target>/ (git-ignored) and its log is printed.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment:
#   FUZZ_SANITIZER   none (default) or address. The targets check their own
#                    invariants and pitaya-core forbids unsafe code, so
#                    AddressSanitizer adds little here, while it doubles the
#                    cold build (~3.3 min vs ~1.7 min on 2 cores) and makes
#                    the targets 5-10x slower per input.
#   FUZZ_TARGETS     space-separated subset of targets (default: all).
#
# One stable toolchain is enough: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# nightly-only flags (-Zsanitizer and friends).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "usage: $0 [SECONDS]   (seconds per target, default 60)" >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz | tr '\n' ' ')}"
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

# Longest input per target: packets and messages may exceed 64 KiB (the
# inflate ratio check only applies past it); envelopes and handshakes stay
# small.
max_len_for() {
    case "$1" in
        packet_chunked | message_decode | inflate) echo 70000 ;;
        *) echo 16384 ;;
    esac
}

echo "==> building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
build_start=$SECONDS
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"
echo "    built in $((SECONDS - build_start)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/pitaya-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

stat_of() { # stat_of NAME LOG -> the value of libFuzzer's final stat::NAME
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus"
    if [[ -d "fuzz/corpus/$target" ]]; then
        cp -R "fuzz/corpus/$target/." "$corpus/"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    log="$work/$target.log"
    echo "==> fuzzing $target for ${seconds} s"
    start=$SECONDS
    status=0
    cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" \
        -rss_limit_mb=2048 \
        -timeout=10 \
        -max_len="$(max_len_for "$target")" \
        -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    elapsed=$((SECONDS - start))
    execs=$(stat_of number_of_executed_units "$log")
    per_sec=$(stat_of average_exec_per_sec "$log")
    rss=$(stat_of peak_rss_mb "$log")
    found=$(find "$corpus" -type f | wc -l)
    line=$(printf '%-18s %s  %10s execs  %6s/s  %4d s  corpus %d -> %d  peak rss %s MB' \
        "$target" "$([[ $status -eq 0 ]] && echo ok || echo FAIL)" \
        "${execs:-?}" "${per_sec:-?}" "$elapsed" "$seeds" "$found" "${rss:-?}")
    echo "    $line"
    summary+=("$line")
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        echo "---- $target failed (exit $status); last lines of its log:" >&2
        tail -n 60 "$log" >&2
        echo "---- crashing input (if any) in fuzz/artifacts/$target/" >&2
    fi
done

echo
echo "==> fuzz summary (${seconds} s per target, sanitizer: $sanitizer)"
printf '    %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi

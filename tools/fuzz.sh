#!/usr/bin/env bash
# Runs every libFuzzer target (build-fuzz/bin/fuzz_*) for a bounded time over a scratch copy of
# its seed corpus (tests/fuzz/corpus/<target>/), failing on the first crash, leak or timeout.
# Usage: tools/fuzz.sh [seconds per target, default $MQ_FUZZ_SECONDS or 30]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${MQ_FUZZ_SECONDS:-30}}
bash tools/build.sh fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for bin in build-fuzz/bin/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
    [ -d "tests/fuzz/corpus/$name" ] && cp tests/fuzz/corpus/"$name"/* "$work/$name/corpus/"
    echo "--- $name: ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$work/$name/artifacts/" \
        "$work/$name/corpus" >"$work/$name/log" 2>&1; then
        echo "FAIL: $name crashed; last lines of its log:"
        tail -n 60 "$work/$name/log"
        for a in "$work/$name"/artifacts/*; do
            [ -e "$a" ] && { echo "reproducer (base64) $(basename "$a"):"; base64 "$a" | head -c 4000; echo; }
        done
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$work/$name/log" || true
    fi
done
exit $status

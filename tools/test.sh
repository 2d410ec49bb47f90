#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: installs dependencies, builds the release build
# (-Werror) and the ASan+UBSan build, and runs on each the C unit tests (ctest) and the
# end-to-end tests (pytest against real daemons and a real mount), then the fuzz targets for a
# bounded time. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
PYTEST=(/usr/bin/python3 -m pytest -p no:cacheprovider -q -rs)
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT

run_e2e() { # run_e2e <build dir>
    [ -n "$(find tests/e2e -name 'test_*.py' 2>/dev/null)" ] || { echo "no end-to-end tests yet"; return 0; }
    local rc=0
    MQ_BIN_DIR="$PWD/$1/bin" "${PYTEST[@]}" tests/e2e 2>&1 | tee -a "$SUMMARY" || rc=${PIPESTATUS[0]}
    [ "$rc" -eq 5 ] && rc=0 # every test skipped or deselected
    return "$rc"
}

for kind in release asan; do
    dir=build
    [ "$kind" = asan ] && dir=build-asan
    echo "=== $kind build ==="
    bash tools/build.sh "$kind"
    echo "=== $kind: unit tests ==="
    ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" 2>&1 | tee -a "$SUMMARY"
    [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
    echo "=== $kind: end-to-end tests ==="
    run_e2e "$dir"
done

if [ -x tools/fuzz.sh ]; then
    echo "=== fuzz targets (bounded) ==="
    bash tools/fuzz.sh
fi
# One closing line over every runner: unit test executables (ctest) and end-to-end tests.
passed=$(grep -oE '^[0-9]+ passed|tests passed, [0-9]+ tests failed out of [0-9]+' "$SUMMARY" |
    awk '/out of/ {n += $NF - $3; next} {n += $1} END {print n + 0}')
echo "=== all tests passed ==="
echo "summary: $passed passed, 0 failed"

#!/usr/bin/env bash
# Builds mqfs into a build directory. Usage: tools/build.sh [release|asan|fuzz]
#   release  -> build/       (RelWithDebInfo, -Werror)
#   asan     -> build-asan/  (Debug, AddressSanitizer + UndefinedBehaviorSanitizer, -Werror)
#   fuzz     -> build-fuzz/  (clang, libFuzzer targets + ASan)
# Programs land in <dir>/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=$(nproc)
case "$kind" in
release) cmake -S . -B build -DMQ_WERROR=ON >/dev/null && cmake --build build -j"$jobs" ;;
asan) cmake -S . -B build-asan -DMQ_WERROR=ON -DMQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build build-asan -j"$jobs" ;;
fuzz) CC=clang cmake -S . -B build-fuzz -DMQ_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build build-fuzz -j"$jobs" ;;
*) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Installs the Debian packages mqfs builds, runs and tests with. Idempotent: packages already
# present are left as they are, and apt-get is skipped entirely when nothing is missing.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config clang libclang-rt-dev  # compilers; clang for libFuzzer
    libevent-dev        # remoting: event loop and buffers
    libfuse3-dev fuse3  # mqfs: the FUSE low-level API and fusermount3
    libzstd-dev         # client: body compression
    zlib1g-dev          # crc32 (RocketMQ's UtilAll.crc32 is zlib's crc32)
    libjansson-dev      # JSON headers and bodies of RocketMQ's remoting protocol, config files
    python3 python3-pytest  # end-to-end tests
    procps psmisc attr jq   # ps/pkill, fuser, getfattr, jq: used by tests and scripts
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

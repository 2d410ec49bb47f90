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
    iproute2 util-linux     # ip netns and nsenter: the multi-host cluster test (test_cluster_netns.py)
    libhiredis-dev libnats-dev    # tools/bench: the Redis Streams and NATS JetStream load generators
    redis-server nats-server      # tools/bench/compare.sh: the peers it measures us against
)

# The interop test (tests/interop) runs the stock ali-ons RocketMQ client on Node.js. Install
# Debian's nodejs and npm only when there is no node on PATH: a machine's own Node (for example a
# newer one from elsewhere) is never replaced.
if ! command -v node >/dev/null 2>&1; then
    PKGS+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: node is on PATH but npm is not; tests/interop/setup.sh will need npm" >&2
fi

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

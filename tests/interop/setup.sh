#!/usr/bin/env bash
# Installs the interop test's Node dependencies (the pinned ali-ons client) into
# tests/interop/node_modules with `npm ci`, only when node_modules is missing or older than
# package-lock.json. Needs node and npm (tools/install-deps.sh installs them if node is absent).
# Usage: tests/interop/setup.sh [--force]
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null 2>&1 || { echo "setup.sh: node not found; run tools/install-deps.sh" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup.sh: npm not found; run tools/install-deps.sh" >&2; exit 1; }

stamp=node_modules/.package-lock.json   # written by npm ci / npm install
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ -d node_modules/ali-ons ] \
    && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
    echo "setup.sh: node_modules is up to date"
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
node -e "require('ali-ons'); console.log('setup.sh: ali-ons ' + require('ali-ons/package.json').version + ' ready (node ' + process.version + ')')"

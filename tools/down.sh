#!/usr/bin/env bash
# Stops what tools/up.sh started, in reverse order: unmounts mqfs, then stops the broker and
# the NameServer with SIGTERM (each flushes and exits cleanly), waiting for each to exit.
set -euo pipefail
MQ_HOME=${MQ_HOME:-/var/lib/mqfs}
RUN="$MQ_HOME/run"

stop() { # stop <name>: SIGTERM the pid from its pid file, wait up to 30 s, then SIGKILL
    local f="$RUN/$1.pid"
    [ -f "$f" ] || return 0
    local pid
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$1 (pid $pid) did not exit after SIGTERM; killing it" >&2
            kill -KILL "$pid"
        fi
        echo "stopped $1 (pid $pid)"
    fi
    rm -f "$f"
}

if [ -f "$RUN/mqfs.mnt" ]; then
    mnt=$(cat "$RUN/mqfs.mnt")
    mountpoint -q "$mnt" && fusermount3 -u "$mnt"
    rm -f "$RUN/mqfs.mnt"
fi
stop mqfs
stop mqbroker
stop mqnamesrv

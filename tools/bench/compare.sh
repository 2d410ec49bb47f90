#!/usr/bin/env bash
# compare.sh — mqfs next to Redis Streams and NATS JetStream on this machine, in one command.
#
# Starts, each on a free 127.0.0.1 port with its data in one temp dir: mqnamesrv + mqbroker
# (ASYNC_FLUSH), redis-server (appendonly yes, appendfsync everysec) and nats-server -js (file
# storage). Runs the same workloads, 100-byte bodies, against each:
#   batch   batched / pipelined produce: mqc_send_batch of BATCH messages, pipelines of BATCH
#           XADDs, js_PublishAsync with a window (NATS has no batch publish), CALLERS callers
#           (mqfs also sends the batches with mqc_send_batch_async, 16 in flight per caller)
#   single  single-message sync sends from MANY concurrent callers, one in flight per caller
#   consume reading back what `batch` wrote (mqfs: raw pulls; also the group consumer)
# and for mqfs alone, against a second broker with flushDiskType=SYNC_FLUSH (its own NameServer,
# so that routes do not mix), the single and batch sends again, each next to the store alone
# in process with SYNC_FLUSH (mqbench-store -p sync: 64 sync appenders, and one thread with
# 4096 durability callbacks in flight), the disk's sync latency bounding both.
# measures the loopback TCP round trip as the latency floor, prints a table with the ratios
# (ours / theirs) and a final RESULT line, then stops what it started (by PID) and deletes the
# temp dir. Without mqbroker (not built yet) the peers still run and ours say "n/a".
#
# Usage: tools/bench/compare.sh [-d seconds] [-b batch] [-c callers] [-m many] [-k]
#   -d  seconds per produce workload (default 5)       -b  messages per batch (default 100)
#   -c  callers for batch produce (default 4)           -m  callers for single sends (default 64)
#   -k  keep the temp dir (logs, data) and print where it is
# Environment: BIN (default build/bin), SIZE (default 100), CONSUME_MAX (default 3m messages).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/bin}
SIZE=${SIZE:-100}
CONSUME_MAX=${CONSUME_MAX:-3m}
DUR=5 BATCH=100 CALLERS=4 MANY=64 KEEP=0
while getopts "d:b:c:m:kh" o; do
    case "$o" in
    d) DUR=$OPTARG ;;
    b) BATCH=$OPTARG ;;
    c) CALLERS=$OPTARG ;;
    m) MANY=$OPTARG ;;
    k) KEEP=1 ;;
    *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; [ "$o" = h ] && exit 0 || exit 2 ;;
    esac
done
LIMIT=$((DUR + 60)) # every client run is bounded in time

for b in mqbench mqbench-redis mqbench-nats; do
    [ -x "$BIN/$b" ] || { echo "compare: $BIN/$b missing; run tools/build.sh release" >&2; exit 1; }
done
for s in redis-server nats-server; do
    command -v "$s" >/dev/null || { echo "compare: $s missing; run tools/install-deps.sh" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mqbench-compare.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then echo "compare: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # wait_port <port> <pid> <name>
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "compare: $3 exited:" >&2; tail -5 "$WORK/$3.log" >&2; return 1; }
        sleep 0.1
    done
    echo "compare: $3 did not listen on port $1" >&2
    return 1
}
TCK=$(getconf CLK_TCK)
cpu_ticks() { # user + system clock ticks of a process so far (0 when gone)
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# run <name> <server pid> <cmd...>: runs one bounded client, keeps its output, prints its RESULT
# line ("" if none) with server_cpu_s= (the server's CPU time during the run) appended
run() {
    local name=$1 spid=$2 c0 line
    shift 2
    echo "--- $name: $*" >>"$WORK/runs.log"
    c0=$(cpu_ticks "$spid")
    timeout "$LIMIT" "$@" >"$WORK/$name.out" 2>>"$WORK/runs.log" || true
    line=$(grep '^RESULT' "$WORK/$name.out" | tail -1 || true)
    [ -z "$line" ] || echo "$line server_cpu_s=$(awk -v a="$c0" -v b="$(cpu_ticks "$spid")" -v t="$TCK" 'BEGIN { printf "%.2f", (b - a) / t }')"
}
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; } # val <key> <RESULT line>

# ---- servers ----
NS_PORT=$(free_port) BRK_PORT=$(free_port) REDIS_PORT=$(free_port) NATS_PORT=$(free_port)
OURS=0 BRK_PID=0 SYNC=0 SBRK_PID=0
NS2_PORT=$(free_port) SBRK_PORT=$(free_port)
if [ -x "$BIN/mqnamesrv" ] && [ -x "$BIN/mqbroker" ]; then
    mkdir -p "$WORK/mq/store"
    "$BIN/mqnamesrv" -p "$NS_PORT" >"$WORK/mqnamesrv.log" 2>&1 &
    PIDS+=($!)
    wait_port "$NS_PORT" $! mqnamesrv
    cat >"$WORK/mq/broker.conf" <<EOF
brokerClusterName=BenchCluster
brokerName=bench-a
brokerId=0
listenPort=$BRK_PORT
namesrvAddr=127.0.0.1:$NS_PORT
storePathRootDir=$WORK/mq/store
flushDiskType=ASYNC_FLUSH
defaultTopicQueueNums=8
maxTransferCountOnMessageInMemory=4096
maxTransferBytesOnMessageInMemory=8388608
EOF
    "$BIN/mqbroker" -c "$WORK/mq/broker.conf" >"$WORK/mqbroker.log" 2>&1 &
    PIDS+=($!)
    BRK_PID=$!
    wait_port "$BRK_PORT" $! mqbroker && OURS=1
    # the SYNC_FLUSH broker: same settings, its own NameServer and store
    mkdir -p "$WORK/mqs/store"
    "$BIN/mqnamesrv" -p "$NS2_PORT" >"$WORK/mqnamesrv2.log" 2>&1 &
    PIDS+=($!)
    wait_port "$NS2_PORT" $! mqnamesrv2
    sed -e "s/^brokerName=.*/brokerName=bench-sync/" -e "s/^listenPort=.*/listenPort=$SBRK_PORT/" \
        -e "s/^namesrvAddr=.*/namesrvAddr=127.0.0.1:$NS2_PORT/" \
        -e "s|^storePathRootDir=.*|storePathRootDir=$WORK/mqs/store|" \
        -e "s/^flushDiskType=.*/flushDiskType=SYNC_FLUSH/" "$WORK/mq/broker.conf" >"$WORK/mqs/broker.conf"
    "$BIN/mqbroker" -c "$WORK/mqs/broker.conf" >"$WORK/mqbroker-sync.log" 2>&1 &
    PIDS+=($!)
    SBRK_PID=$!
    wait_port "$SBRK_PORT" $! mqbroker-sync && SYNC=1
fi
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK" --appendonly yes \
    --appendfsync everysec --save '' --protected-mode yes >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
REDIS_PID=$!
wait_port "$REDIS_PORT" $! redis
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)
NATS_PID=$!
wait_port "$NATS_PORT" $! nats

NS=127.0.0.1:$NS_PORT NS2=127.0.0.1:$NS2_PORT
warm() { # the broker registers with the NameServer: wait for a first send
    for _ in $(seq 1 50); do
        timeout 10 "$BIN/mqbench" produce -n "$1" -t BenchWarm -N 1 >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
[ "$OURS" = 0 ] || warm "$NS" || true
[ "$SYNC" = 0 ] || warm "$NS2" || SYNC=0

cat <<EOF
Persistence compared (a reply means "in the server's memory/page cache" for all three; none
fsyncs before acknowledging):
  mqfs   flushDiskType=ASYNC_FLUSH: commitlog in the page cache, flushed every 500 ms
         (flushIntervalCommitLog) by a background thread
  Redis  appendonly yes, appendfsync everysec: AOF written per event loop, fsync once a second;
         RDB snapshots off
  NATS   JetStream file storage: written to the OS before the ack, fsync on the server's
         sync interval (2 minutes by default)
Machine: $(nproc) CPUs, shared by clients and servers; load average $(cut -d' ' -f1-3 /proc/loadavg).
Workloads: ${SIZE}-byte bodies, ${DUR} s per produce run.
EOF

# ---- workloads ----
RTT=$(run rtt 0 "$BIN/mqbench" rtt -d 2 -s "$SIZE")
COMMON=(-s "$SIZE" -d "$DUR")
# one workload at a time across the three systems, so that load from elsewhere on the machine
# hits them alike
ours() { if [ "$OURS" = 1 ]; then run "$@"; fi; }
O_BATCH=$(ours ours_batch "$BRK_PID" "$BIN/mqbench" produce -n "$NS" -t BenchBatch -b "$BATCH" -c "$CALLERS" "${COMMON[@]}")
R_BATCH=$(run redis_batch "$REDIS_PID" "$BIN/mqbench-redis" produce -p "$REDIS_PORT" -k bench:b -P "$BATCH" -c "$CALLERS" "${COMMON[@]}")
N_BATCH=$(run nats_batch "$NATS_PID" "$BIN/mqbench-nats" produce -p "$NATS_PORT" --stream BENCHB --subject bench.b -m async -w 4096 -c "$CALLERS" "${COMMON[@]}")
# the same batches sent with mqc_send_batch_async, 16 in flight per caller on 2 callers
O_ABATCH=$(ours ours_abatch "$BRK_PID" "$BIN/mqbench" produce -n "$NS" -t BenchBatch -b "$BATCH" -m async -w 16 -c 2 "${COMMON[@]}")
O_SINGLE=$(ours ours_single "$BRK_PID" "$BIN/mqbench" produce -n "$NS" -t BenchSingle -c "$MANY" "${COMMON[@]}")
R_SINGLE=$(run redis_single "$REDIS_PID" "$BIN/mqbench-redis" produce -p "$REDIS_PORT" -k bench:s -P 1 -c "$MANY" "${COMMON[@]}")
N_SINGLE=$(run nats_single "$NATS_PID" "$BIN/mqbench-nats" produce -p "$NATS_PORT" --stream BENCHS --subject bench.s -m sync -c "$MANY" "${COMMON[@]}")
O_ASYNC=$(ours ours_async "$BRK_PID" "$BIN/mqbench" produce -n "$NS" -t BenchAsync -m async -c "$CALLERS" "${COMMON[@]}")
O_CONS=$(ours ours_consume "$BRK_PID" "$BIN/mqbench" consume -n "$NS" -t BenchBatch -g BenchRaw --raw -c 2 -N "$CONSUME_MAX" -d 60)
R_CONS=$(run redis_consume "$REDIS_PID" "$BIN/mqbench-redis" consume -p "$REDIS_PORT" -k bench:b -b 1000 -N "$CONSUME_MAX" -d 60)
N_CONS=$(run nats_consume "$NATS_PID" "$BIN/mqbench-nats" consume -p "$NATS_PORT" --stream BENCHB --subject bench.b -b 1000 -N "$CONSUME_MAX" -d 60)
O_GROUP=$(ours ours_group "$BRK_PID" "$BIN/mqbench" consume -n "$NS" -t BenchBatch -g BenchGroup -N "$CONSUME_MAX" -d 60)
# SYNC_FLUSH: a send is answered once its records are on disk (group commit)
S_BATCH="" S_SINGLE="" S_STORE=""
if [ "$SYNC" = 1 ]; then
    S_BATCH=$(run sync_batch "$SBRK_PID" "$BIN/mqbench" produce -n "$NS2" -t BenchBatch -b "$BATCH" -c "$CALLERS" "${COMMON[@]}")
    S_SINGLE=$(run sync_single "$SBRK_PID" "$BIN/mqbench" produce -n "$NS2" -t BenchSingle -c "$MANY" "${COMMON[@]}")
    if [ -x "$BIN/mqbench-store" ]; then
        mkdir -p "$WORK/storebench-sync"
        S_STORE=$("$BIN/mqbench-store" -d "$WORK/storebench-sync" -p sync 2>/dev/null |
            grep '^RESULT' | tail -1 || true)
    fi
fi
# The store alone, in process (no protocol, no client): what the broker's batch produce costs
# on top of it is the protocol overhead.
STORE=""
if [ "$OURS" = 1 ] && [ -x "$BIN/mqbench-store" ]; then
    mkdir -p "$WORK/storebench"
    STORE=$("$BIN/mqbench-store" -q -d "$WORK/storebench" -n 1000000 -p batch100 2>/dev/null |
        grep '^RESULT' | tail -1 || true)
fi

# ---- table ----
ratio() { # ratio <ours tps> <theirs tps>
    if [ -n "$1" ] && [ -n "$2" ] && [ "${2%.*}" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'
    else
        echo "n/a"
    fi
}
cell() { # cell <RESULT line>: "tps (p50/p99 µs)"
    if [ -z "$1" ]; then echo "n/a"; return; fi
    if [ "$(val p50_us "$1")" = 0.0 ]; then printf "%s (-)" "$(val tps "$1")"; return; fi
    printf "%s (%s/%s)" "$(val tps "$1")" "$(val p50_us "$1")" "$(val p99_us "$1")"
}
cpu_cell() { # cpu_cell <RESULT line>: "server + client CPU µs per message"
    if [ -z "$1" ] || [ "$(val msgs "$1")" = 0 ]; then echo "n/a"; return; fi
    awk -v s="$(val server_cpu_s "$1")" -v c="$(val client_cpu_s "$1")" -v n="$(val msgs "$1")" \
        'BEGIN { printf "%.1f + %.1f", s * 1e6 / n, c * 1e6 / n }'
}
cpu_row() { # cpu_row <label> <ours> <redis> <nats>
    printf "| %-22s | %-16s | %-16s | %-16s |\n" "$1" "$(cpu_cell "$2")" "$(cpu_cell "$3")" "$(cpu_cell "$4")"
}
row() { # row <label> <ours> <redis> <nats>
    printf "| %-22s | %-28s | %-28s | %-28s | %-7s | %-7s |\n" "$1" "$(cell "$2")" "$(cell "$3")" \
        "$(cell "$4")" "$(ratio "$(val tps "$2")" "$(val tps "$3")")" \
        "$(ratio "$(val tps "$2")" "$(val tps "$4")")"
}
echo
echo "Loopback TCP round trip (${SIZE}-byte ping-pong): p50 $(val rtt_p50_us "$RTT") µs, p99 $(val rtt_p99_us "$RTT") µs"
echo
echo "msgs/s (p50/p99 latency µs; produce: per call, consume: per pull/XREAD/fetch)"
printf "| %-22s | %-28s | %-28s | %-28s | %-7s | %-7s |\n" workload mqfs "Redis Streams" \
    "NATS JetStream" "/Redis" "/NATS"
echo "|------------------------|------------------------------|------------------------------|------------------------------|---------|---------|"
row "batch produce (x$BATCH)" "${O_BATCH:-}" "$R_BATCH" "$N_BATCH"
row "async batch (x$BATCH)" "${O_ABATCH:-}" "$R_BATCH" "$N_BATCH"
row "single, $MANY callers" "${O_SINGLE:-}" "$R_SINGLE" "$N_SINGLE"
row "async produce" "${O_ASYNC:-}" "" "$N_BATCH"
row "consume" "${O_CONS:-}" "$R_CONS" "$N_CONS"
row "consume (group)" "${O_GROUP:-}" "$R_CONS" "$N_CONS"
STORE_TPS=$(val put100_batch_mps "$STORE")
if [ -n "$STORE_TPS" ] && [ -n "${O_BATCH:-}" ]; then
    echo
    echo "Store alone, batched 100-byte appends in process: $STORE_TPS msgs/s;" \
        "batch produce over loopback = $(ratio "$(val tps "$O_BATCH")" "$STORE_TPS") of it," \
        "async batches = $(ratio "$(val tps "${O_ABATCH:-}")" "$STORE_TPS") (the protocol and client overhead)"
fi
if [ "$SYNC" = 1 ]; then
    S64=$(val sync64_mps "$S_STORE") SCB=$(val sync_cb4096_mps "$S_STORE")
    echo
    echo "SYNC_FLUSH (answered once on disk), msgs/s (p50/p99 latency µs per call), and the store"
    echo "alone in process with SYNC_FLUSH in the same run (disk sync latency $(val msync_us "$S_STORE") µs)"
    printf "| %-22s | %-28s | %-32s | %-8s |\n" workload "mqfs broker" "store alone" "ratio"
    echo "|------------------------|------------------------------|----------------------------------|----------|"
    printf "| %-22s | %-28s | %-32s | %-8s |\n" "single, $MANY callers" "$(cell "$S_SINGLE")" \
        "${S64:-n/a} (64 sync appenders)" "$(ratio "$(val tps "$S_SINGLE")" "$S64")"
    printf "| %-22s | %-28s | %-32s | %-8s |\n" "batch produce (x$BATCH)" "$(cell "$S_BATCH")" \
        "${SCB:-n/a} (4096 callbacks)" "$(ratio "$(val tps "$S_BATCH")" "$SCB")"
fi
echo
echo "CPU per message, µs (server + client; what the 2 shared CPUs pay, so less sensitive to"
echo "other load on the machine than msgs/s)"
printf "| %-22s | %-16s | %-16s | %-16s |\n" workload mqfs "Redis Streams" "NATS JetStream"
echo "|------------------------|------------------|------------------|------------------|"
cpu_row "batch produce (x$BATCH)" "${O_BATCH:-}" "$R_BATCH" "$N_BATCH"
cpu_row "async batch (x$BATCH)" "${O_ABATCH:-}" "" ""
cpu_row "single, $MANY callers" "${O_SINGLE:-}" "$R_SINGLE" "$N_SINGLE"
cpu_row "async produce" "${O_ASYNC:-}" "" "$N_BATCH"
cpu_row "consume" "${O_CONS:-}" "$R_CONS" "$N_CONS"
cpu_row "consume (group)" "${O_GROUP:-}" "" ""
if [ "$SYNC" = 1 ]; then
    cpu_row "single, SYNC_FLUSH" "$S_SINGLE" "" ""
    cpu_row "batch, SYNC_FLUSH" "$S_BATCH" "" ""
fi
echo
echo "  batch: mqfs mqc_send_batch x$BATCH, $CALLERS callers on one producer; Redis $CALLERS connections"
echo "  pipelining $BATCH XADDs; NATS js_PublishAsync, $CALLERS threads on one connection, 4096 in flight."
echo "  async batch: mqfs mqc_send_batch_async x$BATCH, 2 callers, 16 batches in flight each."
echo "  single: mqfs mqc_send from $MANY threads on one producer; Redis $MANY connections, one XADD"
echo "  each; NATS js_Publish from $MANY threads on one connection."
echo "  consume: mqfs 2 threads of mqc_pull (1024 per pull) / 1 group consumer; Redis XREAD"
echo "  COUNT 1000; NATS durable pull consumer, fetch 1000, AckAll. Up to $CONSUME_MAX messages each."
[ "$OURS" = 1 ] || echo "  mqfs: n/a — mqbroker is not built (the store module is not in this tree yet)."
for f in "$WORK"/*.out; do
    grep -q '^RESULT' "$f" || echo "  $(basename "$f" .out): no RESULT; see its stderr above" >&2
done
if [ "$OURS" = 1 ] && grep -q 'ERROR: AddressSanitizer\|runtime error' "$WORK"/mq*.log; then
    echo "compare: sanitizer report in daemon logs" >&2
fi

t() { local v; v=$(val tps "$1"); echo "${v:-na}"; }
echo "RESULT ours=$OURS batch_tps=$(t "${O_BATCH:-}") batch_redis_tps=$(t "$R_BATCH")" \
    "batch_nats_tps=$(t "$N_BATCH") async_batch_tps=$(t "${O_ABATCH:-}") single_tps=$(t "${O_SINGLE:-}")" \
    "single_redis_tps=$(t "$R_SINGLE") single_nats_tps=$(t "$N_SINGLE")" \
    "async_tps=$(t "${O_ASYNC:-}") consume_tps=$(t "${O_CONS:-}") group_consume_tps=$(t "${O_GROUP:-}")" \
    "consume_redis_tps=$(t "$R_CONS") consume_nats_tps=$(t "$N_CONS")" \
    "store_batch_tps=${STORE_TPS:-na}" \
    "sync_single_tps=$(t "$S_SINGLE") sync_single_p50_us=$(val p50_us "$S_SINGLE")" \
    "sync_single_p99_us=$(val p99_us "$S_SINGLE") sync_batch_tps=$(t "$S_BATCH")" \
    "store_sync64_tps=${S64:-na} store_sync_cb_tps=${SCB:-na} disk_sync_us=$(val msync_us "$S_STORE")" \
    "rtt_p50_us=$(val rtt_p50_us "$RTT") rtt_p99_us=$(val rtt_p99_us "$RTT") size=$SIZE"

#!/usr/bin/env bash
# Brings mqfs up on this machine with defaults: installs dependencies, builds, then starts the
# NameServer (127.0.0.1:9876), one broker (127.0.0.1:10911) and the mqfs mount (default /mq).
# Usage: tools/up.sh [MOUNTPOINT]      Stop everything with tools/down.sh.
# State lives under $MQ_HOME (default /var/lib/mqfs): store/, conf/, log/, run/ (pid files).
set -euo pipefail
cd "$(dirname "$0")/.."
MNT=${1:-/mq}
MQ_HOME=${MQ_HOME:-/var/lib/mqfs}
BIN="$PWD/build/bin"
NAMESRV=127.0.0.1:9876

bash tools/install-deps.sh
bash tools/build.sh release
mkdir -p "$MQ_HOME"/{store,conf,log,run}

wait_port() { # wait_port <port> <pid> <name>
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "$3 exited; see $MQ_HOME/log/$3.log" >&2; return 1; }
        sleep 0.1
    done
    echo "$3 did not start listening on port $1" >&2
    return 1
}

running() { [ -f "$MQ_HOME/run/$1.pid" ] && kill -0 "$(cat "$MQ_HOME/run/$1.pid")" 2>/dev/null; }

started=()
if [ -x "$BIN/mqnamesrv" ] && ! running mqnamesrv; then
    "$BIN/mqnamesrv" -p 9876 >>"$MQ_HOME/log/mqnamesrv.log" 2>&1 &
    echo $! >"$MQ_HOME/run/mqnamesrv.pid"
    wait_port 9876 $! mqnamesrv
    started+=("NameServer on $NAMESRV")
fi
if [ -x "$BIN/mqbroker" ] && ! running mqbroker; then
    conf="$MQ_HOME/conf/broker.conf"
    [ -f "$conf" ] || printf 'brokerClusterName=DefaultCluster\nbrokerName=broker-a\nbrokerId=0\nlistenPort=10911\nnamesrvAddr=%s\nstorePathRootDir=%s\nflushDiskType=ASYNC_FLUSH\n' \
        "$NAMESRV" "$MQ_HOME/store" >"$conf"
    "$BIN/mqbroker" -c "$conf" >>"$MQ_HOME/log/mqbroker.log" 2>&1 &
    echo $! >"$MQ_HOME/run/mqbroker.pid"
    wait_port 10911 $! mqbroker
    started+=("broker on 127.0.0.1:10911 (store in $MQ_HOME/store)")
fi
if [ -x "$BIN/mqfs" ] && ! running mqfs; then
    mkdir -p "$MNT"
    "$BIN/mqfs" "$MNT" -n "$NAMESRV" -f >>"$MQ_HOME/log/mqfs.log" 2>&1 &
    echo $! >"$MQ_HOME/run/mqfs.pid"
    echo "$MNT" >"$MQ_HOME/run/mqfs.mnt"
    for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
    mountpoint -q "$MNT" || { echo "mqfs did not mount $MNT; see $MQ_HOME/log/mqfs.log" >&2; exit 1; }
    started+=("mqfs mounted at $MNT")
fi

echo "mqfs is up. Running now:"
for s in "${started[@]+"${started[@]}"}"; do echo "  - $s"; done
for p in mqnamesrv mqbroker mqfs; do running "$p" && echo "  - $p (pid $(cat "$MQ_HOME/run/$p.pid"))"; done
if mountpoint -q "$MNT" 2>/dev/null; then
    cat <<USAGE
Try:
  echo hello > $MNT/topic/TopicA        # send a message
  cat $MNT/topic/TopicA                 # read the topic's log (consumes nothing)
  tail -f $MNT/topic/TopicA             # follow it
  mkdir $MNT/group/G1                   # a consumer group
  head -n 1 $MNT/group/G1/TopicA        # consume one message as group G1
  cat $MNT/group/G1/TopicA.now          # consume the rest, then EOF
USAGE
fi
echo "Logs: $MQ_HOME/log/   Stop: tools/down.sh"

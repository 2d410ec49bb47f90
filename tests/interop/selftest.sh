#!/usr/bin/env bash
# Self-test of the interop driver: runs produce.js / consume.js (the stock ali-ons client) against
# capture.py, the logging stand-in NameServer + broker, and checks the results. It needs no mqfs
# binaries, so it tells "the driver works" apart from "our servers work".
# Usage: tests/interop/selftest.sh [NAMESRV_PORT [BROKER_PORT]]   (defaults 19876 20911)
# Frames are logged to $TMPDIR/mqfs-interop-selftest.XXXX/frames.jsonl (kept on failure).
set -euo pipefail
cd "$(dirname "$0")"
NS_PORT=${1:-19876}
BR_PORT=${2:-20911}
NS=127.0.0.1:$NS_PORT
bash setup.sh >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/mqfs-interop-selftest.XXXX")
python3 capture.py --namesrv-port "$NS_PORT" --broker-port "$BR_PORT" --topic SelfTopic \
    --duration 90 --log "$work/frames.jsonl" &
cap=$!
cleanup() { kill "$cap" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$BR_PORT") 2>/dev/null && break
    sleep 0.1
done

fail() { echo "selftest: FAIL: $*" >&2; echo "selftest: frames in $work/frames.jsonl" >&2; exit 1; }

node produce.js --namesrv "$NS" --topic SelfTopic --count 6 --tags TagA,TagB,TagC --keys k \
    >"$work/produce.out" || fail "produce.js exited $?"
node consume.js --namesrv "$NS" --group SelfG1 --topic SelfTopic --tags 'TagA||TagB' --count 4 \
    --timeout-ms 20000 >"$work/consume1.out" || fail "consume.js (tags) exited $?"
rc=0
node consume.js --namesrv "$NS" --group SelfG1 --topic SelfTopic --tags 'TagA||TagB' --count 1 \
    --timeout-ms 4000 >"$work/consume2.out" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "second consume.js of the same group should time out (exit 2), got $rc"
node consume.js --namesrv "$NS" --group SelfG2 --topic SelfTopic --count 6 --fail-first \
    --timeout-ms 30000 >"$work/consume3.out" || fail "consume.js --fail-first exited $?"

python3 - "$work" <<'PY' || fail "result check"
import json, sys
w = sys.argv[1]
load = lambda f: [json.loads(l) for l in open(f"{w}/{f}")]
sent = load("produce.out")
assert len(sent) == 6 and all(s["status"] == "SEND_OK" for s in sent), sent
by_key = {s["keys"]: s for s in sent}
got = [m for m in load("consume1.out") if m["action"] == "ok"]
assert sorted(m["keys"] for m in got) == ["k-0", "k-1", "k-3", "k-4"], got
for m in got:
    s = by_key[m["keys"]]
    assert (m["msgId"], m["queueId"], m["queueOffset"], m["tags"], m["body"]) == \
        (s["msgId"], s["queueId"], s["queueOffset"], s["tags"], s["body"]), (m, s)
assert load("consume2.out") == []
third = load("consume3.out")
fails = [m for m in third if m["action"] == "fail"]
oks = [m for m in third if m["action"] == "ok"]
assert sorted(m["keys"] for m in fails) == sorted(by_key), fails
assert sorted(m["keys"] for m in oks) == sorted(by_key), oks
for m in oks:
    assert m["reconsumeTimes"] >= 1 and m["retryTopic"] == "SelfTopic", m
    assert m["originMsgId"] == by_key[m["keys"]]["msgId"], m
PY
rm -rf "$work"
echo "selftest: ok (send, tag filter, offset commit, retry via %RETRY%)"

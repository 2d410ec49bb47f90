"""test_interop.py — a RocketMQ client nobody here wrote: the ali-ons npm package (pinned in
tests/interop/package-lock.json) sends messages with tags and keys through our NameServer and
broker and consumes them with its push consumer (rebalance, offset commit, retry through
CONSUMER_SEND_MSG_BACK, delayed messages). Facts behind it: docs/INTEROP.md."""

import json
import os
import subprocess

import pytest

import mqproto as mp
from brokers import *  # noqa: F401,F403
from brokers import broker_factory, pull, wait_route  # noqa: F401
from conftest import REPO

INTEROP = os.path.join(REPO, "tests", "interop")


@pytest.fixture(scope="module")
def node_ready():
    r = subprocess.run(["bash", os.path.join(INTEROP, "setup.sh")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, "tests/interop/setup.sh failed:\n" + r.stdout + r.stderr


def node(script, *args, timeout=60):
    r = subprocess.run(["node", os.path.join(INTEROP, script)] + list(args), cwd=INTEROP,
                       capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    return r.returncode, lines, r.stderr


def test_ali_ons_produce_and_consume(node_ready, namesrv, broker_factory):
    # Short delay levels: the retry path below backs off by level 3 (10 s by default)
    b = broker_factory(namesrv=namesrv, messageDelayLevel="2s 1s 1s 1s 1s")
    ns = "127.0.0.1:%d" % namesrv.port
    with mp.Client(b.port) as cli:
        create_topic(cli, "InteropT", queues=4)
    wait_route(namesrv.port, "InteropT")

    rc, sent, err = node("produce.js", "--namesrv", ns, "--topic", "InteropT", "--count", "8",
                         "--tags", "TagA,TagB,TagC", "--keys", "k")
    assert rc == 0, err
    assert len(sent) == 8 and all(s["status"] == "SEND_OK" for s in sent), sent
    by_key = {s["keys"]: s for s in sent}

    # Tag filtering, and the consumer sees what the producer was told (msgId, queue, offset).
    rc, got, err = node("consume.js", "--namesrv", ns, "--group", "IG1", "--topic", "InteropT",
                        "--tags", "TagA||TagB", "--count", "6", "--timeout-ms", "30000",
                        timeout=60)
    assert rc == 0, err
    ok = [m for m in got if m["action"] == "ok"]
    assert sorted(m["keys"] for m in ok) == sorted(k for i, k in enumerate(
        "k-%d" % i for i in range(8)) if i % 3 != 2)
    for m in ok:
        s = by_key[m["keys"]]
        assert (m["msgId"], m["queueId"], m["queueOffset"], m["tags"], m["body"]) == \
            (s["msgId"], s["queueId"], s["queueOffset"], s["tags"], s["body"]), (m, s)

    # Offsets were committed: the same group gets nothing more.
    rc, got, err = node("consume.js", "--namesrv", ns, "--group", "IG1", "--topic", "InteropT",
                        "--tags", "TagA||TagB", "--count", "1", "--timeout-ms", "5000",
                        timeout=30)
    assert rc == 2 and got == [], (rc, got, err)

    # The retry path: every first delivery fails and comes back through %RETRY%IG2.
    rc, got, err = node("consume.js", "--namesrv", ns, "--group", "IG2", "--topic", "InteropT",
                        "--count", "8", "--fail-first", "--timeout-ms", "40000", timeout=80)
    assert rc == 0, err
    fails = [m for m in got if m["action"] == "fail"]
    oks = [m for m in got if m["action"] == "ok"]
    assert sorted(m["keys"] for m in fails) == sorted(by_key)
    assert sorted(m["keys"] for m in oks) == sorted(by_key)
    for m in oks:
        assert m["reconsumeTimes"] >= 1 and m["retryTopic"] == "InteropT", m
        assert m["originMsgId"] == by_key[m["keys"]]["msgId"], m

    # A delayed message (ali-ons's delayTimeLevel): not in its topic when the send is answered
    # (level 1 is 2 s here), then consumed as usual.
    rc, delayed, err = node("produce.js", "--namesrv", ns, "--topic", "InteropT", "--count", "1",
                            "--keys", "late", "--delay-level", "1")
    assert rc == 0 and delayed[0]["status"] == "SEND_OK", err
    with mp.Client(b.port) as cli:
        q = delayed[0]["queueId"]
        p = pull(cli, "InteropT", q, 0, max_nums=32)
        assert "late-0" not in [r.props.get("KEYS") for r in p.records]
    rc, got, err = node("consume.js", "--namesrv", ns, "--group", "IG3", "--topic", "InteropT",
                        "--count", "9", "--timeout-ms", "30000", timeout=60)
    assert rc == 0, err
    late = [m for m in got if m["keys"] == "late-0"]
    assert late and late[0]["action"] == "ok", late


def test_ali_ons_sql92_subscription(node_ready, namesrv, broker_factory):
    """ali-ons' SQL92 subscription ({expressionType: 'SQL92', subString}) against a broker with
    enablePropertyFilter=true: ali-ons registers the expression in its heartbeat and pulls
    without it (no subscription flag), so the broker filters by the group's registered
    subscription; only the messages whose user property matches are delivered."""
    b = broker_factory(namesrv=namesrv, enablePropertyFilter="true")
    ns = "127.0.0.1:%d" % namesrv.port
    with mp.Client(b.port) as cli:
        create_topic(cli, "InteropSql", queues=2)
    wait_route(namesrv.port, "InteropSql")
    rc, sent, err = node("produce.js", "--namesrv", ns, "--topic", "InteropSql", "--count", "10",
                         "--keys", "s", "--index-prop", "n")
    assert rc == 0 and len(sent) == 10, err
    # every queue holds non-matching messages before matching ones: unfiltered, they would
    # be delivered first
    want = {"s-2", "s-6", "s-7", "s-8", "s-9"}
    rc, got, err = node("consume.js", "--namesrv", ns, "--group", "IGSql", "--topic",
                        "InteropSql", "--sql", "n = 2 OR (n IS NOT NULL AND n >= 6)",
                        "--count", str(len(want)), "--timeout-ms", "30000", timeout=60)
    assert rc == 0, err
    assert {m["keys"] for m in got} == want, got
    assert all(m["action"] == "ok" for m in got), got
    b.check_clean()

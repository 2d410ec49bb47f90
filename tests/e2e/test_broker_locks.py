"""test_broker_locks.py — what stock consumers ask the broker besides pulls: queue locks of
orderly consumers (LOCK_BATCH_MQ 41, UNLOCK_BATCH_MQ 42; RocketMQ's RebalanceLockManager), which
a Java client consuming in order asks for before it pulls a queue — one client per queue of a
group, renewed by each lock request, free again after rebalanceLockMaxLiveTime without one or
at once when its holder unlocks — and CHECK_CLIENT_CONFIG / SQL92 subscriptions, which this
broker refuses with RocketMQ's answer by default (enablePropertyFilter=false; the filter itself
is test_broker_sql92.py's)."""

import json
import time

import mqproto as mp
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory  # noqa: F401

LOCK_BATCH_MQ = 41
UNLOCK_BATCH_MQ = 42
CHECK_CLIENT_CONFIG = 46


def mqs(topic, *qids, broker="broker-a"):
    return [{"topic": topic, "brokerName": broker, "queueId": q} for q in qids]


def lock(cli, group, client, queues, code=LOCK_BATCH_MQ):
    body = json.dumps({"consumerGroup": group, "clientId": client, "onlyThisBroker": False,
                       "mqSet": queues}).encode()
    r = cli.call(code, {}, body)
    assert r.code == mp.SUCCESS, r
    if code == LOCK_BATCH_MQ:
        return sorted(m["queueId"] for m in r.json_body()["lockOKMQSet"])
    return None


def test_orderly_queue_locks(broker_factory):
    b = broker_factory(rebalanceLockMaxLiveTime=1500)
    with mp.Client(b.port) as cli:
        assert lock(cli, "GO", "c1@1", mqs("TO", 0, 1, 2)) == [0, 1, 2]
        # Another client of the group gets only what nobody holds; another group is separate.
        assert lock(cli, "GO", "c2@1", mqs("TO", 1, 2, 3)) == [3]
        assert lock(cli, "GX", "c2@1", mqs("TO", 1)) == [1]
        # The holder unlocks one: the other client takes it; unlocking another's lock does nothing.
        lock(cli, "GO", "c1@1", mqs("TO", 1), code=UNLOCK_BATCH_MQ)
        lock(cli, "GO", "c2@1", mqs("TO", 0), code=UNLOCK_BATCH_MQ)
        assert lock(cli, "GO", "c2@1", mqs("TO", 0, 1)) == [1]
        # Renewed locks last; a lock not renewed for the live time is free for another client.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert lock(cli, "GO", "c2@1", mqs("TO", 1, 3)) == [1, 3]
            time.sleep(0.3)
        assert lock(cli, "GO", "c2@1", mqs("TO", 0, 2)) == [0, 2]  # c1 stopped renewing
        assert lock(cli, "GO", "c1@1", mqs("TO", 0, 1, 2, 3)) == []
        # Bad bodies are answered, not fatal; entries with bad fields are not locked.
        for bad in (b"", b"{", b'{"consumerGroup":"GO"}', b'{"consumerGroup":"GO","clientId":""}',
                    b'{"consumerGroup":"GO","clientId":"c","mqSet":5}'):
            assert cli.call(LOCK_BATCH_MQ, {}, bad).code == mp.SYSTEM_ERROR
        assert lock(cli, "GO", "c3@1", [{"topic": "TO", "brokerName": "b", "queueId": -1},
                                         {"topic": "bad topic", "brokerName": "b", "queueId": 0},
                                         {"topic": "TO", "queueId": 9}]) == []
    b.check_clean()


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) // 1024


def sanitized(pid):
    """Sanitizer builds quarantine freed memory: their RSS says nothing of the table's."""
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in line or "libubsan" in line for line in f)


def test_lock_table_is_bounded_in_bytes(broker_factory):
    """The lock table was bounded by count only (2^20): one client locking long-named queues
    made the broker hold ~700 MiB for as long as it renewed them. It is now bounded by bytes
    too (64 MiB of names and client ids): past that a new lock is refused, a held one is still
    renewed and an unlock makes room again."""
    b = broker_factory()
    rss0 = rss_mib(b.proc.pid)
    client = "c" * 255
    long_mqs = [{"topic": "T" * 127, "brokerName": "B" * 120, "queueId": q}
                for q in range(1000)]
    granted, refused = 0, 0
    with mp.Client(b.port) as cli:
        for g in range(250):
            n = len(lock(cli, "G%0120d" % g, client, long_mqs))
            granted += n
            refused += n < 1000
            if refused > 3:
                break
        assert refused and granted < 150000, granted
        if not sanitized(b.proc.pid):
            assert rss_mib(b.proc.pid) - rss0 < 256
        # held locks are still renewed; new ones wait until an unlock makes room
        assert len(lock(cli, "G%0120d" % 0, client, long_mqs)) == 1000
        assert lock(cli, "GN", client, long_mqs) == []
        lock(cli, "G%0120d" % 0, client, long_mqs, code=UNLOCK_BATCH_MQ)
        assert len(lock(cli, "GN", client, long_mqs)) == 1000
    b.check_clean()


def test_sql92_subscriptions_are_refused_clearly(broker_factory):
    """By default the broker filters by tags only (RocketMQ's enablePropertyFilter=false): a SQL92
    subscription gets RocketMQ's answer instead of being read as a tag expression (which
    matched nothing, so the consumer silently got no message)."""
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TS", queues=1)
        assert send(cli, "TS", b"m", tags="a").code == mp.SUCCESS
        sql = {"topic": "TS", "subString": "a > 5", "expressionType": "SQL92", "tagsSet": [],
               "codeSet": [], "subVersion": 1}
        r = cli.call(CHECK_CLIENT_CONFIG, {}, json.dumps(
            {"clientId": "c@1", "group": "GS", "subscriptionData": sql}).encode())
        assert r.code == mp.SYSTEM_ERROR and "filter message by SQL92" in r.remark, r
        tag = dict(sql, subString="a", expressionType="TAG")
        assert cli.call(CHECK_CLIENT_CONFIG, {}, json.dumps(
            {"clientId": "c@1", "group": "GS", "subscriptionData": tag}).encode()).code == 0
        p = pull(cli, "TS", 0, 0, expr="a > 5", expr_type="SQL92")
        assert p.code == mp.SYSTEM_ERROR and "SQL92" in p.remark, p
        # From the heartbeat's subscription (a pull without the subscription flag) too.
        hb = {"clientID": "c@1", "producerDataSet": [],
              "consumerDataSet": [{"groupName": "GS", "consumeType": "CONSUME_PASSIVELY",
                                   "messageModel": "CLUSTERING",
                                   "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
                                   "unitMode": False, "subscriptionDataSet": [sql]}]}
        assert cli.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS
        p = pull(cli, "TS", 0, 0, group="GS", has_sub=False)
        assert p.code == mp.SYSTEM_ERROR and "SQL92" in p.remark, p
        assert [x.body for x in pull(cli, "TS", 0, 0, expr="a").records] == [b"m"]
    b.check_clean()

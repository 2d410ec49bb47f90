"""test_client.py — libmqclient end to end, through the example programs (tools/examples) and
mqadmin against real mqnamesrv/mqbroker processes: every send mode (sync, async, oneway, batch,
ordered), tag subscriptions, compression on the wire (checked with the independent Python
decoder), route refresh when a topic appears on a second broker, failover when a broker dies,
and rebalancing as group members join and leave."""

import collections

import pytest

import mqproto as mp
import mqrecord as mr
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory, pull  # noqa: F401
from conftest import free_port
from clientkit import (Proc, addr, admin, create_topic, expected_body, msgs, route_brokers,
                       run, wait_for)


@pytest.fixture
def cluster(namesrv, broker_factory):
    """One NameServer and one broker registered with it."""
    b = broker_factory(namesrv=namesrv)
    assert wait_for(lambda: route_brokers(namesrv, "TBW102")), "broker not registered"
    return namesrv, b


def consume(ns, topic, group, count, *extra, timeout=20):
    """Runs the group consumer until it has `count` messages (or 3 s idle)."""
    rc, out, err = run("example_consumer_pull", "-t", topic, "-g", group, "-c", count,
                       "-w", 3000, *extra, ns=ns, timeout=timeout)
    assert rc == 0, err
    return msgs(out)


def ok_lines(out):
    return [l.split() for l in out if l.startswith("OK ")]


def test_sync_send_and_tag_subscription(cluster):
    ns, b = cluster
    create_topic(ns, "TSync", queues=4)
    sent = {}
    for tag in ("TagA", "TagB", "TagC"):
        rc, out, err = run("example_producer_sync", "-t", "TSync", "-c", 10, "-T", tag, ns=ns)
        assert rc == 0, (out, err)
        oks = ok_lines(out)
        assert [int(o[1]) for o in oks] == list(range(10))
        for o in oks:  # OK i broker qid offset msgId offsetMsgId
            assert o[2] == "broker-a" and 0 <= int(o[3]) < 4
            assert len(o[5]) == 32 and len(o[6]) == 32
            sent[(o[2], int(o[3]), int(o[4]))] = (tag, "sync-%s" % o[1])
    assert len(sent) == 30  # distinct queue positions
    got = consume(ns, "TSync", "GSyncAB", 20, "-e", "TagA || TagB")
    assert len(got) == 20
    for broker, qid, off, tags, body in got:
        assert sent[(broker, qid, off)] == (tags, body)
        assert tags in ("TagA", "TagB")
    # A second group sees everything from the start; per queue in offset order.
    got = consume(ns, "TSync", "GSyncAll", 30)
    assert {(m[0], m[1], m[2]) for m in got} == set(sent)
    per_queue = collections.defaultdict(list)
    for m in got:
        per_queue[m[1]].append(m[2])
    assert all(v == sorted(v) for v in per_queue.values())


def test_async_send(cluster):
    ns, _ = cluster
    create_topic(ns, "TAsync", queues=4)
    rc, out, err = run("example_producer_async", "-t", "TAsync", "-c", 200, ns=ns)
    assert rc == 0, (out[-5:], err)
    oks = ok_lines(out)
    assert sorted(int(o[1]) for o in oks) == list(range(200))
    assert len({(o[3], o[4]) for o in oks}) == 200  # each at its own queue offset
    got = consume(ns, "TAsync", "GAsync", 200)
    assert sorted(m[4] for m in got) == sorted("async-%d" % i for i in range(200))


def test_oneway_send(cluster):
    ns, _ = cluster
    create_topic(ns, "TOneway", queues=2)
    rc, out, err = run("example_producer_oneway", "-t", "TOneway", "-c", 50, ns=ns)
    assert rc == 0, err
    assert out == ["SENT %d" % i for i in range(50)]
    # Nothing acknowledges a oneway send: wait until all 50 are stored.
    def stored():
        rc, rows, _ = admin(ns, "topicStatus", "-t", "TOneway", as_json=True)
        return rc == 0 and sum(r["maxOffset"] for r in rows) == 50
    assert wait_for(stored, timeout=5)
    got = consume(ns, "TOneway", "GOneway", 50)
    assert sorted(m[4] for m in got) == sorted("oneway-%d" % i for i in range(50))


def test_batch_send(cluster):
    ns, _ = cluster
    create_topic(ns, "TBatch", queues=4)
    rc, out, err = run("example_producer_batch", "-t", "TBatch", "-c", 25, "-b", 10, ns=ns)
    assert rc == 0, (out, err)
    batches = ok_lines(out)  # OK first n broker qid firstOffset
    assert [(int(o[1]), int(o[2])) for o in batches] == [(0, 10), (10, 10), (20, 5)]
    where = {}
    for o in batches:
        for k in range(int(o[2])):  # one queue, consecutive offsets, in order
            where[(o[3], int(o[4]), int(o[5]) + k)] = "batch-%d" % (int(o[1]) + k)
    got = consume(ns, "TBatch", "GBatch", 25)
    assert {(m[0], m[1], m[2]): m[4] for m in got} == where


def test_ordered_send(cluster):
    ns, _ = cluster
    create_topic(ns, "TOrder", queues=4)
    rc, out, err = run("example_producer_ordered", "-t", "TOrder", "-c", 60, "-k", 6, ns=ns)
    assert rc == 0, (out, err)
    queue_of = {}
    for o in ok_lines(out):  # OK i orderId step broker qid offset
        q = (o[4], int(o[5]))
        assert queue_of.setdefault(o[2], q) == q, "order %s moved queues" % o[2]
    assert len(queue_of) == 6
    got = consume(ns, "TOrder", "GOrder", 60)
    assert len(got) == 60
    steps = collections.defaultdict(list)
    for broker, qid, off, _, body in sorted(got, key=lambda m: (m[0], m[1], m[2])):
        _, oid, _, step = body.split("-")
        assert queue_of[oid] == (broker, qid)
        steps[oid].append(int(step))
    assert all(v == list(range(10)) for v in steps.values())  # every order in sequence


@pytest.mark.parametrize("algo,ctype", [("zlib", 0), ("zstd", mr.SYSFLAG_COMPRESS_ZSTD)])
def test_compression_round_trip(cluster, algo, ctype):
    ns, b = cluster
    topic = "TZ" + algo
    create_topic(ns, topic, queues=1)
    size = 6000  # over compressMsgBodyOverHowmuch (4 KiB)
    rc, out, err = run("example_producer_sync", "-t", topic, "-c", 3, "-s", size, "-z", algo,
                       ns=ns)
    assert rc == 0, (out, err)
    with mp.Client(b.port) as cli:
        recs = pull(cli, topic, 0, 0).records
    assert len(recs) == 3
    for i, r in enumerate(recs):
        assert r.sysflag & mr.SYSFLAG_COMPRESSED, "body not compressed on the wire"
        assert len(r.raw_body) < size // 2
        if ctype == 0:  # zlib: what 4.x clients inflate; the Python decoder inflates it too
            assert r.sysflag & mr.SYSFLAG_COMPRESS_MASK in (0, mr.SYSFLAG_COMPRESS_ZLIB)
            assert r.body == expected_body("sync", i, size)
        else:
            assert r.sysflag & mr.SYSFLAG_COMPRESS_MASK == ctype
    got = consume(ns, topic, "GZ" + algo, 3)
    assert [m[4].encode() for m in got] == [expected_body("sync", i, size) for i in range(3)]
    # Under the threshold nothing is compressed.
    rc, _, err = run("example_producer_sync", "-t", topic, "-c", 1, "-s", 4000, "-z", algo,
                     ns=ns)
    assert rc == 0, err
    with mp.Client(b.port) as cli:
        r = pull(cli, topic, 0, 3).records[0]
    assert not r.sysflag & mr.SYSFLAG_COMPRESSED and r.body == expected_body("sync", 0, 4000)


def test_route_refresh_reaches_new_broker(namesrv, broker_factory):
    ns = namesrv
    a = broker_factory(namesrv=ns, name="broker-a")
    b = broker_factory(namesrv=ns, name="broker-b")
    assert wait_for(lambda: route_brokers(ns, "TBW102") == {"broker-a", "broker-b"})
    create_topic(ns, "TRefresh", queues=2, broker=a)
    assert route_brokers(ns, "TRefresh") == {"broker-a"}
    # A producer refreshing its routes every 300 ms (pollNameServerInterval).
    p = Proc("example_producer_sync", "-t", "TRefresh", "-c", 1000, "-i", 10, "-r", 300, ns=ns)
    try:
        assert wait_for(lambda: len(p.lines("OK ")) >= 20, timeout=10), p.stderr()
        assert {l.split()[2] for l in p.lines("OK ")} == {"broker-a"}
        create_topic(ns, "TRefresh", queues=2, broker=b, expect=("broker-a", "broker-b"))
        assert wait_for(lambda: any(l.split()[2] == "broker-b" for l in p.lines("OK ")),
                        timeout=5), "sends never reached the new broker"
    finally:
        p.stop()
    assert not p.lines("FAIL")
    assert {l.split()[2] for l in p.lines("OK ")} == {"broker-a", "broker-b"}


def test_failover_when_a_broker_dies(namesrv, broker_factory):
    ns = namesrv
    a = broker_factory(namesrv=ns, name="broker-a")
    b = broker_factory(namesrv=ns, name="broker-b")
    assert wait_for(lambda: route_brokers(ns, "TBW102") == {"broker-a", "broker-b"})
    create_topic(ns, "TFail", queues=2, expect=("broker-a", "broker-b"))
    p = Proc("example_producer_sync", "-t", "TFail", "-c", 300, "-i", 10, "-r", 300, ns=ns)
    try:
        assert wait_for(lambda: len(p.lines("OK ")) >= 40, timeout=10), p.stderr()
        assert {l.split()[2] for l in p.lines("OK ")} == {"broker-a", "broker-b"}
        b.kill()
        at_kill = len(p.lines())
        p.wait(timeout=25)
    finally:
        p.kill()
    after = p.lines()[at_kill:]
    fails = [l for l in after if l.startswith("FAIL")]
    assert len(fails) <= 3, fails  # retries on the other broker hide the loss
    settled = after[10:]
    assert settled and all(l.startswith("OK ") and l.split()[2] == "broker-a"
                           for l in settled), settled[:5]
    assert a.alive()


def owned(p):
    """The queues a consumer (run with -v) reports owning last."""
    lines = p.lines("OWNED")
    return set(lines[-1].split()[1:]) if lines else set()


def partitioned(procs, all_queues):
    """True when the consumers own disjoint sets that together cover every queue."""
    sets = [owned(p) for p in procs]
    union = set().union(*sets)
    return union == all_queues and sum(len(s) for s in sets) == len(all_queues)


def test_rebalance_as_consumers_join_and_leave(cluster):
    ns, _ = cluster
    create_topic(ns, "TRebal", queues=8)
    queues = {"broker-a:%d" % q for q in range(8)}
    args = ("example_consumer_pull", "-t", "TRebal", "-g", "GRebal", "-c", 0, "-r", 500, "-v")
    procs = [Proc(*args, ns=ns), Proc(*args, ns=ns)]
    try:
        def received():  # (broker, queue, offset) of every delivery, by every member
            return [m[:3] for p in procs for m in msgs(p.lines("MSG"))]

        def phase(first, n):
            rc, out, err = run("example_producer_sync", "-t", "TRebal", "-c", n, ns=ns)
            assert rc == 0, err
            expect = n + first
            assert wait_for(lambda: len(received()) >= expect, timeout=10), len(received())
            # Every acked offset committed before membership changes (no sleep: ask the broker).
            assert wait_for(lambda: admin(ns, "consumerProgress", "-g", "GRebal", "-t",
                                          "TRebal", as_json=True)[1]["diffTotal"] == 0,
                            timeout=5)

        assert wait_for(lambda: partitioned(procs, queues), timeout=10), [owned(p) for p in procs]
        phase(0, 40)
        procs.append(Proc(*args, ns=ns))  # a third member joins
        assert wait_for(lambda: partitioned(procs, queues) and owned(procs[2]), timeout=10), \
            [owned(p) for p in procs]
        phase(40, 40)
        assert msgs(procs[2].lines("MSG")), "the new member got nothing"
        assert procs[0].stop() == 0  # one leaves (commits, unregisters)
        assert wait_for(lambda: partitioned(procs[1:], queues), timeout=10), \
            [owned(p) for p in procs[1:]]
        phase(80, 40)
    finally:
        for p in procs:
            p.stop()
    seen = received()
    dups = [k for k, v in collections.Counter(seen).items() if v > 1]
    assert not dups, "delivered twice: %s" % dups[:5]
    assert len(seen) == 120


def test_examples_report_failures():
    """No cluster: every example says FAIL per message (or fails to start) and exits non-zero,
    so the tests above would notice a send that did not happen."""
    dead = "127.0.0.1:%d" % free_port()
    for prog in ("example_producer_sync", "example_producer_async", "example_producer_oneway",
                 "example_producer_batch", "example_producer_ordered"):
        rc, out, err = run(prog, "-n", dead, "-t", "TDead", "-c", 2, timeout=30)
        assert rc == 1, (prog, out, err)
        assert not [l for l in out if l.startswith(("OK", "SENT"))], (prog, out)
    rc, out, err = run("example_producer_sync", "-n", dead, "-z", "lz4")
    assert rc == 2 and "usage" in err


def test_retry_later_comes_back_through_the_retry_topic(namesrv, broker_factory):
    """mqc_consumer_retry_later (RocketMQ's RECONSUME_LATER): the first delivery of each message
    goes back to the broker, the queue moves on, and the message returns from %RETRY%<group>
    after the level's delay with reconsume_times 1 and RETRY_TOPIC naming its topic."""
    b = broker_factory(namesrv=namesrv, messageDelayLevel="1s 2s")
    assert wait_for(lambda: route_brokers(namesrv, "TBW102")), "broker not registered"
    create_topic(namesrv, "TRetry", 2)
    rc, _, err = run("example_producer_sync", "-t", "TRetry", "-c", 4, ns=namesrv)
    assert rc == 0, err
    rc, out, err = run("example_consumer_pull", "-t", "TRetry", "-g", "GRetry", "-c", 4,
                       "-w", 8000, "-L", 2, ns=namesrv, timeout=40)
    assert rc == 0, err
    retried = sorted(l.split(" ", 3)[3] for l in out if l.startswith("RETRY TRetry "))
    back = [l for l in out if l.startswith("MSG ")]
    bodies = sorted(expected_body("sync", i).decode() for i in range(4))
    assert retried == bodies, out
    assert sorted(l.split(" ", 5)[5].split(" reconsumed=")[0] for l in back) == bodies, out
    assert all(l.endswith(" reconsumed=1 from=TRetry") for l in back), out
    # The group's offsets moved past the retried messages: nothing comes again from TRetry.
    rc, out, err = run("example_consumer_pull", "-t", "TRetry", "-g", "GRetry", "-c", 1,
                       "-w", 2500, ns=namesrv, timeout=20)
    assert rc == 0 and [l for l in out if l.startswith("MSG ")] == [], out

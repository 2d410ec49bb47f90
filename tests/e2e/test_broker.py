"""test_broker.py — mqbroker end to end through the independent Python encoder: send and pull
(JSON and binary headers, V1 and V2 send headers), batches, tag filtering, long polling,
consumer offsets across restarts, key and id lookups, NameServer registration, bad input, and
SIGKILL in the middle of sync-flush sends. The retry/DLQ path: test_broker_delay.py."""

import os
import signal
import socket
import struct
import threading
import time

import pytest

import mqproto as mp
import mqrecord as mr
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory  # noqa: F401


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return None


def test_send_pull_round_trip(broker_factory):
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "T1", queues=2)
        sent = []
        for i, (v2, ser) in enumerate([(True, mp.JSON), (False, mp.JSON), (True, mp.ROCKETMQ),
                                       (False, mp.ROCKETMQ)]):
            r = send(cli, "T1", b"hello-%d" % i, queue_id=1, tags="TagA", keys="k%d" % i, v2=v2,
                     serialize=ser)
            assert r.code == mp.SUCCESS, r
            assert r.serialize == ser
            assert int(r.ext["queueId"]) == 1
            assert int(r.ext["queueOffset"]) == i
            assert len(r.ext["msgId"]) == 32
            sent.append(r.ext["msgId"])
        p = pull(cli, "T1", 1, 0)
        assert p.code == mp.SUCCESS, p
        assert [r.body for r in p.records] == [b"hello-%d" % i for i in range(4)]
        assert [r.queue_offset for r in p.records] == [0, 1, 2, 3]
        assert [r.msg_id for r in p.records] == sent  # offset msg id = store host + phys
        rec = p.records[0]
        assert rec.topic == "T1" and rec.queue_id == 1
        assert rec.props["TAGS"] == "TagA" and rec.props["KEYS"] == "k0"
        assert rec.store_host == bytes([127, 0, 0, 1]) and rec.store_port == b.port
        assert int(p.ext["nextBeginOffset"]) == 4
        assert int(p.ext["minOffset"]) == 0 and int(p.ext["maxOffset"]) == 4
        # Past the end: PULL_NOT_FOUND with the offsets; far past: OFFSET_MOVED.
        p = pull(cli, "T1", 1, 4)
        assert p.code == PULL_NOT_FOUND and int(p.ext["nextBeginOffset"]) == 4
        p = pull(cli, "T1", 1, 100)
        # RocketMQ's rule: back to the min offset when it is 0, else to the max.
        assert p.code == PULL_OFFSET_MOVED and int(p.ext["nextBeginOffset"]) == 0
        # Another queue is untouched.
        assert pull(cli, "T1", 0, 0).code == PULL_NOT_FOUND


def test_batch_and_tag_filter(broker_factory):
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TB", queues=1)
        msgs = [(b"m%d" % i, mr.props(TAGS="Tag%s" % "ABC"[i % 3], KEYS="key%d" % i))
                for i in range(30)]
        ext = {"a": "PG", "b": "TB", "c": "TBW102", "d": "4", "e": "0", "f": "0",
               "g": str(int(time.time() * 1000)), "h": "0", "i": mr.props(WAIT="true"),
               "j": "0", "k": "false", "m": "true"}
        r = cli.call(SEND_BATCH_MESSAGE, ext, mr.batch_body(msgs))
        assert r.code == mp.SUCCESS, r
        assert len(r.ext["msgId"].split(",")) == 30
        assert int(r.ext["queueOffset"]) == 0
        p = pull(cli, "TB", 0, 0, max_nums=100)
        assert [x.body for x in p.records] == [m[0] for m in msgs]
        p = pull(cli, "TB", 0, 0, max_nums=100, expr="TagA || TagC")
        assert p.code == mp.SUCCESS
        assert [x.body for x in p.records] == [b"m%d" % i for i in range(30) if i % 3 != 1]
        # A malformed batch body is refused and stores nothing.
        r = cli.call(SEND_BATCH_MESSAGE, ext, mr.batch_body(msgs[:2])[:-3])
        assert r.code == MESSAGE_ILLEGAL, r
        assert int(cli.call(GET_MAX_OFFSET, {"topic": "TB", "queueId": "0"}).ext["offset"]) == 30


def test_large_batch_visible_on_reply(broker_factory):
    # A batch past 64 KiB is dispatched by the dispatch thread rather than the I/O thread that
    # stored it; its reply must still wait until every message of it can be read.
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TBig", queues=1)
        ext = {"a": "PG", "b": "TBig", "c": "TBW102", "d": "4", "e": "0", "f": "0",
               "g": str(int(time.time() * 1000)), "h": "0", "i": mr.props(WAIT="true"),
               "j": "0", "k": "false", "m": "true"}
        n = 600
        for rnd in range(5):
            msgs = [(b"%d-%d-" % (rnd, i) + b"x" * 200, mr.props(KEYS="k%d" % i))
                    for i in range(n)]
            r = cli.call(SEND_BATCH_MESSAGE, ext, mr.batch_body(msgs))
            assert r.code == mp.SUCCESS, r
            assert int(r.ext["queueOffset"]) == rnd * n
            maxo = cli.call(GET_MAX_OFFSET, {"topic": "TBig", "queueId": "0"})
            assert int(maxo.ext["offset"]) == (rnd + 1) * n
            p = pull(cli, "TBig", 0, (rnd + 1) * n - 1, max_nums=1)
            assert p.code == mp.SUCCESS and p.records[0].body == msgs[-1][0]


def test_long_polling_answers_on_arrival(broker_factory):
    b = broker_factory()
    with mp.Client(b.port, timeout=30) as cli, mp.Client(b.port) as producer:
        create_topic(cli, "TL", queues=1)
        result = {}

        def held():
            t0 = time.monotonic()
            result["resp"] = pull(cli, "TL", 0, 0, suspend_ms=15000)
            result["t"] = time.monotonic() - t0

        th = threading.Thread(target=held)
        th.start()
        time.sleep(0.3)  # let the pull park
        assert "resp" not in result
        t_send = time.monotonic()
        assert send(producer, "TL", b"wake").code == mp.SUCCESS
        th.join(10)
        assert result["resp"].code == mp.SUCCESS
        assert result["resp"].records[0].body == b"wake"
        assert time.monotonic() - t_send < 1.0  # answered on arrival, not at the deadline
        # A held pull with nothing arriving is answered at its suspend time.
        t0 = time.monotonic()
        p = pull(cli, "TL", 0, 1, suspend_ms=500)
        assert p.code == PULL_NOT_FOUND
        assert 0.4 < time.monotonic() - t0 < 3


def test_offsets_survive_restart(broker_factory, daemons):
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TO", queues=2)
        for i in range(5):
            send(cli, "TO", b"x%d" % i, queue_id=0)
        # A new group starts at 0 while the queue still starts at 0.
        r = cli.call(QUERY_CONSUMER_OFFSET, {"consumerGroup": "G1", "topic": "TO", "queueId": "0"})
        assert r.code == mp.SUCCESS and int(r.ext["offset"]) == 0
        r = cli.call(UPDATE_CONSUMER_OFFSET, {"consumerGroup": "G1", "topic": "TO", "queueId": "0",
                                              "commitOffset": "3"})
        assert r.code == mp.SUCCESS
        # Negative commits (stock clients' "unknown") are ignored.
        cli.call(UPDATE_CONSUMER_OFFSET, {"consumerGroup": "G1", "topic": "TO", "queueId": "0",
                                          "commitOffset": "-1"})
        # The pull's commit flag commits too.
        pull(cli, "TO", 1, 0, group="G1", commit_offset=0)
    assert b.stop() == 0
    b2 = restart(daemons, b)
    with mp.Client(b2.port) as cli:
        r = cli.call(QUERY_CONSUMER_OFFSET, {"consumerGroup": "G1", "topic": "TO", "queueId": "0"})
        assert r.code == mp.SUCCESS and int(r.ext["offset"]) == 3
        p = pull(cli, "TO", 0, 3)
        assert [x.body for x in p.records] == [b"x3", b"x4"]


def test_key_and_id_lookups(broker_factory):
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TK", queues=2)
        ids = {}
        for i in range(10):
            r = send(cli, "TK", b"v%d" % i, queue_id=i % 2, keys="order%d shared" % i)
            ids[i] = r.ext["msgId"]
        r = cli.call(QUERY_MESSAGE, {"topic": "TK", "key": "order7", "maxNum": "32",
                                     "beginTimestamp": "0", "endTimestamp": str(1 << 62)})
        assert r.code == mp.SUCCESS, r
        assert [x.body for x in mr.decode_records(r.body)] == [b"v7"]
        r = cli.call(QUERY_MESSAGE, {"topic": "TK", "key": "shared", "maxNum": "32",
                                     "beginTimestamp": "0", "endTimestamp": str(1 << 62)})
        assert sorted(x.body for x in mr.decode_records(r.body)) == sorted(b"v%d" % i
                                                                       for i in range(10))
        r = cli.call(QUERY_MESSAGE, {"topic": "TK", "key": "nope", "maxNum": "32",
                                     "beginTimestamp": "0", "endTimestamp": str(1 << 62)})
        assert r.code == mp.QUERY_NOT_FOUND
        phys = int(ids[4][16:], 16)
        r = cli.call(VIEW_MESSAGE_BY_ID, {"offset": str(phys)})
        assert r.code == mp.SUCCESS
        assert mr.decode_records(r.body)[0].body == b"v4"
        for off in (phys + 1, phys + 40, phys + 200):  # mid-record: not found, and no alarm
            assert cli.call(VIEW_MESSAGE_BY_ID, {"offset": str(off)}).code != mp.SUCCESS
    assert "corrupt" not in b.stderr()


def test_registration_with_namesrv(namesrv, broker_factory):
    b = broker_factory(namesrv=namesrv)
    with mp.Client(namesrv.port) as ns, mp.Client(b.port) as cli:
        def route(topic):
            r = ns.call(mp.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
            return r if r.code == mp.SUCCESS else None
        r = wait_for(lambda: route("TBW102"))
        assert r, "TBW102 not registered"
        create_topic(cli, "TN", queues=3)
        r = wait_for(lambda: route("TN"), timeout=3)  # registered at once, not in 30 s
        data = r.json_body()
        assert data["queueDatas"][0]["writeQueueNums"] == 3
        assert data["brokerDatas"][0]["brokerAddrs"]["0"] == "127.0.0.1:%d" % b.port
    assert b.stop() == 0
    with mp.Client(namesrv.port) as ns:
        r = ns.call(mp.GET_ROUTEINFO_BY_TOPIC, {"topic": "TN"})
        assert r.code == mp.TOPIC_NOT_EXIST  # unregistered on shutdown


def test_a_peer_that_closes_every_connection_is_not_a_loop(broker_factory):
    """The broker registers again when a NameServer connection closes. A namesrvAddr whose peer
    accepts and closes every connection (another service on the port, a proxy without a
    backend) made that a loop: ~5000 connections a second and most of a CPU. At most one
    registration a second follows a close now."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    srv.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def closer():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            accepted.append(time.monotonic())
            c.close()

    t = threading.Thread(target=closer)
    t.start()
    try:
        b = broker_factory(namesrvAddr="127.0.0.1:%d" % srv.getsockname()[1])
        assert wait_for(lambda: len(accepted) >= 2, timeout=5), "the broker never connected"
        time.sleep(3)  # the measured window: what the broker does on its own
        since = time.monotonic() - 3
        n = sum(1 for a in accepted if a >= since)
        assert n <= 5, "%d connections in 3 s" % n
        with mp.Client(b.port) as cli:  # and it serves meanwhile
            create_topic(cli, "TC", queues=1)
            assert send(cli, "TC", b"x").code == mp.SUCCESS
    finally:
        stop.set()
        t.join()
        srv.close()
    b.check_clean()


def test_auto_create_and_bad_input(broker_factory):
    b = broker_factory()
    with mp.Client(b.port) as cli:
        r = send(cli, "Fresh", b"x", queue_id=2)  # through TBW102 (autoCreateTopicEnable)
        assert r.code == mp.SUCCESS, r
        r = send(cli, "bad topic", b"x")
        assert r.code == MESSAGE_ILLEGAL
        r = send(cli, "Fresh", b"", queue_id=0)
        assert r.code == MESSAGE_ILLEGAL
        r = send(cli, "Fresh", b"x", queue_id=99)
        assert r.code == mp.SYSTEM_ERROR
        r = send(cli, "Fresh", b"x" * (4 * 1024 * 1024 + 1))
        assert r.code == MESSAGE_ILLEGAL
    # Garbage and a frame cut short do not hurt the broker.
    s = socket.create_connection(("127.0.0.1", b.port))
    s.sendall(struct.pack(">ii", 12, 99) + b"garbage!")
    s.close()
    s = socket.create_connection(("127.0.0.1", b.port))
    s.sendall(struct.pack(">i", 1000) + b"short")
    s.close()
    with mp.Client(b.port) as cli:
        assert send(cli, "Fresh", b"still fine").code == mp.SUCCESS


def test_sync_flush_kill_loses_nothing_acknowledged(broker_factory, daemons):
    b = broker_factory(flushDiskType="SYNC_FLUSH")
    acked = []
    stop = threading.Event()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TS", queues=4)

    def producer(n):
        try:
            with mp.Client(b.port) as c:
                i = 0
                while not stop.is_set():
                    body = b"p%d-%d" % (n, i)
                    r = send(c, "TS", body, queue_id=n % 4)
                    if r.code == mp.SUCCESS:
                        acked.append((body, r.ext["msgId"]))
                    i += 1
        except (OSError, mp.ProtocolError, struct.error):
            pass  # the broker died mid-call

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) > 300, timeout=20)
    os.kill(b.proc.pid, signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(10)
    b.kill()
    assert len(acked) > 300
    b2 = restart(daemons, b)
    got = {}
    with mp.Client(b2.port) as cli:
        for q in range(4):
            off = 0
            while True:
                p = pull(cli, "TS", q, off, max_nums=512)
                if p.code != mp.SUCCESS:
                    break
                for rec in p.records:
                    assert rec.queue_offset == off  # dense, in order
                    got.setdefault(rec.body, []).append(rec.msg_id)
                    off += 1
    for body, msg_id in acked:
        assert got.get(body) == [msg_id], "acknowledged %r lost or duplicated" % body


def test_rendered_view_for_the_file_interface(broker_factory):
    """MQFS_RENDER_INFO/FIND and MQFS_READ: a queue shown as body + newline per message, exact
    sizes, any offset, compressed bodies shown uncompressed."""
    import zlib
    b = broker_factory()
    bodies = [b"alpha", b"", b"x" * 5000, b"line with spaces", b"z" * 3]
    with mp.Client(b.port) as cli:
        create_topic(cli, "TV", queues=1)
        for body in bodies:
            if not body:
                continue  # empty bodies are refused by the broker
            if len(body) > 4096:  # as a stock client sends it: zlib, sysflag bit 0
                ext = {"a": "PG", "b": "TV", "c": "TBW102", "d": "4", "e": "0", "f": "1",
                       "g": "0", "h": "0", "i": mr.props(WAIT="true"), "j": "0", "k": "false"}
                assert cli.call(SEND_MESSAGE_V2, ext, zlib.compress(body)).code == mp.SUCCESS
            else:
                assert send(cli, "TV", body).code == mp.SUCCESS
        view = b"".join(x + b"\n" for x in bodies if x)
        info = cli.call(MQFS_RENDER_INFO, {"topic": "TV", "queueId": "0"})
        assert info.code == mp.SUCCESS
        assert int(info.ext["base"]) == 0 and int(info.ext["size"]) == len(view)
        for off in (0, 1, 5, 6, 100, 5006, len(view) - 1):
            r = cli.call(MQFS_READ, {"topic": "TV", "queueId": "0", "fileOffset": str(off),
                                     "maxBytes": "7"})
            assert r.code == mp.SUCCESS, r
            assert r.body == view[off:off + 7], off
            assert int(r.ext["nextFileOffset"]) == off + len(r.body)
        r = cli.call(MQFS_READ, {"topic": "TV", "queueId": "0", "fileOffset": "0",
                                 "maxBytes": str(1 << 20)})
        assert r.body == view
        r = cli.call(MQFS_READ, {"topic": "TV", "queueId": "0", "fileOffset": str(len(view)),
                                 "maxBytes": "100"})
        assert r.code == mp.SUCCESS and r.body == b""
        f = cli.call(MQFS_RENDER_FIND, {"topic": "TV", "queueId": "0", "fileOffset": "8"})
        assert f.code == mp.SUCCESS
        assert (int(f.ext["queueOffset"]), int(f.ext["within"])) == (1, 2)


def test_topic_view_in_commitlog_order(broker_factory):
    """MQFS_READ with queueId -1: the topic's queues merged in commitlog order, any offset."""
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TT", queues=3)
        bodies = [b"msg-%03d-%s" % (i, b"y" * (i % 7)) for i in range(60)]
        for i, body in enumerate(bodies):
            assert send(cli, "TT", body, queue_id=(i * 7) % 3).code == mp.SUCCESS
        view = b"".join(x + b"\n" for x in bodies)

        def read(off, n, size=len(view)):
            r = cli.call(MQFS_READ, {"topic": "TT", "queueId": "-1", "fileOffset": str(off),
                                     "maxBytes": str(n)})
            assert r.code == mp.SUCCESS, r
            assert int(r.ext["size"]) == size and int(r.ext["base"]) == 0
            return r.body

        assert read(0, 1 << 20) == view
        for off in range(0, len(view), 37):
            assert read(off, 50) == view[off:off + 50], off
        assert read(len(view), 10) == b""
        send(cli, "TT", b"late", queue_id=0)  # the view grows at its end only
        assert read(0, 1 << 20, len(view) + 5) == view + b"late\n"

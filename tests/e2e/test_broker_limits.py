"""test_broker_limits.py — requests that used to make the broker promise more than it can keep
(docs/INTEROP.md "Limits and refusals"): a subscription group asking for more retry queues
than a topic may have (the %RETRY% topic made from it pinned the worker threads that read it,
and was skipped as a bad entry on restart), and transaction sends no END_TRANSACTION can resolve
(batches with transaction bits, rollback-flagged sends)."""

import json
import os
import threading
import time

import mqproto as mp
import mqrecord as mr
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory, restart  # noqa: F401

UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200
GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201
GET_ALL_TOPIC_CONFIG = 21
NO_PERMISSION = 16
MAX_QUEUES = 1024


def create_group(cli, group, **fields):
    body = dict({"groupName": group, "consumeEnable": True}, **fields)
    return cli.call(UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {}, json.dumps(body).encode())


def heartbeat(cli, group, topic):
    body = {"clientID": "127.0.0.1@limits", "producerDataSet": [],
            "consumerDataSet": [{"groupName": group, "consumeType": "CONSUME_PASSIVELY",
                                 "messageModel": "CLUSTERING",
                                 "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                                 "unitMode": False,
                                 "subscriptionDataSet": [{"topic": topic, "subString": "*",
                                                          "tagsSet": [], "codeSet": [],
                                                          "subVersion": 1,
                                                          "expressionType": "TAG"}]}]}
    r = cli.call(HEART_BEAT, {}, json.dumps(body).encode())
    assert r.code == mp.SUCCESS, r
    return r


def topic_config(cli, topic):
    r = cli.call(GET_ALL_TOPIC_CONFIG)
    assert r.code == mp.SUCCESS, r
    return mp.loads_fastjson(r.body)["topicConfigTable"].get(topic)


def group_config(cli, group):
    r = cli.call(GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
    assert r.code == mp.SUCCESS, r
    return mp.loads_fastjson(r.body)["subscriptionGroupTable"].get(group)


def merged_read(port, topic, out):
    """MQFS_READ of the topic's merged view (queueId -1) on its own connection; appends
    (response, seconds taken) to out."""
    t0 = time.monotonic()
    with mp.Client(port, timeout=10) as cli:
        r = cli.call(MQFS_READ, {"topic": topic, "queueId": "-1", "fileOffset": "0",
                                 "maxBytes": "65536"})
    out.append((r, time.monotonic() - t0))


def round_trip(port, topic, body):
    """Sends one message and pulls it back; returns the seconds it took."""
    t0 = time.monotonic()
    with mp.Client(port, timeout=5) as cli:
        r = send(cli, topic, body)
        assert r.code == mp.SUCCESS, r
        p = pull(cli, topic, 0, int(r.ext["queueOffset"]), max_nums=1)
        assert p.code == mp.SUCCESS and p.records[0].body == body, p
    return time.monotonic() - t0


def test_retry_queue_count_is_bounded(namesrv, broker_factory, daemons):
    b = broker_factory(namesrv=namesrv)
    with mp.Client(b.port) as cli:
        create_topic(cli, "TL", queues=1)
        # Out of range: refused before anything is stored, as UPDATE_AND_CREATE_TOPIC refuses.
        for n in (2147483647, 1 << 40, MAX_QUEUES + 1, -1, -2147483648):
            t0 = time.monotonic()
            r = create_group(cli, "GBig", retryQueueNums=n)
            assert r.code == mp.SYSTEM_ERROR, (n, r)
            assert "retryQueueNums must be an integer in 0..1024" in r.remark, r
            assert time.monotonic() - t0 < 2
        assert group_config(cli, "GBig") is None
        # A consumer of that group then gets the default group and a one-queue retry topic.
        heartbeat(cli, "GBig", "TL")
        assert group_config(cli, "GBig")["retryQueueNums"] == 1
        assert topic_config(cli, "%RETRY%GBig")["readQueueNums"] == 1
        # The limit itself is taken, and the retry topic made from it has that many queues.
        assert create_group(cli, "GMax", retryQueueNums=MAX_QUEUES).code == mp.SUCCESS
        heartbeat(cli, "GMax", "TL")
        cfg = topic_config(cli, "%RETRY%GMax")
        assert (cfg["readQueueNums"], cfg["writeQueueNums"]) == (MAX_QUEUES, MAX_QUEUES)
        send(cli, "%RETRY%GMax", b"retry-msg", queue_id=MAX_QUEUES - 1)
    wait_route(namesrv.port, "%RETRY%GMax")
    with mp.Client(namesrv.port) as ns:
        qd = ns.call(mp.GET_ROUTEINFO_BY_TOPIC, {"topic": "%RETRY%GMax"}).json_body()
        assert qd["queueDatas"][0]["readQueueNums"] == MAX_QUEUES

    # Merged reads of the widest retry topic, as many at once as there are workers and more,
    # answer promptly and leave the broker free for everything else.
    results = []
    readers = [threading.Thread(target=merged_read, args=(b.port, "%RETRY%GMax", results))
               for _ in range(4)]
    for t in readers:
        t.start()
    assert round_trip(b.port, "TL", b"while reading") < 3
    for t in readers:
        t.join(15)
    assert len(results) == 4
    for r, took in results:
        assert r.code == mp.SUCCESS and r.body == b"retry-msg\n", r
        assert took < 5, took

    # What the broker wrote, it takes back on restart: no entry skipped, counts unchanged.
    assert b.stop() == 0
    b = restart(daemons, b)
    assert "bad entry" not in b.stderr()
    with mp.Client(b.port) as cli:
        assert topic_config(cli, "%RETRY%GMax")["readQueueNums"] == MAX_QUEUES
        assert group_config(cli, "GMax")["retryQueueNums"] == MAX_QUEUES
        r = cli.call(MQFS_READ, {"topic": "%RETRY%GMax", "queueId": "-1", "fileOffset": "0"})
        assert r.code == mp.SUCCESS and r.body == b"retry-msg\n", r
    assert round_trip(b.port, "TL", b"after restart") < 3


def test_oversized_counts_from_older_files_are_clamped(broker_factory, daemons):
    # Older versions wrote a group's unchecked retryQueueNums and a %RETRY% topic of that many
    # queues; loading keeps both entries, clamped to the limit, and the topic stays usable.
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TL", queues=1)
        assert create_group(cli, "GOld").code == mp.SUCCESS
    assert b.stop() == 0
    cfg = os.path.join(b.store, "config")
    for name, table, key, fields in (
            ("topics.json", "topicConfigTable", "%RETRY%GOld",
             {"topicName": "%RETRY%GOld", "readQueueNums": 2147483647,
              "writeQueueNums": 2147483647, "perm": 6}),
            ("subscriptionGroup.json", "subscriptionGroupTable", "GOld",
             {"groupName": "GOld", "retryQueueNums": 2147483647})):
        path = os.path.join(cfg, name)
        with open(path) as f:
            doc = json.load(f)
        doc[table][key] = fields
        with open(path, "w") as f:
            json.dump(doc, f)
    b = restart(daemons, b)
    assert "bad entry" not in b.stderr()
    with mp.Client(b.port) as cli:
        assert topic_config(cli, "%RETRY%GOld")["readQueueNums"] == MAX_QUEUES
        assert group_config(cli, "GOld")["retryQueueNums"] == MAX_QUEUES
        t0 = time.monotonic()
        r = cli.call(MQFS_READ, {"topic": "%RETRY%GOld", "queueId": "-1", "fileOffset": "0"})
        assert r.code == mp.SUCCESS and time.monotonic() - t0 < 3, r
    assert round_trip(b.port, "TL", b"still fine") < 3
    t0 = time.monotonic()
    assert b.stop() == 0 and time.monotonic() - t0 < 5


def tx_send(cli, code, topic, sysflag, body=b"tx", batch=False):
    props = mr.props(WAIT="true", TRAN_MSG="true", PGROUP="PG")
    born = str(int(time.time() * 1000))
    if code == SEND_MESSAGE:
        ext = {"producerGroup": "PG", "topic": topic, "defaultTopic": "TBW102",
               "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": str(sysflag),
               "bornTimestamp": born, "flag": "0", "properties": props,
               "reconsumeTimes": "0", "unitMode": "false"}
    else:
        ext = {"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": str(sysflag),
               "g": born, "h": "0", "i": props, "j": "0", "k": "false",
               "m": "true" if batch else "false"}
    if batch:
        body = mr.batch_body([(body + b"-1", mr.props(KEYS="k1")),
                              (body + b"-2", mr.props(KEYS="k2"))])
    t0 = time.monotonic()
    r = cli.call(code, ext, body)
    return r, time.monotonic() - t0


def test_transaction_sends_this_broker_refuses(broker_factory):
    """Half messages are taken (test_broker_tx.py); a batch with transaction bits and a single
    send flagged ROLLBACK are refused at once, and a COMMIT-flagged send is ordinary."""
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TX", queues=1)

        def max_offset():
            return int(cli.call(GET_MAX_OFFSET, {"topic": "TX", "queueId": "0"}).ext["offset"])

        assert send(cli, "TX", b"plain").code == mp.SUCCESS
        for code in (SEND_MESSAGE_V2, SEND_MESSAGE, SEND_BATCH_MESSAGE):
            for sysflag in (0x4, 0xC, 0x4 | 0x2, 0xC | 0x1):  # also with other bits set
                batch = code == SEND_BATCH_MESSAGE
                r, took = tx_send(cli, code, "TX", sysflag, batch=batch)
                if not batch and sysflag & 0xC == 0x4:  # a half message: taken, not delivered
                    assert r.code == mp.SUCCESS, (code, sysflag, r)
                    continue
                assert r.code == NO_PERMISSION, (code, sysflag, r)
                assert r.remark == ("the broker[127.0.0.1] sending transaction message is "
                                    "forbidden"), r
                assert took < 1, took
        # A refused rollback to a topic that does not exist creates nothing either.
        r, _ = tx_send(cli, SEND_MESSAGE_V2, "TXNew", 0xC)
        assert r.code == NO_PERMISSION and topic_config(cli, "TXNew") is None
        assert max_offset() == 1
        # A commit is an ordinary message: stored, answered at once with its own offset, pulled.
        for code in (SEND_MESSAGE_V2, SEND_MESSAGE):
            r, took = tx_send(cli, code, "TX", 0x8, body=b"commit-%d" % code)
            assert r.code == mp.SUCCESS and took < 1, (r, took)
            off = int(r.ext["queueOffset"])
            p = pull(cli, "TX", 0, off, max_nums=1)
            assert p.code == mp.SUCCESS and p.records[0].body == b"commit-%d" % code, p
            assert p.records[0].queue_offset == off
        assert max_offset() == 3
        p = pull(cli, "TX", 0, 0, max_nums=32)
        assert [x.body for x in p.records] == [b"plain", b"commit-310", b"commit-10"]


def groups_in_file(store):
    path = os.path.join(store, "config", "subscriptionGroup.json")
    with open(path) as f:
        return set(json.load(f)["subscriptionGroupTable"])


def test_groups_made_for_clients_are_written_later(broker_factory, daemons):
    """A client inventing group names (each heartbeat or pull of a new group makes one, as
    autoCreateSubscriptionGroup) does not cost a file write and sync per name: such groups are
    written with the offsets, every 5 s and at the stop, while a group made by the admin request
    is in the file when its answer comes. Either way a restart knows them all."""
    b = broker_factory()
    made = ["GAuto%d" % i for i in range(200)]
    with mp.Client(b.port) as cli:
        create_topic(cli, "TG", queues=1)
        assert create_group(cli, "GAdmin").code == mp.SUCCESS
        assert "GAdmin" in groups_in_file(b.store)
        for g in made:
            heartbeat(cli, g, "TG")
        assert group_config(cli, made[-1])["groupName"] == made[-1]
    deadline = time.monotonic() + 15  # the broker's timer writes them within 5 s
    while not set(made) <= groups_in_file(b.store) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(made) <= groups_in_file(b.store)
    with mp.Client(b.port) as cli:
        heartbeat(cli, "GLast", "TG")  # made just before the stop: written by the stop
    assert b.stop() == 0
    assert {"GAdmin", "GLast"} | set(made) <= groups_in_file(b.store)
    b = restart(daemons, b)
    with mp.Client(b.port) as cli:
        assert group_config(cli, "GLast")["groupName"] == "GLast"
        assert group_config(cli, "GAdmin")["groupName"] == "GAdmin"

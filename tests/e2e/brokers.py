"""brokers.py — fixtures that start mqbroker next to mqnamesrv (import them into a test module
with `from brokers import *`), and helpers to send and pull through the Python encoder and to
wait for a topic's route on the NameServer."""

import os
import time

import pytest

import mqproto as mp
import mqrecord as mr
from conftest import binary, free_port
from mqfs_mount import Mount

SEND_MESSAGE = 10
PULL_MESSAGE = 11
QUERY_MESSAGE = 12
QUERY_CONSUMER_OFFSET = 14
UPDATE_CONSUMER_OFFSET = 15
UPDATE_AND_CREATE_TOPIC = 17
GET_MAX_OFFSET = 30
GET_MIN_OFFSET = 31
VIEW_MESSAGE_BY_ID = 33
HEART_BEAT = 34
CONSUMER_SEND_MSG_BACK = 36
GET_CONSUMER_LIST_BY_GROUP = 38
SEND_MESSAGE_V2 = 310
SEND_BATCH_MESSAGE = 320
MQFS_RENDER_INFO = 30001
MQFS_RENDER_FIND = 30002
MQFS_READ = 30004

FLUSH_DISK_TIMEOUT = 10
MESSAGE_ILLEGAL = 13
SERVICE_NOT_AVAILABLE = 14
PULL_NOT_FOUND = 19
PULL_RETRY_IMMEDIATELY = 20
PULL_OFFSET_MOVED = 21


@pytest.fixture
def broker_factory(daemons, tmp_path):
    """broker_factory(namesrv=None, name="broker-a", **conf) -> started mqbroker Daemon with
    .port and .store (its storePathRootDir); restartable with the same store via .conf_path."""
    counter = [0]

    def start(namesrv=None, name="broker-a", store=None, port=None, **conf):
        counter[0] += 1
        port = port or free_port()
        store = store or str(tmp_path / ("store-%s-%d" % (name, counter[0])))
        settings = {"brokerName": name, "listenPort": port, "storePathRootDir": store,
                    "namesrvAddr": "127.0.0.1:%d" % namesrv.port if namesrv else "",
                    "mappedFileSizeCommitLog": 4 << 20,
                    # The store preallocates its files: small ones keep test disks small.
                    "mappedFileSizeConsumeQueue": 60000, "maxHashSlotNum": 5000,
                    "maxIndexNum": 20000}
        settings.update(conf)
        path = tmp_path / ("broker%d.conf" % counter[0])
        path.write_text("".join("%s=%s\n" % kv for kv in settings.items()))
        d = daemons.start("broker%d" % counter[0], [binary("mqbroker"), "-c", str(path)],
                          port=port, ready_text="ready on port")
        d.port, d.store, d.conf_path, d.name_ = port, store, str(path), name
        return d

    return start


def restart(daemons, d):
    """Starts a new broker process on d's config (same port and store)."""
    nd = daemons.start(d.name + "r", [binary("mqbroker"), "-c", d.conf_path], port=d.port,
                       ready_text="ready on port")
    nd.port, nd.store, nd.conf_path, nd.name_ = d.port, d.store, d.conf_path, d.name_
    return nd


def create_topic(cli, topic, queues=4, perm=6):
    r = cli.call(UPDATE_AND_CREATE_TOPIC, {"topic": topic, "readQueueNums": str(queues),
                                           "writeQueueNums": str(queues), "perm": str(perm)})
    assert r.code == mp.SUCCESS, r
    return r


def route_ok(port, topic, brokers=()):
    """Whether the NameServer on port routes topic, to each of the named brokers (False when it
    does not answer)."""
    try:
        with mp.Client(port, timeout=1) as cli:
            r = cli.call(mp.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    except OSError:
        return False
    if r.code != mp.SUCCESS:
        return False
    return set(brokers) <= {d["brokerName"] for d in r.json_body()["brokerDatas"]}


def wait_route(port, topic, timeout=10, brokers=()):
    """Waits until the NameServer on port routes topic, to each of the named brokers."""
    deadline = time.monotonic() + timeout
    while not route_ok(port, topic, brokers):
        assert time.monotonic() < deadline, "topic %s never routed%s" % (
            topic, " to each of %s" % sorted(brokers) if brokers else "")
        time.sleep(0.05)


def send(cli, topic, body, queue_id=0, tags=None, keys=None, v2=True, group="PG", serialize=None,
         props=None, raw_props=None):
    """SEND_MESSAGE_V2 (or SEND_MESSAGE); props: more properties; raw_props: the properties
    string exactly (instead of every other)."""
    p = {}
    if tags:
        p["TAGS"] = tags
    if keys:
        p["KEYS"] = keys
    p["WAIT"] = "true"
    p.update(props or {})
    pstr = raw_props if raw_props is not None else mr.props(**p)
    if v2:
        ext = {"a": group, "b": topic, "c": "TBW102", "d": "4", "e": str(queue_id), "f": "0",
               "g": str(int(time.time() * 1000)), "h": "0", "i": pstr, "j": "0",
               "k": "false", "m": "false"}
        return cli.call(SEND_MESSAGE_V2, ext, body, serialize=serialize)
    ext = {"producerGroup": group, "topic": topic, "defaultTopic": "TBW102",
           "defaultTopicQueueNums": "4", "queueId": str(queue_id), "sysFlag": "0",
           "bornTimestamp": str(int(time.time() * 1000)), "flag": "0",
           "properties": pstr, "reconsumeTimes": "0", "unitMode": "false"}
    return cli.call(SEND_MESSAGE, ext, body, serialize=serialize)


def pull(cli, topic, queue_id, offset, group="CG", max_nums=32, expr="*", suspend_ms=0,
         commit_offset=None, expr_type="TAG", has_sub=True, version=0):
    sysflag = (4 if has_sub else 0) | (2 if suspend_ms else 0) | \
        (1 if commit_offset is not None else 0)
    ext = {"consumerGroup": group, "topic": topic, "queueId": str(queue_id),
           "queueOffset": str(offset), "maxMsgNums": str(max_nums), "sysFlag": str(sysflag),
           "commitOffset": str(commit_offset or 0), "suspendTimeoutMillis": str(suspend_ms),
           "subscription": expr, "subVersion": str(version), "expressionType": expr_type}
    r = cli.call(PULL_MESSAGE, ext)
    r.records = mr.decode_records(r.body) if r.code == mp.SUCCESS else []
    return r


def queue_records(port, topic, queues, max_nums=1024):
    """{queue: [Record...]} for every queue 0..queues-1, pulled from offset 0 to the end;
    mqrecord checks each record's magic, TOTALSIZE and body CRC."""
    out = {}
    with mp.Client(port) as cli:
        for q in range(queues):
            off, recs = 0, []
            while True:
                p = pull(cli, topic, q, off, max_nums=max_nums)
                if p.code != mp.SUCCESS or not p.records:
                    break
                recs += p.records
                off = p.records[-1].queue_offset + 1
            out[q] = recs
    return out


@pytest.fixture
def mqfs_cluster(namesrv, broker_factory, tmp_path):  # noqa: F811
    """A NameServer, a broker registered with it, and mqfs mounted on them: the Mount, with
    .broker (the broker Daemon) and .namesrv_port."""
    b = broker_factory(namesrv=namesrv)
    os.makedirs(tmp_path / "fs", exist_ok=True)
    m = Mount(tmp_path / "fs", "127.0.0.1:%d" % namesrv.port).start()
    m.broker = b
    m.namesrv_port = namesrv.port
    try:
        yield m
    finally:
        m.stop()

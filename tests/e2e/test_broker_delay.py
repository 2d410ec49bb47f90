"""test_broker_delay.py — delayed messages (RocketMQ's delay levels, ScheduleMessageService)
end to end through the Python encoder: a send with DELAY=<level> waits in SCHEDULE_TOPIC_XXXX
and reaches its own topic and queue once the level's delay (messageDelayLevel) has passed;
retries from CONSUMER_SEND_MSG_BACK back off the same way; a killed broker still delivers what
waited, a stopped one delivers nothing twice; what a delayed send may not be is refused."""

import json
import os
import subprocess
import time

import mqproto as mp
import mqrecord as mr
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory, restart  # noqa: F401
from clientkit import admin
from conftest import binary, free_port

SCHED = "SCHEDULE_TOPIC_XXXX"
NO_PERMISSION = 16
GET_BROKER_RUNTIME_INFO = 28
DELETE_TOPIC_IN_BROKER = 215
LEVELS = "1s 2s 3s"


def arrive(cli, topic, queue_id, offset, timeout_s=10):
    """Long-polls topic/queue_id from offset until a record comes; returns (records, when)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p = pull(cli, topic, queue_id, offset, suspend_ms=2000)
        if p.code == mp.SUCCESS and p.records:
            return p.records, time.time()
    raise AssertionError("nothing arrived in %s/%d at %d within %ds" %
                         (topic, queue_id, offset, timeout_s))


def test_delayed_send_waits_for_its_level(broker_factory):
    b = broker_factory(messageDelayLevel=LEVELS)
    with mp.Client(b.port) as cli:
        create_topic(cli, "TD", queues=2)
        r = send(cli, "TD", b"later", queue_id=1, tags="TagA", keys="kd",
                 props={"DELAY": "2", "UNIQ_KEY": "ABCDEF0123456789"})
        assert r.code == mp.SUCCESS, r
        sent_at = time.time()
        assert int(r.ext["queueId"]) == 1  # the queue asked for, as RocketMQ answers
        # Not in its topic yet: it waits in the schedule topic's queue for level 2.
        assert pull(cli, "TD", 1, 0).records == []
        waiting = pull(cli, SCHED, 1, 0).records
        assert [w.body for w in waiting] == [b"later"]
        w = waiting[0]
        assert (w.props["DELAY"], w.props["REAL_TOPIC"], w.props["REAL_QID"]) == ("2", "TD", "1")
        # Levels past the last wait as long as the last; 0 and non-numbers do not wait.
        assert send(cli, "TD", b"capped", queue_id=0, props={"DELAY": "99"}).code == mp.SUCCESS
        assert pull(cli, SCHED, 2, 0).records[0].props["DELAY"] == "3"
        # brokerStatus shows what waits per level: "<next to deliver>,<max offset>"
        info = cli.call(GET_BROKER_RUNTIME_INFO, {}).json_body()["table"]
        assert info["scheduleMessageOffset_2"] == "0,1"
        for v in ("0", "x"):
            assert send(cli, "TD", b"now-" + v.encode(), queue_id=0,
                        props={"DELAY": v}).code == mp.SUCCESS
        assert [x.body for x in pull(cli, "TD", 0, 0).records] == [b"now-0", b"now-x"]

        recs, when = arrive(cli, "TD", 1, 0)
        assert when - sent_at >= 1.9, "delivered after %.2fs, the level is 2s" % (when - sent_at)
        got = recs[0]
        assert got.body == b"later" and got.topic == "TD" and got.queue_id == 1
        assert got.store_ts - w.store_ts >= 2000
        assert "DELAY" not in got.props
        assert (got.props["TAGS"], got.props["KEYS"], got.props["UNIQ_KEY"]) == \
            ("TagA", "kd", "ABCDEF0123456789")
        assert (got.props["REAL_TOPIC"], got.props["REAL_QID"]) == ("TD", "1")
        # Delivered copies are found by key under their own topic.
        q = cli.call(QUERY_MESSAGE, {"topic": "TD", "key": "kd", "maxNum": "32",
                                     "beginTimestamp": "0", "endTimestamp": str(1 << 62)})
        assert q.code == mp.SUCCESS and [x.body for x in mr.decode_records(q.body)] == [b"later"]
        recs, _ = arrive(cli, "TD", 0, 2)
        assert [x.body for x in recs] == [b"capped"]
        info = cli.call(GET_BROKER_RUNTIME_INFO, {}).json_body()["table"]
        assert (info["scheduleMessageOffset_2"], info["scheduleMessageOffset_3"]) == ("1,1", "1,1")
    b.check_clean()


def test_delays_survive_a_kill_and_a_stop_delivers_nothing_twice(daemons, broker_factory):
    b = broker_factory(messageDelayLevel=LEVELS)
    with mp.Client(b.port) as cli:
        create_topic(cli, "TK", queues=1)
        assert send(cli, "TK", b"early", props={"DELAY": "1"}).code == mp.SUCCESS
        assert send(cli, "TK", b"late", props={"DELAY": "3"}).code == mp.SUCCESS
        recs, _ = arrive(cli, "TK", 0, 0)
        assert [x.body for x in recs] == [b"early"]
    b.kill()  # "late" acknowledged, still waiting
    b = restart(daemons, b)
    with mp.Client(b.port) as cli:
        off = 1
        bodies = [b"early"]
        while b"late" not in bodies:
            recs, _ = arrive(cli, "TK", 0, off)
            bodies += [x.body for x in recs]
            off = recs[-1].queue_offset + 1
        # At least once across a kill: "early" may come again (its offset was not written yet).
        assert set(bodies) == {b"early", b"late"} and bodies.count(b"late") == 1, bodies
    assert b.stop() == 0
    offsets = json.loads(open(os.path.join(b.store, "config", "delayOffset.json")).read())
    assert offsets["offsetTable"]["1"] == 1 and offsets["offsetTable"]["3"] == 1
    b = restart(daemons, b)
    with mp.Client(b.port) as cli:
        p = pull(cli, "TK", 0, off, suspend_ms=3500)  # longer than the longest level
        assert p.records == [], "delivered again after a clean stop: %r" % p.records
    b.check_clean()


def test_retry_backs_off_by_level_and_dead_letters_at_once(broker_factory):
    b = broker_factory(messageDelayLevel="1s 1s 1s 2s", maxReconsumeTimes=2)
    with mp.Client(b.port) as cli:
        create_topic(cli, "TR", queues=1)
        # the last pair without its 0x02 (tolerated), which the retry's added pairs must not join
        r = send(cli, "TR", b"payload", raw_props="TAGS\x01T\x02KEYS\x01k")
        phys = int(r.ext["msgId"][16:], 16)
        retry_off = 0
        for attempt in range(3):
            r = cli.call(CONSUMER_SEND_MSG_BACK, {"offset": str(phys), "group": "GR",
                                                  "delayLevel": "0", "originMsgId": "ORIG",
                                                  "originTopic": "TR", "maxReconsumeTimes": "2"})
            assert r.code == mp.SUCCESS, r
            asked = time.time()
            if attempt < 2:
                # level 3 + reconsumeTimes: 1 s, then 2 s (the last level)
                assert pull(cli, "%RETRY%GR", 0, retry_off).records == []
                recs, when = arrive(cli, "%RETRY%GR", 0, retry_off)
                assert when - asked >= (0.9 if attempt == 0 else 1.9)
                retry_off += 1
            else:  # past maxReconsumeTimes: the dead-letter topic, at once
                recs = pull(cli, "%DLQ%GR", 0, 0).records
            rec = recs[-1]
            assert rec.body == b"payload" and rec.reconsume_times == attempt + 1
            assert rec.props["RETRY_TOPIC"] == "TR" and rec.props["ORIGIN_MESSAGE_ID"] == "ORIG"
            assert rec.props["KEYS"] == "k" and rec.props["TAGS"] == "T"
            assert "DELAY" not in rec.props
            phys = rec.phys_offset
        # delayLevel -1: straight to the dead letters
        r = cli.call(CONSUMER_SEND_MSG_BACK, {"offset": str(phys), "group": "GX",
                                              "delayLevel": "-1", "originMsgId": "ORIG"})
        assert r.code == mp.SUCCESS and pull(cli, "%DLQ%GX", 0, 0).records
    b.check_clean()


def test_what_a_delayed_send_may_not_be(broker_factory):
    b = broker_factory(messageDelayLevel=LEVELS)
    with mp.Client(b.port) as cli:
        create_topic(cli, "TB", queues=1)
        r = send(cli, SCHED, b"x", props={"REAL_TOPIC": "TB", "REAL_QID": "0"})
        assert r.code == NO_PERMISSION and "forbidden" in r.remark, r
        batch = mr.batch_body([(b"a", ""), (b"b", "")])
        ext = {"a": "PG", "b": "TB", "c": "TBW102", "d": "4", "e": "0", "f": "0",
               "g": str(int(time.time() * 1000)), "h": "0", "i": mr.props(DELAY="1"),
               "j": "0", "k": "false", "m": "true"}
        r = cli.call(SEND_BATCH_MESSAGE, ext, batch)
        assert r.code == MESSAGE_ILLEGAL and "delay" in r.remark.lower(), r
        assert pull(cli, "TB", 0, 0).records == []
        # A properties string with an empty-name pair (ali-ons resends one) is stored without it.
        r = send(cli, "TB", b"resent", raw_props="TAGS\x01X\x02\x01\x02KEYS\x01k\x02")
        assert r.code == mp.SUCCESS, r
        got = pull(cli, "TB", 0, 0).records[0]
        assert got.props == {"TAGS": "X", "KEYS": "k"}, got.props
    b.check_clean()


def test_mqadmin_sends_with_a_delay_level(namesrv, broker_factory):
    """libmqclient's delay_level, through mqadmin sendMessage -d."""
    b = broker_factory(namesrv=namesrv, messageDelayLevel="2s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TA", queues=1)
    wait_route(namesrv.port, "TA")
    rc, out, err = admin(namesrv, "sendMessage", "-t", "TA", "-p", "hello", "-k", "ka", "-d", "1",
                         as_json=True)
    assert rc == 0, err
    sent_at = time.time()
    assert out[0]["queueId"] == 0 and out[0]["sendStatus"] == "SEND_OK"
    with mp.Client(b.port) as cli:
        assert pull(cli, "TA", 0, 0).records == []
        recs, when = arrive(cli, "TA", 0, 0)
        assert recs[0].body == b"hello" and recs[0].props["KEYS"] == "ka"
        assert recs[0].props["UNIQ_KEY"] == out[0]["msgId"]  # the client's id survives the wait
        assert when - sent_at >= 1.5
    assert admin(namesrv, "sendMessage", "-t", "TA", "-p", "x", "-d", "-1")[0] == 2


def test_retry_of_a_message_with_huge_reconsume_times(broker_factory):
    """RECONSUMETIMES is the sender's: near INT32_MAX the back-off level (3 + RECONSUMETIMES) and
    the copy's RECONSUMETIMES + 1 must not overflow (the broker waited nothing, stored
    INT32_MIN, and UBSan stopped it)."""
    b = broker_factory(messageDelayLevel="1s 1s 2s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TH", queues=1)
        phys = []
        for rt in ("2147483646", "2147483647"):
            ext = {"a": "PG", "b": "TH", "c": "TBW102", "d": "4", "e": "0", "f": "0",
                   "g": str(int(time.time() * 1000)), "h": "0", "i": mr.props(TAGS="T"),
                   "j": rt, "k": "false", "m": "false"}
            r = cli.call(SEND_MESSAGE_V2, ext, b"rt" + rt.encode())
            assert r.code == mp.SUCCESS, r
            phys.append(int(r.ext["msgId"][16:], 16))
        r = cli.call(CONSUMER_SEND_MSG_BACK, {"offset": str(phys[0]), "group": "GH",
                                              "delayLevel": "0", "originMsgId": "O",
                                              "maxReconsumeTimes": "2147483647"})
        assert r.code == mp.SUCCESS, r
        asked = time.time()
        assert pull(cli, "%RETRY%GH", 0, 0).records == []  # it waits the last level, 2 s
        recs, when = arrive(cli, "%RETRY%GH", 0, 0)
        assert when - asked >= 1.9 and recs[0].reconsume_times == 2147483647
        # at INT32_MAX it is past any limit: a dead letter, its count kept at INT32_MAX
        r = cli.call(CONSUMER_SEND_MSG_BACK, {"offset": str(phys[1]), "group": "GH",
                                              "delayLevel": "0", "originMsgId": "O",
                                              "maxReconsumeTimes": "2147483647"})
        assert r.code == mp.SUCCESS, r
        dead = pull(cli, "%DLQ%GH", 0, 0).records
        assert [(x.body, x.reconsume_times) for x in dead] == [(b"rt2147483647", 2147483647)]
    b.check_clean()


def test_a_level_configured_again_goes_on_where_it_stopped(daemons, broker_factory):
    """delayOffset.json keeps the offsets of levels no longer configured: a broker restarted
    with fewer levels wrote the file without them, and with the level back it delivered that
    level's messages a second time."""
    b = broker_factory(messageDelayLevel="1s 1s 1s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TL", queues=1)
        for i in range(3):
            assert send(cli, "TL", b"l3-%d" % i, props={"DELAY": "3"}).code == mp.SUCCESS
        got = []
        while len(got) < 3:
            got += arrive(cli, "TL", 0, len(got))[0]
    assert b.stop() == 0
    with open(b.conf_path) as f:
        conf = f.read()
    with open(b.conf_path, "w") as f:
        f.write(conf.replace("1s 1s 1s", "1s 1s"))
    b = restart(daemons, b)
    with mp.Client(b.port) as cli:  # level 1 delivers, so the file is written again
        assert send(cli, "TL", b"l1", props={"DELAY": "1"}).code == mp.SUCCESS
        assert [x.body for x in arrive(cli, "TL", 0, 3)[0]] == [b"l1"]
    assert b.stop() == 0
    with open(os.path.join(b.store, "config", "delayOffset.json")) as f:
        assert json.load(f)["offsetTable"] == {"1": 1, "2": 0, "3": 3}
    with open(b.conf_path, "w") as f:
        f.write(conf)
    b = restart(daemons, b)
    with mp.Client(b.port) as cli:
        p = pull(cli, "TL", 0, 4, suspend_ms=2500)  # longer than the longest level
        assert p.records == [], "delivered again: %r" % [x.body for x in p.records]
    b.check_clean()


def test_a_topic_deleted_while_its_message_waits(broker_factory):
    """A delayed message whose topic is deleted before its time is dropped: its copy brought
    the deleted topic's queue back, and a topic of that name created later started with it."""
    b = broker_factory(messageDelayLevel="1s 1s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TX", queues=2)
        assert send(cli, "TX", b"old", queue_id=1, props={"DELAY": "2"}).code == mp.SUCCESS
        assert cli.call(DELETE_TOPIC_IN_BROKER, {"topic": "TX"}).code == mp.SUCCESS
        deadline = time.monotonic() + 10
        while cli.call(GET_BROKER_RUNTIME_INFO, {}).json_body()["table"][
                "scheduleMessageOffset_2"] != "1,1":  # the schedule went past it
            assert time.monotonic() < deadline, "the delayed message was never taken"
            time.sleep(0.05)
        create_topic(cli, "TX", queues=2)
        assert send(cli, "TX", b"new", queue_id=1).code == mp.SUCCESS
        assert [x.body for x in pull(cli, "TX", 1, 0).records] == [b"new"]
    assert "was deleted; not delivered" in b.stderr()
    b.check_clean()


def test_bad_delay_configuration_stops_the_broker_clearly(tmp_path):
    """A messageDelayLevel the broker cannot use, or a delayOffset.json it cannot read, stops it
    at start with a message that says what is wrong (65 levels were "expected numbers with s,
    m, h or d"; an empty delayOffset.json was "wrong arguments at line -1")."""
    def start(levels, offsets=None):
        store = tmp_path / ("store%d" % len(list(tmp_path.iterdir())))
        if offsets is not None:
            (store / "config").mkdir(parents=True)
            (store / "config" / "delayOffset.json").write_text(offsets)
        conf = tmp_path / "bad.conf"
        conf.write_text("listenPort=%d\nstorePathRootDir=%s\nmappedFileSizeCommitLog=%d\n"
                        "messageDelayLevel=%s\n" % (free_port(), store, 4 << 20, levels))
        r = subprocess.run([binary("mqbroker"), "-c", str(conf)], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=20)
        assert r.returncode != 0, "started with messageDelayLevel=%r" % levels
        return r.stderr.decode()
    for levels in ("", "1s,2s", "5", "1S", "1ms", "-1s", " ".join(["1s"] * 65)):
        err = start(levels)
        assert "messageDelayLevel" in err and "1 to 64 delays" in err, err
    err = start("1s", offsets="")
    assert "delayOffset.json: empty" in err, err
    err = start("1s", offsets="{bad")
    assert "delayOffset.json: unparsable" in err, err


def schedule_wakeups(pid):
    """Voluntary context switches of the broker's brk-schedule thread: one per sleep."""
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, task)) as f:
            if f.read().strip() != "brk-schedule":
                continue
        with open("/proc/%d/task/%s/status" % (pid, task)) as f:
            return next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
    raise AssertionError("no brk-schedule thread")


def test_sends_behind_a_waiting_message_do_not_wake_the_schedule(broker_factory):
    """A delayed message stored behind one that is not due yet is due later still: the
    dispatcher's notice used to wake the schedule thread for each such send, which then read
    the head of every level again (a third of the broker's CPU for a stream of delayed
    sends). It sleeps through them now, and still delivers each on time."""
    b = broker_factory(messageDelayLevel="1s 3s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TW", queues=1)
        assert send(cli, "TW", b"head", props={"DELAY": "2"}).code == mp.SUCCESS
        assert pull(cli, SCHED, 1, 0).records  # dispatched: the thread saw it and sleeps
        not_due = time.monotonic() + 2.5  # the head waits 3 s
        before = schedule_wakeups(b.proc.pid)
        for i in range(1000):
            assert send(cli, "TW", b"m%d" % i, props={"DELAY": "2"}).code == mp.SUCCESS
        woke = schedule_wakeups(b.proc.pid) - before
        assert time.monotonic() < not_due, "too slow to tell: the head may have come due"
        assert woke <= 5, "the schedule thread woke %d times for 1000 sends" % woke
        got = []
        while len(got) < 1001:
            got += [x.body for x in arrive(cli, "TW", 0, len(got))[0]]
        assert got == [b"head"] + [b"m%d" % i for i in range(1000)]
    b.check_clean()

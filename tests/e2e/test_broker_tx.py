"""test_broker_tx.py — transactional messages (RocketMQ 4.9) through the Python encoder, as a
stock TransactionMQProducer drives them: a send flagged TRANSACTION_PREPARED is a half message
nobody consumes; END_TRANSACTION commits it (delivered once, flagged COMMIT) or rolls it back;
a transaction left open is checked back with CHECK_TRANSACTION_STATE on the producer's own
connection until it answers or transactionCheckMax checks went unanswered; all of it survives
a SIGKILL of the broker."""

import json
import socket
import time
import uuid

import mqproto as mp
import mqrecord as mr
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory, restart  # noqa: F401

END_TRANSACTION = 37
CHECK_TRANSACTION_STATE = 39
PREPARED, COMMIT, ROLLBACK = 4, 8, 12
NO_PERMISSION = 16


def half_send(cli, topic, body, group="TXG"):
    uniq = uuid.uuid4().hex.upper()
    props = mr.props(TRAN_MSG="true", PGROUP=group, UNIQ_KEY=uniq, WAIT="true")
    ext = {"a": group, "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": str(PREPARED),
           "g": str(int(time.time() * 1000)), "h": "0", "i": props, "j": "0", "k": "false"}
    r = cli.call(SEND_MESSAGE_V2, ext, body)
    assert r.code == mp.SUCCESS, r
    r.uniq = uniq
    return r


def end_ext(qoff, phys, how, group="TXG", check=False, uniq=""):
    return {"producerGroup": group, "tranStateTableOffset": str(qoff),
            "commitLogOffset": str(phys), "commitOrRollback": str(how),
            "fromTransactionCheck": "true" if check else "false", "msgId": uniq,
            "transactionId": uniq}


def end_tx(cli, r, how, **kw):
    """END_TRANSACTION as stock clients send it: oneway."""
    cli.oneway(END_TRANSACTION, end_ext(r.ext["queueOffset"], int(r.ext["msgId"][16:], 16), how,
                                        uniq=r.uniq, **kw))


def bodies_until(cli, topic, last, timeout=10):
    """Pulls topic queue 0 from 0 until a record with body `last` is there; the bodies."""
    deadline = time.monotonic() + timeout
    while True:
        recs = pull(cli, topic, 0, 0, max_nums=64, suspend_ms=500).records
        if last in [r.body for r in recs]:
            return recs
        assert time.monotonic() < deadline, [r.body for r in recs]


def heartbeat_producer(cli, group="TXG", client="10.0.0.9@tx"):
    hb = {"clientID": client, "producerDataSet": [{"groupName": group}], "consumerDataSet": []}
    assert cli.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS


def next_check(cli, timeout):
    """The next CHECK_TRANSACTION_STATE the broker sends on this connection, or None."""
    cli.sock.settimeout(timeout)
    try:
        while True:
            f = mp.read_frame(cli.sock)
            if not f.is_response and f.code == CHECK_TRANSACTION_STATE:
                return f
    except socket.timeout:
        return None
    finally:
        cli.sock.settimeout(5.0)


def test_commit_and_rollback(broker_factory):
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TX", queues=1)
        c = half_send(cli, "TX", b"commit-me")
        r = half_send(cli, "TX", b"roll-me-back")
        assert pull(cli, "TX", 0, 0).records == []  # half messages are nobody's
        end_tx(cli, c, COMMIT)
        end_tx(cli, r, ROLLBACK)
        end_tx(cli, c, COMMIT)  # answered twice (a check crossing the first answer): once
        assert send(cli, "TX", b"after").code == mp.SUCCESS
        recs = bodies_until(cli, "TX", b"after")
        assert [x.body for x in recs] == [b"commit-me", b"after"]
        got = recs[0]
        assert got.sysflag & 0xC == COMMIT
        assert got.prepared_tx_offset == int(c.ext["msgId"][16:], 16)
        assert got.props["UNIQ_KEY"] == c.uniq and got.props["PGROUP"] == "TXG"
        assert not {"TRAN_MSG", "REAL_TOPIC", "REAL_QID"} & set(got.props)
        # Wrong answers are refused with RocketMQ's remarks (when not sent oneway).
        phys, qoff = int(r.ext["msgId"][16:], 16), r.ext["queueOffset"]
        for ext, remark in ((end_ext(qoff, phys, COMMIT, group="Other"), "producer group wrong"),
                            (end_ext(int(qoff) + 7, phys, COMMIT), "table offset wrong"),
                            (end_ext(qoff, phys + 1, COMMIT), "Find prepared")):
            e = cli.call(END_TRANSACTION, ext)
            assert e.code == mp.SYSTEM_ERROR and remark in e.remark, e
        # A batch cannot be a transaction.
        ext = {"a": "TXG", "b": "TX", "c": "TBW102", "d": "4", "e": "0", "f": str(PREPARED),
               "g": "0", "h": "0", "i": "", "j": "0", "k": "false", "m": "true"}
        assert cli.call(SEND_BATCH_MESSAGE, ext, mr.batch_body([(b"a", "")])).code == 16
    b.check_clean()


def test_open_transactions_are_checked_back(daemons, broker_factory):
    b = broker_factory(transactionTimeOut=300, transactionCheckInterval=200,
                       transactionCheckMax=3)
    with mp.Client(b.port) as admin_cli:
        create_topic(admin_cli, "TXC", queues=1)
    with mp.Client(b.port) as pc:
        heartbeat_producer(pc)
        u = half_send(pc, "TXC", b"unknown-then-commit")
        f = next_check(pc, 5)
        assert f is not None, "no CHECK_TRANSACTION_STATE"
        assert f.ext["transactionId"] == u.uniq and f.ext["msgId"] == u.uniq
        assert int(f.ext["commitLogOffset"]) == int(u.ext["msgId"][16:], 16)
        rec = mr.decode_records(f.body)[0]
        assert (rec.topic, rec.body) == ("TXC", b"unknown-then-commit")
        pc.oneway(END_TRANSACTION, end_ext(f.ext["tranStateTableOffset"],
                                           f.ext["commitLogOffset"], COMMIT, check=True,
                                           uniq=u.uniq))
        assert [x.body for x in bodies_until(pc, "TXC", b"unknown-then-commit")] == \
            [b"unknown-then-commit"]
        # Never answered: checked transactionCheckMax times, then dropped.
        d = half_send(pc, "TXC", b"never-answered")
        checks = 0
        while next_check(pc, 2) is not None:
            checks += 1
            assert checks <= 3
        assert checks == 3
    # A transaction open across a SIGKILL is checked again after the restart; the committed
    # one is not.
    with mp.Client(b.port) as pc:
        k = half_send(pc, "TXC", b"open-across-a-kill")
    b.kill()
    b = restart(daemons, b)
    with mp.Client(b.port) as pc:
        heartbeat_producer(pc)
        f = next_check(pc, 5)
        assert f is not None and f.ext["transactionId"] == k.uniq, f
        pc.oneway(END_TRANSACTION, end_ext(f.ext["tranStateTableOffset"],
                                           f.ext["commitLogOffset"], COMMIT, check=True,
                                           uniq=k.uniq))
        recs = bodies_until(pc, "TXC", b"open-across-a-kill")
        assert [x.body for x in recs] == [b"unknown-then-commit", b"open-across-a-kill"]
        assert next_check(pc, 1) is None  # nothing open any more
    assert d.uniq  # (dropped above: never delivered)
    b.check_clean()


def test_a_committed_delayed_message_waits_its_delay(broker_factory):
    """DELAY on a transactional message applies to the committed copy, as in RocketMQ."""
    b = broker_factory(messageDelayLevel="2s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TXD", queues=1)
        uniq = uuid.uuid4().hex.upper()
        props = mr.props(TRAN_MSG="true", PGROUP="TXG", UNIQ_KEY=uniq, DELAY="1")
        ext = {"a": "TXG", "b": "TXD", "c": "TBW102", "d": "4", "e": "0", "f": str(PREPARED),
               "g": str(int(time.time() * 1000)), "h": "0", "i": props, "j": "0", "k": "false"}
        r = cli.call(SEND_MESSAGE_V2, ext, b"later")
        assert r.code == mp.SUCCESS, r
        r.uniq = uniq
        end_tx(cli, r, COMMIT)
        committed_at = time.monotonic()
        waiting = pull(cli, "SCHEDULE_TOPIC_XXXX", 0, 0, suspend_ms=2000).records
        assert [w.body for w in waiting] == [b"later"] and waiting[0].sysflag & 0xC == COMMIT
        assert pull(cli, "TXD", 0, 0).records == []
        got = bodies_until(cli, "TXD", b"later")
        assert time.monotonic() - committed_at >= 1.5 and got[0].sysflag & 0xC == COMMIT
    b.check_clean()


def test_the_transaction_topics_take_no_sends(broker_factory):
    """RocketMQ's TopicValidator.isNotAllowedSendTopic: a forged half message could be committed
    into any topic, a forged op message would resolve someone else's open transaction."""
    b = broker_factory(autoCreateTopicEnable="true")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TXF", queues=1)
        for t in ("RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                  "RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC"):
            r = send(cli, t, b"0", props={"REAL_TOPIC": "TXF", "REAL_QID": "0", "PGROUP": "EVIL"})
            assert r.code == NO_PERMISSION and "forbidden" in r.remark, (t, r)
        assert half_send(cli, "TXF", b"real").ext["queueOffset"] == "0"  # the broker's own: fine
    b.check_clean()


def test_a_transaction_without_a_producer_is_dropped_too(broker_factory):
    """RocketMQ counts a check even when no producer of the group is connected: a transaction
    whose producers are gone is dropped after transactionCheckMax rounds, not kept (and checked)
    forever, holding back every resolved offset behind it."""
    b = broker_factory(transactionTimeOut=100, transactionCheckInterval=100,
                       transactionCheckMax=2)
    with mp.Client(b.port) as cli:
        create_topic(cli, "TXN", queues=1)
        orphan = half_send(cli, "TXN", b"orphan", group="GONE")
        end_tx(cli, half_send(cli, "TXN", b"behind", group="GONE"), COMMIT)
        # Dropped once the check thread's progress (CID_RMQ_SYS_TRANS) passes both.
        deadline = time.monotonic() + 10
        while True:
            r = cli.call(QUERY_CONSUMER_OFFSET, {"consumerGroup": "CID_RMQ_SYS_TRANS",
                                                 "topic": "RMQ_SYS_TRANS_HALF_TOPIC",
                                                 "queueId": "0"})
            if r.code == mp.SUCCESS and int(r.ext["offset"]) == 2:
                break
            assert time.monotonic() < deadline, r
            time.sleep(0.1)
        heartbeat_producer(cli, group="GONE")
        assert next_check(cli, 1) is None, "dropped, not checked"
        assert orphan.uniq
    b.check_clean()


def test_one_client_with_many_producer_groups_does_not_starve_the_others(broker_factory):
    """The broker keeps a bounded number of producers for the check-back; one connection
    heartbeating thousands of producer groups filled it, and no other producer's transaction
    was checked back any more (now dropped after transactionCheckMax rounds)."""
    b = broker_factory(transactionTimeOut=100, transactionCheckInterval=100)
    with mp.Client(b.port) as flood, mp.Client(b.port) as pc:
        hb = {"clientID": "10.0.0.8@flood", "consumerDataSet": [],
              "producerDataSet": [{"groupName": "P%d" % i} for i in range(5000)]}
        assert flood.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS
        create_topic(pc, "TXS", queues=1)
        heartbeat_producer(pc)
        u = half_send(pc, "TXS", b"checked")
        f = next_check(pc, 5)
        assert f is not None and f.ext["transactionId"] == u.uniq, "no check-back"
    b.check_clean()

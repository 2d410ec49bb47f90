"""test_broker_sql92.py — SQL92 property filtering with enablePropertyFilter=true (RocketMQ's
ExpressionMessageFilter): CHECK_CLIENT_CONFIG compiles the expression, a pull with an SQL92
subscription (in the request, or registered by the group's heartbeat) gets only the messages
whose properties match, the skipped ones moving the next offset on; a pull without the
subscription flag needs the group's registered subscription, as new as the consumer's. The
default configuration's refusal is test_broker_locks.py's."""

import json
import threading
import time

import mqproto as mp
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory  # noqa: F401

CHECK_CLIENT_CONFIG = 46
SUBSCRIPTION_PARSE_FAILED = 23
SUBSCRIPTION_NOT_EXIST = 24
SUBSCRIPTION_NOT_LATEST = 25
FILTER_DATA_NOT_EXIST = 27


def check(cli, expr, expr_type="SQL92"):
    sd = {"topic": "TQ", "subString": expr, "expressionType": expr_type, "tagsSet": [],
          "codeSet": [], "subVersion": 1}
    return cli.call(CHECK_CLIENT_CONFIG, {}, json.dumps(
        {"clientId": "c@1", "group": "GQ", "subscriptionData": sd}).encode())


def heartbeat(cli, group, topic, expr, expr_type="SQL92", version=1, client="c@1"):
    sd = {"topic": topic, "subString": expr, "expressionType": expr_type, "tagsSet": [],
          "codeSet": [], "subVersion": version}
    hb = {"clientID": client, "producerDataSet": [],
          "consumerDataSet": [{"groupName": group, "consumeType": "CONSUME_PASSIVELY",
                               "messageModel": "CLUSTERING",
                               "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
                               "unitMode": False, "subscriptionDataSet": [sd]}]}
    assert cli.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS


def bodies(p):
    return [r.body for r in p.records]


def test_check_client_config_compiles_sql92(broker_factory):
    b = broker_factory(enablePropertyFilter="true")
    with mp.Client(b.port) as cli:
        assert check(cli, "a IS NOT NULL AND a BETWEEN 1 AND 3").code == mp.SUCCESS
        assert check(cli, "TagA", expr_type="TAG").code == mp.SUCCESS
        r = check(cli, "a >")
        assert r.code == SUBSCRIPTION_PARSE_FAILED, r
        assert r.remark.startswith("Invalid MessageSelector. ") and "end of expression" in r.remark
        r = check(cli, "a = 1 AND (b = 2")
        assert r.code == SUBSCRIPTION_PARSE_FAILED and '")"' in r.remark, r
        r = check(cli, "a > 'x'")
        assert r.code == SUBSCRIPTION_PARSE_FAILED and "cannot be compared" in r.remark, r
        r = check(cli, "(" * 5000)
        assert r.code == SUBSCRIPTION_PARSE_FAILED and "longer than" in r.remark, r
        r = check(cli, "a = 1", expr_type="CLASS")
        assert r.code == SUBSCRIPTION_PARSE_FAILED and "unsupported" in r.remark, r
        # a body that is not the request's JSON (RocketMQ's decode throws) was answered SUCCESS,
        # as if the expression had compiled: a string with NUL (jansson refuses \u0000), cut
        # JSON, another shape
        for body in [json.dumps({"subscriptionData": {"expressionType": "SQL92",
                                                      "subString": "a\u0000 = 1"}}).encode(),
                     b'{"subscriptionData": {"expressionType": "SQL92"', b"[]",
                     b'{"subscriptionData": "a = 1"}']:
            r = cli.call(CHECK_CLIENT_CONFIG, {}, body)
            assert r.code == mp.SYSTEM_ERROR and "malformed" in r.remark, (body, r)
    b.check_clean()


def test_sql92_pull_returns_only_matching_messages(broker_factory):
    b = broker_factory(enablePropertyFilter="true")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TQ", queues=1)
        msgs = [(b"m0", {"a": "1", "color": "red"}), (b"m1", {"a": "5", "color": "blue"}),
                (b"m2", {"color": "red"}), (b"m3", {"a": "2", "color": "green"}),
                (b"m4", {"a": "x", "color": "red"}), (b"m5", {"a": "3"})]
        for body, props in msgs:
            assert send(cli, "TQ", body, tags="T" + body.decode(), props=props).code == 0
        cases = {
            "a IS NOT NULL": [b"m0", b"m1", b"m3", b"m4", b"m5"],
            "a BETWEEN 1 AND 3": [b"m0", b"m3", b"m5"],   # m4: 'x' is no number: unmatched
            "a > 1 AND color = 'red'": [],                 # m0 fails a > 1, m4 errs
            "color IN ('red', 'green')": [b"m0", b"m2", b"m3", b"m4"],
            "color NOT IN ('red')": [b"m1", b"m3"],        # m5: no color: unknown
            "a = 1 OR color = 'blue'": [b"m0", b"m1"],
            "NOT (color = 'red')": [b"m1", b"m3"],
            "color IS NULL": [b"m5"],
            "TAGS = 'Tm3'": [b"m3"],
            "color CONTAINS 'ee'": [b"m3"],
        }
        for expr, want in cases.items():
            p = pull(cli, "TQ", 0, 0, expr=expr, expr_type="SQL92")
            if want:
                assert p.code == mp.SUCCESS and bodies(p) == want, (expr, p)
                assert all(r.props.get("TAGS") == "T" + r.body.decode() for r in p.records)
            else:
                # nothing matched in the scanned range: the next offset moved past it all
                assert p.code == PULL_RETRY_IMMEDIATELY, (expr, p)
                assert int(p.ext["nextBeginOffset"]) == len(msgs), p
        # the next offset of a filtered pull is past the skipped messages, not past the last hit
        p = pull(cli, "TQ", 0, 0, expr="a = 1", expr_type="SQL92", max_nums=1)
        assert bodies(p) == [b"m0"] and int(p.ext["nextBeginOffset"]) == 1, p
        p = pull(cli, "TQ", 0, 1, expr="a = 3", expr_type="SQL92")
        assert bodies(p) == [b"m5"] and int(p.ext["nextBeginOffset"]) == 6, p
        p = pull(cli, "TQ", 0, 6, expr="a = 3", expr_type="SQL92")
        assert p.code == PULL_NOT_FOUND, p
        # a bad expression in the request is RocketMQ's SUBSCRIPTION_PARSE_FAILED
        p = pull(cli, "TQ", 0, 0, expr="a >", expr_type="SQL92")
        assert p.code == SUBSCRIPTION_PARSE_FAILED, p
        # tag subscriptions work as before
        assert bodies(pull(cli, "TQ", 0, 0, expr="Tm1 || Tm2")) == [b"m1", b"m2"]
    b.check_clean()


def test_sql92_from_the_heartbeat(broker_factory):
    """A pull without the subscription flag (a Java or ali-ons push consumer's) is filtered by
    the group's registered SQL92 subscription."""
    b = broker_factory(enablePropertyFilter="true")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TH", queues=1)
        for i in range(6):
            assert send(cli, "TH", b"h%d" % i, props={"n": str(i)}).code == 0
        heartbeat(cli, "GH", "TH", "n >= 4 OR n = 1")
        p = pull(cli, "TH", 0, 0, group="GH", has_sub=False, expr="", expr_type="")
        assert p.code == mp.SUCCESS and bodies(p) == [b"h1", b"h4", b"h5"], p
        # a new heartbeat's expression replaces the old one (compiled anew, cached by its text)
        heartbeat(cli, "GH", "TH", "n = 7")
        with mp.Client(b.port) as cli2:
            assert send(cli2, "TH", b"h6", props={"n": "6"}).code == 0
            assert send(cli2, "TH", b"h7", props={"n": "7"}).code == 0
        p = pull(cli, "TH", 0, 6, group="GH", has_sub=False, expr="", expr_type="",
                 suspend_ms=5000)
        assert p.code == mp.SUCCESS and bodies(p) == [b"h7"], p
        # a heartbeat whose expression is over the registry's 511 bytes is refused saying so
        # (it said "malformed HeartbeatData body")
        long_expr = "n = 1 OR " * 60 + "n = 2"
        sd = {"topic": "TH", "subString": long_expr, "expressionType": "SQL92", "subVersion": 1}
        hb = {"clientID": "c@2", "producerDataSet": [],
              "consumerDataSet": [{"groupName": "GL", "subscriptionDataSet": [sd]}]}
        r = cli.call(HEART_BEAT, {}, json.dumps(hb).encode())
        assert r.code == mp.SYSTEM_ERROR and "longer than 511 bytes" in r.remark, r
        # a registered expression that does not compile: FILTER_DATA_NOT_EXIST
        heartbeat(cli, "GB", "TH", "n = = 1")
        p = pull(cli, "TH", 0, 0, group="GB", has_sub=False, expr="", expr_type="")
        assert p.code == FILTER_DATA_NOT_EXIST and "expression may be wrong" in p.remark, p
    b.check_clean()


def test_a_pull_by_the_registered_subscription_needs_it_and_as_new(broker_factory):
    """A pull without the subscription flag (a push consumer's) is filtered by what the group's
    heartbeats registered: with none there it is SUBSCRIPTION_NOT_EXIST, not a pull of
    everything; when the consumer's subVersion is newer than the registered one (its changed
    subscription has not reached the broker yet) it is SUBSCRIPTION_NOT_LATEST, not a pull by
    the old one, whose skipped messages the consumer would never see; of the group's clients
    the newest subscription counts (PullMessageProcessor, ConsumerGroupInfo)."""
    b = broker_factory()
    with mp.Client(b.port) as cli:
        create_topic(cli, "TV", queues=1)
        create_topic(cli, "TOther", queues=1)
        for i, tag in enumerate("abab"):
            assert send(cli, "TV", b"%s%d" % (tag.encode(), i), tags=tag).code == 0

        def pull_hb(group, version, topic="TV"):
            return pull(cli, topic, 0, 0, group=group, has_sub=False, expr="", expr_type="",
                        version=version)

        p = pull_hb("GV", 0)
        assert p.code == SUBSCRIPTION_NOT_EXIST and "group info not exist" in p.remark, p
        heartbeat(cli, "GV", "TV", "a", expr_type="TAG", version=100)
        p = pull_hb("GV", 100, topic="TOther")
        assert p.code == SUBSCRIPTION_NOT_EXIST and "subscription not exist" in p.remark, p
        p = pull_hb("GV", 200)
        assert p.code == SUBSCRIPTION_NOT_LATEST and "not latest" in p.remark, p
        p = pull_hb("GV", 100)
        assert p.code == mp.SUCCESS and bodies(p) == [b"a0", b"a2"], p
        # the new subscription arrives: pulls of the new version are served by it
        heartbeat(cli, "GV", "TV", "b", expr_type="TAG", version=200)
        p = pull_hb("GV", 200)
        assert p.code == mp.SUCCESS and bodies(p) == [b"b1", b"b3"], p
        # another client of the group registers a newer one: it serves the whole group
        heartbeat(cli, "GV", "TV", "a", expr_type="TAG", version=300, client="c@2")
        for version in (300, 200):
            p = pull_hb("GV", version)
            assert p.code == mp.SUCCESS and bodies(p) == [b"a0", b"a2"], (version, p)
        # a pull that carries its subscription is served by it, whatever is registered
        p = pull(cli, "TV", 0, 0, group="GNone", expr="a")
        assert p.code == mp.SUCCESS and bodies(p) == [b"a0", b"a2"], p
    b.check_clean()


def held_pulls(cli):
    return int(cli.call(28, {}).json_body()["table"]["heldPullRequests"])


def wait_held(cli, n, timeout=10):
    deadline = time.monotonic() + timeout
    while held_pulls(cli) != n:
        assert time.monotonic() < deadline, "pull not parked"
        time.sleep(0.01)


def test_sql92_long_poll_holds_on_through_unmatched_arrivals(broker_factory):
    """A parked SQL92 pull woken by messages its expression does not take holds on (RocketMQ's
    PullRequestHoldService checks the filter before waking): it used to answer
    PULL_RETRY_IMMEDIATELY at the first such arrival, so a stream of unmatched messages had the
    consumer round-tripping at the stream's rate. It answers with the matching one."""
    b = broker_factory(enablePropertyFilter="true")
    with mp.Client(b.port) as cli, mp.Client(b.port) as c2:
        create_topic(cli, "TL", queues=1)
        result = {}

        def parked_pull():
            result["p"] = pull(cli, "TL", 0, 0, expr="a = 1", expr_type="SQL92",
                               suspend_ms=20000)

        t = threading.Thread(target=parked_pull)
        t.start()
        wait_held(c2, 1)
        for i in range(5):   # each wakes the hold, which parks again further on
            assert send(c2, "TL", b"n%d" % i, props={"a": "2"}).code == 0
            wait_held(c2, 1)
        assert send(c2, "TL", b"yes", props={"a": "1"}).code == 0
        t.join(15)
        p = result["p"]
        assert p.code == mp.SUCCESS and bodies(p) == [b"yes"], p
        assert int(p.ext["nextBeginOffset"]) == 6, p
        # the deadline still ends the hold when nothing matches
        t0 = time.monotonic()
        p = pull(cli, "TL", 0, 6, expr="a = 1", expr_type="SQL92", suspend_ms=1000)
        assert p.code == PULL_NOT_FOUND and time.monotonic() - t0 < 5, p
    b.check_clean()


def test_sql92_pull_bounds_its_evaluation_work(broker_factory):
    """A 4 KiB expression of ~200 CONTAINS over 30 KiB values costs ~6 MiB of searching per
    record; a pull evaluated every candidate of its scan (up to 4096), holding a broker thread
    for seconds. It now stops past 64 MiB of such work, answering with what it has and the next
    offset at the first record it did not evaluate: every pull still moves on, and repeated
    pulls see every record once."""
    b = broker_factory(enablePropertyFilter="true")
    terms = ["a CONTAINS 'ab'"] + ["a CONTAINS 'x%d'" % i for i in range(1, 190)]
    expr = " OR ".join(terms)
    assert len(expr) <= 4096
    with mp.Client(b.port) as cli:
        create_topic(cli, "TW", queues=1)
        for i in range(20):
            value = "a" * 30000 + ("b" if i == 15 else "")
            assert send(cli, "TW", b"w%d" % i, props={"a": value}).code == 0
        off, got, pulls = 0, [], 0
        while off < 20:
            p = pull(cli, "TW", 0, off, expr=expr, expr_type="SQL92", max_nums=64)
            assert p.code in (mp.SUCCESS, PULL_RETRY_IMMEDIATELY), p
            nxt = int(p.ext["nextBeginOffset"])
            assert off < nxt <= 20, (off, p)
            got += bodies(p)
            off, pulls = nxt, pulls + 1
        assert got == [b"w15"] and pulls >= 2, (got, pulls)
    b.check_clean()


def test_libmqclient_sql92_consumer(namesrv, broker_factory):
    """libmqclient's mqc_consumer_subscribe_sql through example_consumer_pull -q: the group
    consumer, rebalancing over the topic's queues, takes exactly the matching messages."""
    from clientkit import create_topic as admin_create_topic, msgs, route_brokers, run, wait_for
    b = broker_factory(namesrv=namesrv, enablePropertyFilter="true")
    assert wait_for(lambda: route_brokers(namesrv, "TBW102")), "broker not registered"
    admin_create_topic(namesrv, "TC", queues=2)
    want = set()
    with mp.Client(b.port) as cli:
        for i in range(20):
            props = {"k": str(i)} if i % 3 else {}
            assert send(cli, "TC", b"c%d" % i, queue_id=i % 2, props=props).code == 0
            if i % 3 and i % 2 == 0 and i >= 6:
                want.add("c%d" % i)
    sql = "k IS NOT NULL AND k >= 6 AND k NOT IN ('1', '3', '5', '7', '9', '11', '13', '15', " \
          "'17', '19')"
    rc, out, err = run("example_consumer_pull", "-t", "TC", "-g", "GC", "-c", 0, "-w", 3000,
                       "-q", sql, ns=namesrv, timeout=30)
    assert rc == 0, err
    assert sorted(m[4] for m in msgs(out)) == sorted(want)
    # the library refuses an expression that does not compile before asking any broker
    rc, out, err = run("example_consumer_pull", "-t", "TC", "-g", "GC2", "-c", 0, "-w", 500,
                       "-q", "k >", ns=namesrv)
    assert rc == 1 and "consumer:" in err, (out, err)
    b.check_clean()


def test_libmqclient_sql92_start_checks_the_broker(namesrv, broker_factory):
    """As a stock client's start (CHECK_CLIENT_CONFIG per broker of the topic): a consumer with
    an SQL92 subscription does not start against a broker with enablePropertyFilter=false, and
    says why, instead of starting and having every pull refused."""
    from clientkit import create_topic as admin_create_topic, route_brokers, run, wait_for
    b = broker_factory(namesrv=namesrv)
    assert wait_for(lambda: route_brokers(namesrv, "TBW102")), "broker not registered"
    admin_create_topic(namesrv, "TD", queues=1)
    rc, out, err = run("example_consumer_pull", "-t", "TD", "-g", "GD", "-c", 0, "-w", 500,
                       "-q", "k IS NOT NULL", ns=namesrv, timeout=30)
    assert rc == 1, (out, err)
    assert "does not support consumer to filter message by SQL92" in err, err
    b.check_clean()

"""test_mqadmin.py — every mqadmin subcommand against real daemons, in both output forms (human
tables and --json), plus help, usage errors and exit codes (0 ok, 1 failure, 2 usage)."""


import json

import pytest

import brokers
import mqproto as mp
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory  # noqa: F401
from clientkit import addr, admin, create_topic, route_brokers, run, wait_for
from conftest import free_port

GET_ALL_TOPIC_CONFIG = 21
GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201

SUBCOMMANDS = ["updateTopic", "deleteTopic", "topicList", "topicRoute", "topicStatus",
               "clusterList", "brokerStatus", "updateSubGroup", "deleteSubGroup",
               "consumerProgress", "consumerConnection",
               "sendMessage", "consumeMessage", "queryMsgByKey", "queryMsgById"]


def table(lines):
    """A '#col  #col' table -> list of dicts; columns start where their '#' header does."""
    head = lines[0]
    starts = [i for i, ch in enumerate(head) if ch == "#" and (i == 0 or head[i - 1] == " ")]
    names = [head[s + 1:e].strip() for s, e in zip(starts, starts[1:] + [len(head)])]
    return [{n: l[s:e].strip() for n, s, e in zip(names, starts, starts[1:] + [None])}
            for l in lines[1:]]


def kv(lines):
    """'key : value' lines -> dict."""
    return {k.strip(): v.strip() for k, _, v in (l.partition(" : ") for l in lines if " : " in l)}


@pytest.fixture
def two_brokers(namesrv, broker_factory):
    a = broker_factory(namesrv=namesrv, name="broker-a")
    b = broker_factory(namesrv=namesrv, name="broker-b")
    assert wait_for(lambda: route_brokers(namesrv, "TBW102") == {"broker-a", "broker-b"})
    return namesrv, a, b


def test_help_usage_and_exit_codes():
    rc, out, _ = run("mqadmin", "--help")
    assert rc == 0 and all(any(l.split()[:1] == [s] for l in out) for s in SUBCOMMANDS)
    assert run("mqadmin")[0] == 2
    rc, _, err = run("mqadmin", "noSuchCommand")
    assert rc == 2 and "unknown subcommand" in err
    for sub in SUBCOMMANDS:
        rc, out, _ = run("mqadmin", sub, "--help")
        assert rc == 0 and out[0].startswith("usage: mqadmin %s" % sub), out
        assert any("--json" in l for l in out) and any("-n ADDR" in l for l in out)
    assert run("mqadmin", "topicRoute")[0] == 2  # -t required
    assert run("mqadmin", "topicRoute", "-t")[0] == 2  # -t without its value
    assert run("mqadmin", "topicList", "-x")[0] == 2
    assert run("mqadmin", "topicList", "extra")[0] == 2
    assert run("mqadmin", "updateTopic", "-t", "T", "-r", "many", "-b", "1.2.3.4:5")[0] == 2
    assert run("mqadmin", "updateTopic", "-t", "T")[0] == 2  # neither -c nor -b
    assert run("mqadmin", "queryMsgById", "-i", "nothex")[0] == 2
    # No NameServer there: a failure, not a usage error.
    rc, _, err = run("mqadmin", "topicList", "-n", "127.0.0.1:%d" % free_port())
    assert rc == 1 and err


def test_created_topic_is_routed_when_the_create_returns(two_brokers):
    """The broker answers UPDATE_AND_CREATE_TOPIC only after registering the change with the
    NameServer (as RocketMQ's updateAndCreateTopic does), so the route exists at once: the
    route query follows the answer with no wait, from the same process."""
    ns, a, _ = two_brokers
    with mp.Client(a.port) as cli:
        for i in range(20):
            brokers.create_topic(cli, "TNow%d" % i)
            assert brokers.route_ok(ns.port, "TNow%d" % i, ["broker-a"]), i
    rc, _, err = admin(ns, "updateTopic", "-b", addr(a), "-t", "TNowAdm")
    assert rc == 0, err
    assert route_brokers(ns, "TNowAdm") == {"broker-a"}


def test_topics(two_brokers):
    ns, a, b = two_brokers
    rc, out, err = admin(ns, "updateTopic", "-c", "DefaultCluster", "-t", "TAdm", "-r", 3,
                         "-w", 3)
    assert rc == 0, err
    rows = table(out)
    assert {r["broker"] for r in rows} == {"broker-a", "broker-b"}
    assert all(r["result"] == "success" and r["readQueueNums"] == "3" for r in rows)
    assert wait_for(lambda: route_brokers(ns, "TAdm") == {"broker-a", "broker-b"}, timeout=5)
    # One broker, JSON output, different counts and read-only permission.
    rc, rows, err = admin(ns, "updateTopic", "-b", addr(b), "-t", "TAdm", "-r", 2, "-w", 2,
                          "-p", 4, as_json=True)
    assert rc == 0 and rows[0]["broker"] == "broker-b" and rows[0]["perm"] == 4, err

    def route_json():
        rc, r, _ = admin(ns, "topicRoute", "-t", "TAdm", as_json=True)
        return r if rc == 0 and {q["brokerName"]: q["perm"] for q in r["queueDatas"]} == \
            {"broker-a": 6, "broker-b": 4} else None
    r = wait_for(route_json, timeout=5)
    assert r, admin(ns, "topicRoute", "-t", "TAdm")
    assert {d["brokerName"]: d["brokerAddrs"]["0"] for d in r["brokerDatas"]} == \
        {"broker-a": addr(a), "broker-b": addr(b)}
    rc, out, _ = admin(ns, "topicRoute", "-t", "TAdm")
    assert rc == 0 and "[queueDatas]" in out and "[brokerDatas]" in out
    qd = table(out[out.index("[queueDatas]") + 1:])
    assert {q["brokerName"]: q["writeQueueNums"] for q in qd} == {"broker-a": "3", "broker-b": "2"}

    rc, out, _ = admin(ns, "topicList")
    assert rc == 0 and "TAdm" in out and "TBW102" in out
    rc, names, _ = admin(ns, "topicList", as_json=True)
    assert rc == 0 and "TAdm" in names

    for i in range(5):
        rc, _, err = admin(ns, "sendMessage", "-t", "TAdm", "-p", "m%d" % i, "-b", "broker-a",
                           "-i", 1)
        assert rc == 0, err
    rc, rows, _ = admin(ns, "topicStatus", "-t", "TAdm", as_json=True)
    assert rc == 0 and len(rows) == 3 + 2
    by_q = {(r["broker"], r["queueId"]): r for r in rows}
    assert by_q[("broker-a", 1)]["maxOffset"] == 5 and by_q[("broker-a", 1)]["minOffset"] == 0
    assert by_q[("broker-a", 1)]["lastUpdateTimestamp"] > 0
    assert by_q[("broker-a", 0)]["maxOffset"] == 0
    assert by_q[("broker-a", 0)]["lastUpdateTimestamp"] == 0
    rc, out, _ = admin(ns, "topicStatus", "-t", "TAdm")
    t = table(out)
    assert rc == 0 and [r["maxOffset"] for r in t if r["queueId"] == "1" and
                        r["broker"] == "broker-a"] == ["5"]

    rc, out, err = admin(ns, "deleteTopic", "-c", "DefaultCluster", "-t", "TAdm")
    assert rc == 0, err
    assert {r["target"] for r in table(out)} == {"broker-a", "broker-b", "namesrv"}
    for d in (a, b):  # gone from the brokers' topic tables, not only from the route
        with mp.Client(d.port) as cli:
            r = cli.call(GET_ALL_TOPIC_CONFIG)
        assert r.code == mp.SUCCESS and "TAdm" not in r.json_body()["topicConfigTable"]
    rc, _, err = admin(ns, "topicRoute", "-t", "TAdm")
    assert rc == 1 and "no route" in err
    # Deleting again succeeds (RocketMQ's behaviour); JSON rows say so.
    rc, rows, _ = admin(ns, "deleteTopic", "-c", "DefaultCluster", "-t", "TAdm", as_json=True)
    assert rc == 0 and all(r["result"] == "success" for r in rows)
    assert admin(ns, "updateTopic", "-c", "NoSuchCluster", "-t", "X")[0] == 1


def test_messages(namesrv, broker_factory):
    ns = namesrv
    broker_factory(namesrv=ns)
    create_topic(ns, "TMsg", queues=2)
    rc, out, err = admin(ns, "sendMessage", "-t", "TMsg", "-p", "hello world", "-k", "K1 K2",
                         "-c", "TagA")
    assert rc == 0, err
    sent = table(out)[0]
    assert sent["sendStatus"] == "SEND_OK" and len(sent["offsetMsgId"]) == 32
    rc, rows, err = admin(ns, "sendMessage", "-t", "TMsg", "-p", "second", "-k", "K2",
                          "-b", "broker-a", "-i", 1, as_json=True)
    assert rc == 0 and rows[0]["queueId"] == 1, err
    second = rows[0]

    # Straight from the queues (no group), table and JSON.
    rc, out, _ = admin(ns, "consumeMessage", "-t", "TMsg")
    assert rc == 0
    got = table(out)
    assert sorted(m["body"] for m in got) == ["hello world", "second"]
    rc, got, _ = admin(ns, "consumeMessage", "-t", "TMsg", "-q", 1, "-o", second["queueOffset"],
                       as_json=True)
    assert rc == 0 and [m["body"] for m in got] == ["second"]
    assert got[0]["keys"] == "K2" and got[0]["msgId"] == second["offsetMsgId"]
    assert admin(ns, "consumeMessage", "-t", "TMsg", "-q", 7)[0] == 1  # no such queue
    assert admin(ns, "consumeMessage", "-t", "TMsg", "-b", "nosuch")[0] == 1
    rc, got, _ = admin(ns, "consumeMessage", "-t", "TMsg", "-q", 1, "-o", 99, as_json=True)
    assert rc == 0 and got == []  # past the end: nothing to print

    rc, out, _ = admin(ns, "queryMsgByKey", "-t", "TMsg", "-k", "K2")
    assert rc == 0 and sorted(m["body"] for m in table(out)) == ["hello world", "second"]
    rc, got, _ = admin(ns, "queryMsgByKey", "-t", "TMsg", "-k", "K1", as_json=True)
    assert rc == 0 and [m["body"] for m in got] == ["hello world"] and got[0]["tags"] == "TagA"
    rc, got, _ = admin(ns, "queryMsgByKey", "-t", "TMsg", "-k", sent["msgId"], as_json=True)
    assert rc == 0 and [m["body"] for m in got] == ["hello world"]  # by unique id too
    assert admin(ns, "queryMsgByKey", "-t", "TMsg", "-k", "nope")[0] == 1

    rc, out, _ = admin(ns, "queryMsgById", "-i", sent["offsetMsgId"])
    info = kv(out)
    assert rc == 0 and info["body"] == "hello world" and info["keys"] == "K1 K2"
    rc, m, _ = admin(ns, "queryMsgById", "-i", second["offsetMsgId"], as_json=True)
    assert rc == 0 and m["body"] == "second" and m["queueId"] == 1
    bad = second["offsetMsgId"][:16] + "00000000000FFFFF"
    assert admin(ns, "queryMsgById", "-i", bad)[0] == 1


def test_cluster_groups_and_progress(two_brokers):
    ns, a, b = two_brokers
    rc, out, _ = admin(ns, "clusterList")
    rows = table(out)
    assert rc == 0 and {(r["brokerName"], r["addr"]) for r in rows} == \
        {("broker-a", addr(a)), ("broker-b", addr(b))}
    rc, rows, _ = admin(ns, "clusterList", as_json=True)
    assert rc == 0 and {r["cluster"] for r in rows} == {"DefaultCluster"}
    assert all(r["brokerId"] == 0 and r["msgPutTotal"] != "-" for r in rows)

    rc, out, _ = admin(ns, "brokerStatus", "-b", addr(a))
    info = kv(out)
    assert rc == 0 and "msgPutTotalTodayNow" in info and "bootTimestamp" in info
    rc, info, _ = admin(ns, "brokerStatus", "-b", addr(b), as_json=True)
    assert rc == 0 and int(info["bootTimestamp"]) > 0
    assert admin(ns, "brokerStatus", "-b", "127.0.0.1:%d" % free_port())[0] == 1

    rc, out, err = admin(ns, "updateSubGroup", "-c", "DefaultCluster", "-g", "GAdm")
    assert rc == 0 and {r["broker"] for r in table(out)} == {"broker-a", "broker-b"}, err
    rc, rows, _ = admin(ns, "updateSubGroup", "-b", addr(a), "-g", "GAdm2", as_json=True)
    assert rc == 0 and rows == [{"broker": "broker-a", "addr": addr(a), "group": "GAdm2",
                                 "result": "success"}]
    for d, groups in ((a, {"GAdm", "GAdm2"}), (b, {"GAdm"})):  # what the brokers now hold
        with mp.Client(d.port) as cli:
            r = cli.call(GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        held = set(r.json_body()["subscriptionGroupTable"])
        assert groups <= held and ("GAdm2" in held) == (d is a), held

    create_topic(ns, "TProg", queues=2, expect=("broker-a", "broker-b"))
    for i in range(10):
        assert admin(ns, "sendMessage", "-t", "TProg", "-p", "p%d" % i)[0] == 0
    rc, got, _ = admin(ns, "consumeMessage", "-t", "TProg", "-g", "GAdm", "-c", 4, "-w", 2000,
                       as_json=True)
    assert rc == 0 and len(got) == 4
    rc, prog, _ = admin(ns, "consumerProgress", "-g", "GAdm", "-t", "TProg", as_json=True)
    assert rc == 0 and len(prog["queues"]) == 4
    assert sum(q["brokerOffset"] for q in prog["queues"]) == 10
    assert sum(q["consumerOffset"] for q in prog["queues"]) == 4 and prog["diffTotal"] == 6
    # Without -t: the topics the group has offsets in.
    rc, out, _ = admin(ns, "consumerProgress", "-g", "GAdm")
    assert rc == 0 and kv(out)["diffTotal"] == "6"
    assert {r["topic"] for r in table(out[out.index("[queues]") + 1:])} == {"TProg"}
    # The rest, then no lag.
    rc, got, _ = admin(ns, "consumeMessage", "-t", "TProg", "-g", "GAdm", "-c", 100, "-w", 1000,
                       as_json=True)
    assert rc == 0 and len(got) == 6
    rc, prog, _ = admin(ns, "consumerProgress", "-g", "GAdm", "-t", "TProg", as_json=True)
    assert rc == 0 and prog["diffTotal"] == 0

    # deleteSubGroup: the group goes; with -r true its offsets go too.
    rc, out, err = admin(ns, "deleteSubGroup", "-b", addr(a), "-g", "GAdm2")
    assert rc == 0 and [r["result"] for r in table(out)] == ["success"], err
    rc, rows, _ = admin(ns, "deleteSubGroup", "-c", "DefaultCluster", "-g", "GAdm", "-r", "true",
                        as_json=True)
    assert rc == 0 and {(r["broker"], r["result"]) for r in rows} == \
        {("broker-a", "success"), ("broker-b", "success")}
    for d in (a, b):
        with mp.Client(d.port) as cli:
            held = set(cli.call(GET_ALL_SUBSCRIPTIONGROUP_CONFIG).json_body()
                       ["subscriptionGroupTable"])
        assert not {"GAdm", "GAdm2"} & held, held
    rc, prog, _ = admin(ns, "consumerProgress", "-g", "GAdm", "-t", "TProg", as_json=True)
    assert rc == 0 and prog["diffTotal"] == 10, prog
    assert admin(ns, "deleteSubGroup", "-b", addr(a), "-g", "G", "-r", "yes")[0] == 2


def test_namesrv_from_environment(namesrv, broker_factory):
    broker_factory(namesrv=namesrv)
    assert wait_for(lambda: route_brokers(namesrv, "TBW102"))
    rc, out, err = run("mqadmin", "clusterList", env={"NAMESRV_ADDR": addr(namesrv)})
    assert rc == 0 and "broker-a" in "\n".join(out), err


def test_two_namesrvs(namesrv_factory, broker_factory):
    """A broker registered with two NameServers: queries fail over from a dead one, and
    deleteTopic removes the route from every NameServer (they share nothing)."""
    n1, n2 = namesrv_factory(), namesrv_factory()
    both = "%s;%s" % (addr(n1), addr(n2))
    broker_factory(namesrv=n1, namesrvAddr=both)
    assert wait_for(lambda: route_brokers(n1, "TBW102") and route_brokers(n2, "TBW102"))
    rc, _, err = run("mqadmin", "updateTopic", "-n", both, "-c", "DefaultCluster", "-t", "T2")
    assert rc == 0, err
    assert wait_for(lambda: route_brokers(n1, "T2") and route_brokers(n2, "T2"), timeout=5)
    dead = "127.0.0.1:%d" % free_port()
    rc, out, err = run("mqadmin", "topicList", "-n", "%s;%s" % (dead, addr(n2)))
    assert rc == 0 and "T2" in out, err
    rc, _, err = run("mqadmin", "deleteTopic", "-n", both, "-c", "DefaultCluster", "-t", "T2")
    assert rc == 0, err
    assert not route_brokers(n1, "T2") and not route_brokers(n2, "T2")


def test_send_to_unknown_topic_says_so(namesrv, broker_factory):
    """Without auto-creation, a send to a topic nobody created names the cause, not ENOENT's
    'No such file or directory'."""
    broker_factory(namesrv=namesrv, autoCreateTopicEnable="false")
    rc, _, err = admin(namesrv, "sendMessage", "-t", "NoSuchTopic", "-p", "x")
    assert rc == 1 and "no route" in err and "No such file" not in err, err
    rc, _, err = run("mqbench", "produce", "-n", addr(namesrv), "-t", "NoSuchTopic", "-N", "1",
                     timeout=30)
    assert rc != 0 and "no route" in err and "No such file" not in err, err


def test_consumer_connection(namesrv, broker_factory):
    """consumerConnection: the group's live clients, from GET_CONSUMER_CONNECTION_LIST on the
    brokers of its %RETRY% topic."""
    b = broker_factory(namesrv=namesrv)
    rc, _, err = admin(namesrv, "consumerConnection", "-g", "GCC")
    assert rc == 1 and "not online" in err
    hb = {"clientID": "10.1.2.3@cc", "producerDataSet": [],
          "consumerDataSet": [{"groupName": "GCC", "consumeType": "CONSUME_PASSIVELY",
                               "messageModel": "CLUSTERING",
                               "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET", "unitMode": False,
                               "subscriptionDataSet": [{"topic": "TCC", "subString": "*",
                                                        "expressionType": "TAG", "tagsSet": [],
                                                        "codeSet": [], "subVersion": 1}]}]}
    with mp.Client(b.port) as cli:  # the client stays connected while mqadmin looks
        assert cli.call(brokers.HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS
        rc, out, err = admin(namesrv, "consumerConnection", "-g", "GCC", as_json=True)
        assert rc == 0, err
        assert [c["clientId"] for c in out["connections"]] == ["10.1.2.3@cc"]
        assert out["connections"][0]["language"] == "JAVA"
        assert out["messageModel"] == "CLUSTERING"
        assert out["subscriptions"] == [{"topic": "TCC", "subString": "*",
                                         "expressionType": "TAG"}]
        rc, lines, err = admin(namesrv, "consumerConnection", "-g", "GCC")
        assert rc == 0 and any("10.1.2.3@cc" in l for l in lines), (lines, err)

"""test_broker_stats.py — what RocketMQ's own admin tools ask a broker for:
GET_TOPIC_STATS_INFO (202, `mqadmin topicStatus`) and GET_CONSUME_STATS (208, `mqadmin
consumerProgress`), in fastjson's encoding of MessageQueue-keyed maps (object keys), which a
stock client decodes, GET_CONSUMER_CONNECTION_LIST (203, `mqadmin consumerConnection`) and
QUERY_TOPIC_CONSUME_BY_WHO (300)."""

import json
import re
import time

import mqproto as mp
from brokers import *  # noqa: F401,F403 (fixtures and helpers)
from brokers import broker_factory  # noqa: F401

GET_TOPIC_STATS_INFO = 202
GET_CONSUME_STATS = 208
GET_CONSUMER_CONNECTION_LIST = 203
QUERY_TOPIC_CONSUME_BY_WHO = 300
CONSUMER_NOT_ONLINE = 206
MQ_KEY = re.compile(r'\{"brokerName":("(?:[^"\\]|\\.)*"),"queueId":(\d+),"topic":"([^"]*)"\}:')


def mq_map(body):
    """fastjson's {"offsetTable":{{MessageQueue}:{...}}} -> {(broker, topic, queueId): {...}},
    checking that every key is a MessageQueue object with its fields in fastjson's order."""
    text = body.decode()
    keyed = MQ_KEY.sub(lambda m: '"%s|%s|%s":' % (json.loads(m.group(1)), m.group(3),
                                                   m.group(2)), text)
    table = json.loads(keyed)["offsetTable"]
    assert len(table) == len(MQ_KEY.findall(text))
    return {tuple(k.split("|")[:2]) + (int(k.split("|")[2]),): v for k, v in table.items()}


def test_topic_and_consume_stats(broker_factory):
    b = broker_factory(name="broker-s")
    with mp.Client(b.port) as cli:
        create_topic(cli, "TSt", queues=2)
        create_topic(cli, "TOther", queues=1)
        for i in range(3):
            assert send(cli, "TSt", b"m%d" % i, queue_id=0).code == mp.SUCCESS
        assert send(cli, "TSt", b"q1", queue_id=1).code == mp.SUCCESS
        recs = pull(cli, "TSt", 0, 0).records

        r = cli.call(GET_TOPIC_STATS_INFO, {"topic": "TSt"})
        assert r.code == mp.SUCCESS, r
        stats = mq_map(r.body)
        assert stats[("broker-s", "TSt", 0)] == {"lastUpdateTimestamp": recs[2].store_ts,
                                                 "maxOffset": 3, "minOffset": 0}
        assert stats[("broker-s", "TSt", 1)]["maxOffset"] == 1 and len(stats) == 2
        r = cli.call(GET_TOPIC_STATS_INFO, {"topic": "Nope"})
        assert r.code == mp.TOPIC_NOT_EXIST and "not exist" in r.remark

        r = cli.call(UPDATE_CONSUMER_OFFSET, {"consumerGroup": "GSt", "topic": "TSt",
                                              "queueId": "0", "commitOffset": "2"})
        assert r.code == mp.SUCCESS
        for ext in ({"consumerGroup": "GSt", "topic": "TSt"}, {"consumerGroup": "GSt"}):
            r = cli.call(GET_CONSUME_STATS, ext)
            assert r.code == mp.SUCCESS, r
            cs = mq_map(r.body)
            assert cs == {("broker-s", "TSt", 0): {"brokerOffset": 3, "consumerOffset": 2,
                                                   "lastTimestamp": recs[1].store_ts},
                          ("broker-s", "TSt", 1): {"brokerOffset": 1, "consumerOffset": 0,
                                                   "lastTimestamp": 0}}, cs
            assert r.body.decode().startswith('{"consumeTps":0.0,')
        # A group without offsets: its named topic with zeros, and nothing without a topic.
        r = cli.call(GET_CONSUME_STATS, {"consumerGroup": "GNone", "topic": "TOther"})
        assert mq_map(r.body) == {("broker-s", "TOther", 0): {
            "brokerOffset": 0, "consumerOffset": 0, "lastTimestamp": 0}}
        assert mq_map(cli.call(GET_CONSUME_STATS, {"consumerGroup": "GNone"}).body) == {}
        # Who consumes TSt: GSt by its offsets, GLive by a live subscription.
        hb = {"clientID": "c@live", "producerDataSet": [],
              "consumerDataSet": [{"groupName": "GLive", "consumeType": "CONSUME_PASSIVELY",
                                   "messageModel": "CLUSTERING", "unitMode": False,
                                   "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                                   "subscriptionDataSet": [{"topic": "TSt", "subString": "*",
                                                            "expressionType": "TAG"}]}]}
        assert cli.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS
        r = cli.call(QUERY_TOPIC_CONSUME_BY_WHO, {"topic": "TSt"})
        assert r.code == mp.SUCCESS and sorted(r.json_body()["groupList"]) == ["GLive", "GSt"]
        r = cli.call(QUERY_TOPIC_CONSUME_BY_WHO, {"topic": "TOther"})
        assert r.json_body()["groupList"] == []
    b.check_clean()


def test_consumer_connection_list(broker_factory):
    """GET_CONSUMER_CONNECTION_LIST (203, `mqadmin consumerConnection`): the group's live
    clients with their address, language and version, its subscriptions and settings."""
    b = broker_factory()
    with mp.Client(b.port) as cli:
        r = cli.call(GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "GC"})
        assert r.code == CONSUMER_NOT_ONLINE and "not online" in r.remark, r
        sub = {"topic": "TC", "subString": "TagA || TagB", "expressionType": "TAG",
               "tagsSet": ["TagA", "TagB"], "codeSet": [], "subVersion": 7}
        hb = {"clientID": "10.0.0.1@77", "producerDataSet": [],
              "consumerDataSet": [{"groupName": "GC", "consumeType": "CONSUME_ACTIVELY",
                                   "messageModel": "BROADCASTING",
                                   "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
                                   "unitMode": False, "subscriptionDataSet": [sub]}]}
        assert cli.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS
        local = "127.0.0.1:%d" % cli.sock.getsockname()[1]
        r = cli.call(GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "GC"})
        assert r.code == mp.SUCCESS, r
        cc = r.json_body()
        assert cc["connectionSet"] == [{"clientAddr": local, "clientId": "10.0.0.1@77",
                                        "language": "JAVA", "version": 399}]
        assert (cc["consumeType"], cc["messageModel"], cc["consumeFromWhere"]) == \
            ("CONSUME_ACTIVELY", "BROADCASTING", "CONSUME_FROM_FIRST_OFFSET")
        got = cc["subscriptionTable"]["TC"]
        assert (got["subString"], got["expressionType"], got["subVersion"]) == \
            ("TagA || TagB", "TAG", 7)
    # The client's connection closed: the group is not online any more (once the broker has
    # seen the close, which may come after the next connection's request).
    deadline = time.monotonic() + 5
    with mp.Client(b.port) as cli:
        while cli.call(GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "GC"}).code != \
                CONSUMER_NOT_ONLINE:
            assert time.monotonic() < deadline, "the closed client stayed in the group"
            time.sleep(0.02)
    b.check_clean()


def test_consumer_connection_with_long_non_ascii_settings(broker_factory):
    """Settings longer than the broker keeps are cut at a character, not inside one: a cut
    UTF-8 sequence is not a JSON string, and the field (or the whole subscription) went missing
    from the answer."""
    b = broker_factory()
    with mp.Client(b.port) as cli:
        sub = {"topic": "TU", "subString": "*", "expressionType": "TAG\u00e9" * 10}
        hb = {"clientID": "10.0.0.1@78", "producerDataSet": [],
              "consumerDataSet": [{"groupName": "GU", "consumeType": "CONSUME_PASSIVELY",
                                   "messageModel": "CLUSTERING",
                                   "consumeFromWhere": "\u00e9" * 40,
                                   "subscriptionDataSet": [sub]}]}
        assert cli.call(HEART_BEAT, {}, json.dumps(hb).encode()).code == mp.SUCCESS
        r = cli.call(GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": "GU"})
        assert r.code == mp.SUCCESS, r
        cc = r.json_body()
        assert set(cc["consumeFromWhere"]) == {"\u00e9"}, cc
        assert cc["subscriptionTable"]["TU"]["expressionType"].startswith("TAG\u00e9"), cc
    b.check_clean()

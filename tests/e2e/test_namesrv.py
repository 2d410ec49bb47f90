"""test_namesrv.py — mqnamesrv end to end: fake brokers (encoded in Python) register, clients
query routes with JSON and binary headers, cluster info, topic list, KV config, unknown codes,
expiry, connection close, unregister, concurrency, malformed frames, SIGTERM."""

import socket
import struct
import threading
import time
import zlib

import mqproto as mp

BROKER = {"brokerName": "broker-a", "brokerAddr": "127.0.0.1:10911",
          "clusterName": "DefaultCluster", "haServerAddr": "127.0.0.1:10912", "brokerId": "0"}


def register(client, topics, counter=1, **over):
    ext = dict(BROKER, **over)
    return client.call(mp.REGISTER_BROKER, ext, mp.register_body(topics, counter))


def route(client, topic, serialize=None):
    return client.call(mp.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}, serialize=serialize)


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_register_and_route_json_and_binary(namesrv):
    with mp.Client(namesrv.port) as broker, mp.Client(namesrv.port) as cli:
        r = register(broker, {"TopicA": (4, 4, 6), "TopicB": (8, 2, 4)})
        assert r.code == mp.SUCCESS, r
        assert r.serialize == mp.JSON
        for ser in (mp.JSON, mp.ROCKETMQ):
            resp = route(cli, "TopicA", serialize=ser)
            assert resp.code == mp.SUCCESS, resp
            assert resp.serialize == ser
            data = resp.json_body()
            assert data["queueDatas"] == [{"brokerName": "broker-a", "readQueueNums": 4,
                                           "writeQueueNums": 4, "perm": 6,
                                           "topicSysFlag": 0}]
            bd = data["brokerDatas"][0]
            assert bd["cluster"] == "DefaultCluster" and bd["brokerName"] == "broker-a"
            assert bd["brokerAddrs"] == {"0": "127.0.0.1:10911"}
            assert data["filterServerTable"] == {}
        b = route(cli, "TopicB").json_body()["queueDatas"][0]
        assert (b["readQueueNums"], b["writeQueueNums"], b["perm"]) == (8, 2, 4)
        missing = route(cli, "NoSuchTopic")
        assert missing.code == mp.TOPIC_NOT_EXIST
        assert "NoSuchTopic" in missing.remark


def test_fastjson_bare_keys_and_java_header(namesrv):
    """A body with fastjson's unquoted integer keys and a header with non-string values."""
    body = (b'{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":'
            b'{"counter":3,"timestamp":1},"topicConfigTable":{"T1":{"order":false,"perm":6,'
            b'"readQueueNums":2,"topicFilterType":"SINGLE_TAG","topicName":"T1",'
            b'"topicSysFlag":0,"writeQueueNums":2}}},"extra":{0:"x",1:"y"}}')
    header = (b'{"code":103,"extFields":{"brokerId":0,"brokerName":"b1",'
              b'"brokerAddr":"127.0.0.1:1","clusterName":"C","haServerAddr":"h",'
              b'"compressed":false},"flag":0,"language":"JAVA","opaque":77,'
              b'"serializeTypeCurrentRPC":"JSON","version":399}')
    frame = struct.pack(">ii", 4 + len(header) + len(body), len(header)) + header + body
    with socket.create_connection(("127.0.0.1", namesrv.port), timeout=5) as s:
        s.sendall(frame)
        resp = mp.read_frame(s)
        assert resp.opaque == 77 and resp.code == mp.SUCCESS, resp
        with mp.Client(namesrv.port) as cli:  # while the broker's connection is open
            assert route(cli, "T1").code == mp.SUCCESS


def test_compressed_register_body(namesrv):
    """RegisterBrokerBody.encode(true) of 4.9: deflated lengths + strings."""
    dv = b'{"counter":5,"timestamp":1700000000000}'
    topics = [b"Zipped 3 3 6 SINGLE_TAG", b"Zipped2 1 1 2 SINGLE_TAG"]
    raw = struct.pack(">i", len(dv)) + dv + struct.pack(">i", len(topics))
    for t in topics:
        raw += struct.pack(">i", len(t)) + t
    raw += struct.pack(">i", 2) + b"[]"
    with mp.Client(namesrv.port, serialize=mp.ROCKETMQ) as cli:
        ext = dict(BROKER, compressed="true", bodyCrc32=str(zlib.crc32(zlib.compress(raw, 9))
                                                              & 0x7FFFFFFF))
        r = cli.call(mp.REGISTER_BROKER, ext, zlib.compress(raw, 9))
        assert r.code == mp.SUCCESS, r
        q = route(cli, "Zipped2").json_body()["queueDatas"][0]
        assert (q["readQueueNums"], q["perm"]) == (1, 2)
        bad = cli.call(mp.REGISTER_BROKER, dict(ext, bodyCrc32="12345"), zlib.compress(raw, 9))
        assert bad.code == mp.SYSTEM_ERROR and "crc32" in bad.remark


def test_cluster_info_and_topic_list(namesrv):
    with mp.Client(namesrv.port) as cli:
        register(cli, {"T1": (4, 4, 6)})
        register(cli, {"T2": (4, 4, 6)}, brokerName="broker-b", brokerAddr="127.0.0.1:20911")
        register(cli, {"T1": (4, 4, 6)}, brokerId="1", brokerAddr="127.0.0.1:10921")
        info = cli.call(mp.GET_BROKER_CLUSTER_INFO).json_body()
        assert sorted(info["clusterAddrTable"]["DefaultCluster"]) == ["broker-a", "broker-b"]
        assert info["brokerAddrTable"]["broker-a"]["brokerAddrs"] == {
            "0": "127.0.0.1:10911", "1": "127.0.0.1:10921"}
        topics = cli.call(mp.GET_ALL_TOPIC_LIST_FROM_NAMESERVER).json_body()["topicList"]
        assert sorted(topics) == ["T1", "T2"]
        register(cli, {"T3": (1, 1, 6)}, brokerName="broker-c", brokerAddr="127.0.0.1:40911",
                 clusterName="Other")
        by = cli.call(mp.GET_TOPICS_BY_CLUSTER, {"cluster": "Other"}).json_body()["topicList"]
        assert by == ["T3"]
        # the slave learns its master
        r = register(cli, {"T1": (4, 4, 6)}, brokerId="1", brokerAddr="127.0.0.1:10921")
        assert r.ext.get("masterAddr") == "127.0.0.1:10911"
        assert r.ext.get("haServerAddr") == "127.0.0.1:10912"
        # deleting a topic
        assert cli.call(mp.DELETE_TOPIC_IN_NAMESRV, {"topic": "T2"}).code == mp.SUCCESS
        assert route(cli, "T2").code == mp.TOPIC_NOT_EXIST


def test_data_version(namesrv):
    with mp.Client(namesrv.port) as cli:
        register(cli, {"T1": (4, 4, 6)}, counter=1)
        # same version: the topic table is not rebuilt
        register(cli, {"T1": (4, 4, 6), "T9": (1, 1, 6)}, counter=1)
        assert route(cli, "T9").code == mp.TOPIC_NOT_EXIST
        register(cli, {"T1": (4, 4, 6), "T9": (1, 1, 6)}, counter=2)
        assert route(cli, "T9").code == mp.SUCCESS
        q = {"brokerName": "broker-a", "brokerAddr": "127.0.0.1:10911",
             "clusterName": "DefaultCluster", "brokerId": "0"}
        same = cli.call(mp.QUERY_DATA_VERSION, q, b'{"timestamp":1700000000000,"counter":2}')
        assert same.code == mp.SUCCESS and same.ext["changed"] == "false"
        assert same.json_body()["counter"] == 2
        other = cli.call(mp.QUERY_DATA_VERSION, q, b'{"timestamp":1700000000000,"counter":3}')
        assert other.ext["changed"] == "true"


def test_kv_config(namesrv):
    with mp.Client(namesrv.port, serialize=mp.ROCKETMQ) as cli:
        r = cli.call(mp.GET_KV_CONFIG, {"namespace": "ORDER_TOPIC_CONFIG", "key": "T1"})
        assert r.code == mp.QUERY_NOT_FOUND
        ext = {"namespace": "NS", "key": "k1", "value": "v1"}
        assert cli.call(mp.PUT_KV_CONFIG, ext).code == mp.SUCCESS
        assert cli.call(mp.PUT_KV_CONFIG, dict(ext, key="k2")).code == mp.SUCCESS
        r = cli.call(mp.GET_KV_CONFIG, {"namespace": "NS", "key": "k1"})
        assert r.code == mp.SUCCESS and r.ext["value"] == "v1"
        r = cli.call(mp.GET_KVLIST_BY_NAMESPACE, {"namespace": "NS"})
        assert r.json_body() == {"table": {"k1": "v1", "k2": "v1"}}
        r = cli.call(mp.GET_KVLIST_BY_NAMESPACE, {"namespace": "None"})
        assert r.code == mp.QUERY_NOT_FOUND
        r = cli.call(mp.GET_KV_CONFIG_BY_VALUE, {"namespace": "NS", "key": "v1"})
        assert r.code == mp.SUCCESS and sorted(r.ext["value"].split(";")) == ["k1", "k2"]
        assert cli.call(mp.DELETE_KV_CONFIG, {"namespace": "NS", "key": "k1"}).code == 0
        r = cli.call(mp.GET_KV_CONFIG, {"namespace": "NS", "key": "k1"})
        assert r.code == mp.QUERY_NOT_FOUND
        missing = cli.call(mp.GET_KV_CONFIG, {"namespace": "NS"})
        assert missing.code == mp.SYSTEM_ERROR and "key" in missing.remark


def test_order_topic_conf(namesrv_factory):
    ns = namesrv_factory(orderMessageEnable="true")
    with mp.Client(ns.port) as cli:
        register(cli, {"Ord": (2, 2, 6)})
        cli.call(mp.PUT_KV_CONFIG, {"namespace": "ORDER_TOPIC_CONFIG", "key": "Ord",
                                    "value": "broker-a:2"})
        assert route(cli, "Ord").json_body()["orderTopicConf"] == "broker-a:2"
        r = register(cli, {"Ord": (2, 2, 6)})
        assert r.json_body() == {"table": {"Ord": "broker-a:2"}}


def test_unknown_code(namesrv):
    with mp.Client(namesrv.port) as cli:
        for ser in (mp.JSON, mp.ROCKETMQ):
            r = cli.call(10, {"topic": "x"}, serialize=ser)
            assert r.code == mp.REQUEST_CODE_NOT_SUPPORTED
            assert "10" in r.remark and "not supported" in r.remark


def test_expiry(namesrv_factory):
    ns = namesrv_factory(scanNotActiveBrokerInterval=100, brokerChannelExpiredTime=400)
    with mp.Client(ns.port) as broker, mp.Client(ns.port) as cli:
        register(broker, {"Exp": (1, 1, 6)})
        assert route(cli, "Exp").code == mp.SUCCESS
        assert wait_for(lambda: route(cli, "Exp").code == mp.TOPIC_NOT_EXIST, 5.0)
        info = cli.call(mp.GET_BROKER_CLUSTER_INFO).json_body()
        assert info["brokerAddrTable"] == {} and info["clusterAddrTable"] == {}
        # the expired broker's connection was closed by the server
        broker.sock.settimeout(3)
        assert broker.sock.recv(1) == b""
    assert "expired" in ns.stderr()


def test_connection_close_removes_broker(namesrv):
    with mp.Client(namesrv.port) as cli:
        broker = mp.Client(namesrv.port)
        register(broker, {"Gone": (1, 1, 6)})
        assert route(cli, "Gone").code == mp.SUCCESS
        broker.close()
        assert wait_for(lambda: route(cli, "Gone").code == mp.TOPIC_NOT_EXIST)


def test_unregister(namesrv):
    with mp.Client(namesrv.port) as cli:
        register(cli, {"U": (1, 1, 6)})
        ext = {k: BROKER[k] for k in ("brokerName", "brokerAddr", "clusterName", "brokerId")}
        assert cli.call(mp.UNREGISTER_BROKER, ext).code == mp.SUCCESS
        assert route(cli, "U").code == mp.TOPIC_NOT_EXIST
        assert cli.call(mp.GET_BROKER_CLUSTER_INFO).json_body()["clusterAddrTable"] == {}


def test_concurrent_registrations_and_queries(namesrv):
    errors = []

    def broker(i):
        try:
            with mp.Client(namesrv.port, serialize=i % 2) as c:
                for n in range(20):
                    r = register(c, {"C%d" % i: (4, 4, 6), "Shared": (2, 2, 6)}, counter=n,
                                 brokerName="b%d" % i, brokerAddr="127.0.0.1:%d" % (30000 + i))
                    assert r.code == mp.SUCCESS
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader():
        try:
            with mp.Client(namesrv.port) as c:
                for _ in range(100):
                    r = route(c, "Shared")
                    assert r.code in (mp.SUCCESS, mp.TOPIC_NOT_EXIST)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=broker, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with mp.Client(namesrv.port) as c:
        # every broker connection has closed: the route went with them
        assert wait_for(lambda: route(c, "Shared").code == mp.TOPIC_NOT_EXIST)
        assert c.call(mp.GET_BROKER_CLUSTER_INFO).json_body()["brokerAddrTable"] == {}


def _closed_by_server(sock):
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_malformed_frames_close_only_that_connection(namesrv):
    with mp.Client(namesrv.port) as good:
        register(good, {"Keep": (1, 1, 6)})
        cases = [
            struct.pack(">i", 0x7FFFFFF0) + b"\0" * 8,        # oversize length
            struct.pack(">i", 2) + b"\0\0",                     # below the minimum
            struct.pack(">ii", 10, 3 << 24 | 2) + b"{}xxxx",    # bad serialize type
            struct.pack(">ii", 10, 100) + b"{}xxxx",            # header longer than frame
            struct.pack(">ii", 10, 6) + b"{nope}",              # bad JSON
            struct.pack(">ii", 21, 1 << 24 | 17) + b"\0" * 13 + struct.pack(">i", 999),
        ]
        for frame in cases:
            with socket.create_connection(("127.0.0.1", namesrv.port), timeout=5) as s:
                s.sendall(frame)
                assert _closed_by_server(s), frame
        # garbage, and a disconnect in the middle of a frame
        with socket.create_connection(("127.0.0.1", namesrv.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _closed_by_server(s)
        with socket.create_connection(("127.0.0.1", namesrv.port), timeout=5) as s:
            s.sendall(struct.pack(">i", 1000) + b"partial")
        assert route(good, "Keep").code == mp.SUCCESS
        assert namesrv.alive()
    assert "closing" in namesrv.stderr()


def test_sigterm_exits_zero(namesrv):
    with mp.Client(namesrv.port) as cli:
        register(cli, {"T": (1, 1, 6)})
        assert namesrv.stop() == 0
    assert "stopped" in namesrv.stderr()


def test_fd_exhaustion_pauses_accept_and_recovers(daemons, tmp_path):
    """With a low open-files limit, accept() fails for a while; the server keeps serving the
    connections it has and accepts again once descriptors are free."""
    from conftest import binary, free_port
    port = free_port()
    ns = daemons.start("namesrv-lowfd", ["sh", "-c", 'ulimit -n 48 && exec "$0" -p "$1"',
                                         binary("mqnamesrv"), str(port)],
                       port=port, ready_text="ready on")
    first = mp.Client(port)
    extra = []
    for _ in range(60):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            extra.append(s)
        except OSError:
            break
    time.sleep(0.3)
    assert first.call(mp.GET_ALL_TOPIC_LIST_FROM_NAMESERVER).code == mp.SUCCESS
    for s in extra:
        s.close()
    assert wait_for(lambda: _serves(port), 5.0)
    first.close()
    assert "accept on port" in ns.stderr()


def _serves(port):
    try:
        with mp.Client(port, timeout=1) as c:
            return c.call(mp.GET_ALL_TOPIC_LIST_FROM_NAMESERVER).code == mp.SUCCESS
    except OSError:
        return False


def test_stock_alions_client(namesrv):
    """The npm `ali-ons` client (tests/interop, pinned) reads routes from mqnamesrv."""
    import json
    import os
    import shutil
    import subprocess
    node = shutil.which("node")
    interop = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "interop")
    setup = subprocess.run(["bash", os.path.join(interop, "setup.sh")], capture_output=True,
                           text=True, timeout=300)
    assert node and setup.returncode == 0, "tests/interop/setup.sh: " + setup.stderr
    env = dict(os.environ, NODE_PATH=os.path.join(interop, "node_modules"))
    with mp.Client(namesrv.port) as broker:
        register(broker, {"AliTopic": (4, 4, 6)})
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alions_route.js")
        r = subprocess.run([node, script, str(namesrv.port), "AliTopic"], capture_output=True,
                           text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["route"]["queueDatas"][0]["writeQueueNums"] == 4
        assert out["route"]["brokerDatas"][0]["brokerAddrs"] == {"0": "127.0.0.1:10911"}
        assert "No topic route info" in out["missing"]
        assert "No config item" in out["kv"]


def test_startup_errors(namesrv, tmp_path):
    """A taken port, a bad config value and an unknown option end the program non-zero with
    a message; -p overrides the config file's listenPort."""
    import subprocess
    from conftest import binary, free_port
    exe = binary("mqnamesrv")
    r = subprocess.run([exe, "-p", str(namesrv.port)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "cannot" in r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("listenPort=99999\n")
    r = subprocess.run([exe, "-c", str(bad)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "listenPort" in r.stderr
    r = subprocess.run([exe, "-x"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "usage" in r.stderr
    port = free_port()
    r = subprocess.run([exe, "-c", str(bad), "-p", str(port), "-m"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2  # the file is read first and its bad value still fails
    good = tmp_path / "good.conf"
    good.write_text("listenPort=1\nbrokerChannelExpiredTime=5000\n")
    r = subprocess.run([exe, "-c", str(good), "-p", str(port), "-m"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0
    assert "listenPort=%d" % port in r.stdout and "brokerChannelExpiredTime=5000" in r.stdout

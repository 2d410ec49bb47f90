"""test_mqfs_logviews.py — the log views mqfs renders itself, read with the real shell tools
against a real NameServer, broker and mount: tag-filtered topic files (`topic/T:A`,
`topic/T:A||B`) and the .json views of topics and queues. They are /proc-like (st_size 0, read
to the end of what exists now), so the tests check the bytes exactly against what was sent and
what the broker stores: grep/wc/head/tail/jq, several chunks per file, tags whose hash codes
collide, non-UTF-8 bodies, concurrent readers, reads at arbitrary offsets."""

import base64
import json
import os
import subprocess
import threading

import mqproto as mp
import brokers as bsend
import mqrecord as mr
from brokers import broker_factory, queue_records  # noqa: F401
from brokers import mqfs_cluster as cluster  # noqa: F401
from test_mqfs_read import make_topic, sh

READ_RECORDS = 30005  # MQFS_READ_RECORDS, docs/FORMATS.md Part 3
# "Aa" and "BB" have the same Java hashCode: the broker's tag filter cannot tell them apart.
TAGS = ["TagA", "TagB", "Aa", "BB", None]


def send_mixed(m, topic, n, batch=7):
    """Sends n messages cycling through TAGS, `batch` lines per write (each write is one batch
    to one queue, so the queues interleave). Returns [(tag, body)] in send (= store) order."""
    fds = {t: os.open(m.p("topic", topic + (":" + t if t else "")), os.O_WRONLY) for t in TAGS}
    sent, i, k = [], 0, 0
    try:
        while i < n:
            tag = TAGS[k % len(TAGS)]
            k += 1
            lines = ["m%05d %s" % (j, tag or "none") for j in range(i, min(n, i + batch))]
            os.write(fds[tag], "".join(l + "\n" for l in lines).encode())
            sent += [(tag, l) for l in lines]
            i += len(lines)
    finally:
        for fd in fds.values():
            os.close(fd)
    return sent


def text(lines):
    return "".join(l + "\n" for l in lines)


def store_order(m, topic, queues):
    """The topic's records as the broker stores them, in commitlog order."""
    recs = [r for rs in queue_records(m.broker.port, topic, queues).values() for r in rs]
    return sorted(recs, key=lambda r: r.phys_offset)


def test_tag_filtered_views_with_shell_tools(cluster):
    m = cluster
    make_topic(m, "Mixed", queues=4)
    sent = send_mixed(m, "Mixed", 2000)  # 400 per tag: several 256-message chunks
    path = m.p("topic", "Mixed:TagA")
    want_a = [b for t, b in sent if t == "TagA"]
    assert os.stat(path).st_size == 0  # like /proc: the size is not known without a scan
    with open(path) as f:
        assert f.read() == text(want_a)  # on one broker: the order messages were stored
    assert sh("grep -c TagA '%s'" % path).stdout.strip() == str(len(want_a)).encode()
    assert sh("wc -l < '%s'" % path).stdout.strip() == str(len(want_a)).encode()
    assert sh("tail -n 3 '%s'" % path).stdout.decode() == text(want_a[-3:])
    assert sh("head -n 2 '%s'" % path).stdout.decode() == text(want_a[:2])
    both = m.p("topic", "Mixed:TagA||TagB")
    assert sh("cat '%s'" % both).stdout.decode() == text(
        [b for t, b in sent if t in ("TagA", "TagB")])
    # Colliding hash codes: the exact tag decides.
    for tag in ("Aa", "BB"):
        got = sh("cat '%s'" % m.p("topic", "Mixed:" + tag)).stdout.decode()
        assert got == text([b for t, b in sent if t == tag])
    assert sh("cat '%s'" % m.p("topic", "Mixed:Nope")).stdout == b""
    # The unfiltered view is still the exact-size one, and holds every message.
    assert os.stat(m.p("topic", "Mixed")).st_size == len(text(b for _, b in sent))


def test_json_views_give_the_stored_sequence(cluster):
    m = cluster
    make_topic(m, "Js", queues=3)
    sent = send_mixed(m, "Js", 900, batch=5)
    recs = store_order(m, "Js", 3)
    assert len(recs) == len(sent)
    r = sh("jq -c '[.queueId,.queueOffset]' '%s'" % m.p("topic", "Js.json"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["[%d,%d]" % (x.queue_id, x.queue_offset) for x in recs]
    r = sh("jq -r .body '%s'" % m.p("topic", "Js.json"))
    assert r.stdout.decode() == text(b for _, b in sent)
    for q in range(3):
        qp = m.p("queue", "Js", "broker-a-%d.json" % q)
        assert os.stat(qp).st_size == 0
        r = sh("jq -c .queueOffset '%s'" % qp)
        n = sum(1 for x in recs if x.queue_id == q)
        assert r.returncode == 0 and r.stdout.decode().split() == [str(i) for i in range(n)]
    # A tag filter and .json together; fields as the group views give them.
    r = sh("jq -c '[.tags,.body,.topic]' '%s'" % m.p("topic", "Js:BB.json"))
    want = [json.dumps([t, b, "Js"], separators=(",", ":")) for t, b in sent if t == "BB"]
    assert r.stdout.decode().split("\n")[:-1] == want
    obj = json.loads(sh("head -n 1 '%s'" % m.p("topic", "Js.json")).stdout)
    assert len(obj["msgId"]) == 32 and int(obj["msgId"][-16:], 16) == recs[0].phys_offset
    assert obj["storeTimestamp"] >= obj["bornTimestamp"] > 0 and obj["keys"] is None


def test_non_utf8_bodies_in_json(cluster):
    m = cluster
    make_topic(m, "Bin", queues=1)
    bodies = [b"\xff\xfe\x00binary", "caf\u00e9".encode(), b"\xc3\x28 bad utf-8", b"plain"]
    with open(m.p("topic", "Bin:X"), "wb") as f:
        f.write(b"".join(b + b"\n" for b in bodies))
    lines = sh("cat '%s'" % m.p("topic", "Bin:X.json")).stdout.decode().splitlines()
    objs = [json.loads(l) for l in lines]
    assert len(objs) == 4
    for o, b in zip(objs, bodies):
        if "body" in o:
            assert o["body"].encode() == b and "bodyBase64" not in o
        else:
            assert base64.b64decode(o["bodyBase64"]) == b
    assert ["body" in o for o in objs] == [False, True, False, True]
    assert sh("cat '%s'" % m.p("topic", "Bin:X")).stdout == b"".join(b + b"\n" for b in bodies)


def test_concurrent_readers_and_offsets(cluster):
    m = cluster
    make_topic(m, "Conc", queues=4)
    sent = send_mixed(m, "Conc", 1500)
    path = m.p("topic", "Conc:TagB||Aa.json")
    out = [None, None]

    def cat(i):
        out[i] = subprocess.run(["cat", path], capture_output=True, timeout=60).stdout

    ts = [threading.Thread(target=cat, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out[0] == out[1] and out[0].count(b"\n") == sum(
        1 for t, _ in sent if t in ("TagB", "Aa"))
    data = out[0]
    # Reads at any offset give the bytes a sequential read gives: forward skips, backward
    # jumps (within the chunk, and before it), offset 0 again, small reads.
    fd = os.open(path, os.O_RDONLY)
    try:
        for off, n in [(10, 100), (5, 50), (len(data) - 40, 100), (70000, 4096),
                       (3, 7), (0, 17), (len(data), 10), (len(data) + 5, 10), (123456, 1)]:
            assert os.pread(fd, n, off) == data[off:off + n], (off, n)
        assert os.read(fd, 1 << 20) == data[:1 << 20]
    finally:
        os.close(fd)


def test_reader_at_the_end_sees_new_messages(cluster):
    m = cluster
    make_topic(m, "Grow", queues=2)
    with open(m.p("topic", "Grow:A"), "w") as f:
        f.write("one\ntwo\n")
    with open(m.p("topic", "Grow:A")) as r:
        assert r.read() == "one\ntwo\n"
        assert r.read() == ""  # EOF: the messages that exist now
        with open(m.p("topic", "Grow:A"), "w") as f:
            f.write("three\n")
        with open(m.p("topic", "Grow:B"), "w") as f:
            f.write("other\n")
        assert r.read() == "three\n"  # the cursor stayed at the end
        r.seek(0)
        assert r.read() == "one\ntwo\nthree\n"
    make_topic(m, "Empty", queues=2)  # a topic that exists but is empty
    assert sh("cat '%s'" % m.p("topic", "Empty:A")).stdout == b""
    assert sh("cat '%s'" % m.p("queue", "Empty", "broker-a-1.json")).stdout == b""


def test_read_records_request(cluster):
    """MQFS_READ_RECORDS (30005) on the wire: the broker filters by tag hash only, answers
    records in commitlog order and says where to continue (docs/FORMATS.md Part 3)."""
    m = cluster
    make_topic(m, "Wire", queues=2)
    sent = send_mixed(m, "Wire", 60, batch=3)
    recs = store_order(m, "Wire", 2)
    with mp.Client(m.broker.port) as cli:
        got, pos = [], 0
        while True:
            r = cli.call(READ_RECORDS, {"topic": "Wire", "queueId": "-1", "position": str(pos),
                                        "maxMsgNums": "5", "subscription": "Aa"})
            assert r.code == mp.SUCCESS, r
            ext = r.ext
            got += mr.decode_records(r.body or b"")
            assert int(ext["nextBeginOffset"]) > pos or int(ext["nextBeginOffset"]) >= int(
                ext["maxOffset"])
            pos = int(ext["nextBeginOffset"])
            if pos >= int(ext["maxOffset"]):
                break
        # "Aa" and "BB" share a hash code: both come, in commitlog order; the client re-checks.
        want = [x for x in recs if x.body.decode().endswith((" Aa", " BB"))]
        assert [x.phys_offset for x in got] == [x.phys_offset for x in want]
        assert len(want) == sum(1 for t, _ in sent if t in ("Aa", "BB"))
        r = cli.call(READ_RECORDS, {"topic": "Wire", "queueId": "1", "position": "0",
                                    "maxMsgNums": "1000"})
        q1 = [x for x in recs if x.queue_id == 1]
        assert [x.queue_offset for x in mr.decode_records(r.body)] == list(range(len(q1)))
        assert r.ext["nextBeginOffset"] == r.ext["maxOffset"] == str(len(q1))
        r = cli.call(READ_RECORDS, {"topic": "NoSuchTopic", "queueId": "-1", "position": "0"})
        assert r.code == mp.SUCCESS and not r.body and r.ext["maxOffset"] == "0"


def test_key_files_take_tags_and_json(cluster):
    m = cluster
    make_topic(m, "KT", queues=2)
    for tag, body in [("A", "first"), ("B", "second"), ("A", "third")]:
        with open(m.p("key", "KT:" + tag, "order-7"), "w") as f:
            f.write(body + "\n")
    assert open(m.p("key", "KT", "order-7")).read() == "first\nsecond\nthird\n"
    assert open(m.p("key", "KT:A", "order-7")).read() == "first\nthird\n"
    r = sh("jq -c '[.tags,.keys,.body]' '%s'" % m.p("key", "KT:B||A.json", "order-7"))
    assert r.stdout.decode().split() == ['["A","order-7","first"]', '["B","order-7","second"]',
                                         '["A","order-7","third"]']


def test_topic_on_two_brokers(cluster, broker_factory, namesrv):  # noqa: F811
    """A topic on two brokers: the filtered views show each broker's part in commitlog order,
    in broker-name order."""
    m = cluster
    b2 = broker_factory(namesrv=namesrv, name="broker-b")
    parts = {}
    for b in (b2, m.broker):  # broker-b first: the order in the file comes from the names
        with mp.Client(b.port) as cli:
            bsend.create_topic(cli, "Two", queues=2)
            parts[b.port] = []
            for i in range(300):
                tag = "A" if i % 3 else "B"
                body = "%s %d %s" % (b.name_, i, tag)
                r = bsend.send(cli, "Two", body.encode(), queue_id=i % 2, tags=tag)
                assert r.code == mp.SUCCESS, r
                parts[b.port].append((tag, body))
    bsend.wait_route(m.namesrv_port, "Two", brokers=(m.broker.name_, b2.name_))
    # The unfiltered file merges by store time (broker-b's messages were stored first); the
    # filtered views show each broker's part in turn, in broker-name order.
    by_time = parts[b2.port] + parts[m.broker.port]
    assert sh("cat '%s'" % m.p("topic", "Two")).stdout.decode() == text(b for _, b in by_time)
    ordered = parts[m.broker.port] + parts[b2.port]  # broker-a, then broker-b
    assert sh("cat '%s'" % m.p("topic", "Two:A")).stdout.decode() == text(
        b for t, b in ordered if t == "A")
    r = sh("jq -r .body '%s'" % m.p("topic", "Two:B.json"))
    assert r.stdout.decode() == text(b for t, b in ordered if t == "B")
    r = sh("jq -c .queueOffset '%s'" % m.p("queue", "Two", "broker-b-1.json"))
    assert r.stdout.decode().split() == [str(i) for i in range(150)]


def test_reading_while_messages_arrive(cluster):
    """Readers racing a writer: every read is a prefix of the final content, no message twice,
    none skipped."""
    m = cluster
    make_topic(m, "Live", queues=1)
    done = threading.Event()

    def writer():
        with open(m.p("topic", "Live:A"), "w") as f:
            for i in range(0, 6000, 20):
                f.write("".join("live %d\n" % j for j in range(i, i + 20)))
                f.flush()
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    try:
        reads = 0
        while not done.is_set() or reads < 3:
            for name in ("queue/Live/broker-a-0.json", "topic/Live:A.json"):
                r = sh("jq -c .queueOffset '%s'" % m.p(*name.split("/")))
                got = [int(x) for x in r.stdout.split()]
                assert got == list(range(len(got))), name
            reads += 1
    finally:
        t.join()
    assert sh("wc -l < '%s'" % m.p("topic", "Live:A")).stdout.strip() == b"6000"

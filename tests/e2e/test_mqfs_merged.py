"""test_mqfs_merged.py — topic/<Topic> for a topic on two brokers: the brokers' messages merged
by store time (docs/FS.md "Log views"). Real NameServer, two brokers, a real mount and the shell
tools: the file's order is (store time, broker name, commitlog order) as the brokers' records
say, its size and line count are exact, bytes once read stay put when the first broker (by
name) receives more, tail -f prints exactly the new messages in order, and reads at any offset
agree with a full cat."""

import os
import select
import subprocess
import sys
import time

import pytest

import mqproto as mp
from brokers import broker_factory, create_topic, pull, send, wait_route  # noqa: F401
from mqfs_mount import Mount

QUEUES = 2
MQFS_RENDER_AT_TIME = 30006
TOPIC_NOT_EXIST = 17


@pytest.fixture
def two(namesrv, broker_factory, tmp_path):  # noqa: F811
    """mqfs on a NameServer with broker-a and broker-b: the Mount, with .brokers {name: Daemon}."""
    a = broker_factory(namesrv=namesrv, name="broker-a")
    b = broker_factory(namesrv=namesrv, name="broker-b")
    os.makedirs(tmp_path / "fs", exist_ok=True)
    m = Mount(tmp_path / "fs", "127.0.0.1:%d" % namesrv.port).start()
    m.brokers = {"broker-a": a, "broker-b": b}
    m.namesrv_port = namesrv.port
    try:
        yield m
    finally:
        m.stop()


def queue_records(port, topic, queues):
    """{queue: [Record...]}: every retained record of each queue (from its min offset)."""
    out = {}
    with mp.Client(port) as cli:
        for q in range(queues):
            off, recs = 0, []
            while True:
                p = pull(cli, topic, q, off)
                nxt = int(p.ext.get("nextBeginOffset", off))
                if p.code == mp.SUCCESS and p.records:
                    recs += p.records
                    off = p.records[-1].queue_offset + 1
                elif p.code != mp.SUCCESS and nxt > off:  # below the min: retention
                    off = nxt
                else:
                    break
            out[q] = recs
    return out


def make_topic(m, topic):
    """Creates the topic on both brokers; waits until the NameServer routes it to both."""
    for d in m.brokers.values():
        with mp.Client(d.port) as cli:
            create_topic(cli, topic, queues=QUEUES)
    wait_route(m.namesrv_port, topic, brokers=m.brokers)


def send_to(m, topic, name, bodies):
    with mp.Client(m.brokers[name].port) as cli:
        for i, body in enumerate(bodies):
            r = send(cli, topic, body.encode(), queue_id=i % QUEUES)
            assert r.code == mp.SUCCESS, r


def send_alternately(m, topic, bodies):
    """bodies[i] goes to broker-a for even i, broker-b for odd i, one after the other."""
    clis = {n: mp.Client(d.port) for n, d in m.brokers.items()}
    try:
        for i, body in enumerate(bodies):
            r = send(clis["broker-a" if i % 2 == 0 else "broker-b"], topic, body.encode(),
                     queue_id=(i // 2) % QUEUES)
            assert r.code == mp.SUCCESS, r
    finally:
        for c in clis.values():
            c.close()


def expected(m, topic):
    """The bodies in the documented order: (store time, broker name, commitlog offset)."""
    keyed = []
    for name, d in m.brokers.items():
        for recs in queue_records(d.port, topic, QUEUES).values():
            keyed += [(r.store_ts, name, r.phys_offset, r.body.decode()) for r in recs]
    keyed.sort()
    return [k[3] for k in keyed]


def sh(cmd, timeout=30):
    return subprocess.run(cmd, shell=True, capture_output=True, timeout=timeout)


def text(lines):
    return "".join(l + "\n" for l in lines)


def test_merged_order_size_and_random_reads(two):
    m = two
    make_topic(m, "Merged")
    bodies = ["m%03d-%s" % (i, "x" * (i % 13)) for i in range(80)]
    send_alternately(m, "Merged", bodies)
    path = m.p("topic", "Merged")
    want = text(expected(m, "Merged"))
    assert sorted(want.splitlines()) == sorted(bodies)
    with open(path) as f:
        assert f.read() == want  # ordered by store time across the brokers
    assert os.stat(path).st_size == len(want)
    assert sh("wc -l < '%s'" % path).stdout.strip() == b"80"
    data = want.encode()
    for off in (0, 1, 7, len(data) // 3, len(data) // 2 + 5, len(data) - 9, len(data) - 1):
        r = sh("dd if='%s' bs=1 skip=%d count=23 status=none" % (path, off))
        assert r.returncode == 0, r.stderr
        assert r.stdout == data[off:off + 23], off
    with open(path, "rb") as f:  # backwards seeks: the cursor is found again
        for off in (len(data) - 4, len(data) // 2, 3, 0):
            f.seek(off)
            assert f.read(40) == data[off:off + 40]


def test_bytes_stay_put_when_the_first_broker_grows(two):
    m = two
    make_topic(m, "Stable")
    send_to(m, "Stable", "broker-b", ["b%d" % i for i in range(10)])
    send_to(m, "Stable", "broker-a", ["a%d" % i for i in range(10)])
    path = m.p("topic", "Stable")
    before = open(path, "rb").read()
    assert before.count(b"\n") == 20
    # broker-a sorts first: its new messages must not move broker-b's bytes.
    send_to(m, "Stable", "broker-a", ["a-new%d" % i for i in range(5)])
    after = open(path, "rb").read()
    assert after.startswith(before)
    assert after[len(before):] == text(["a-new%d" % i for i in range(5)]).encode()
    with open(path, "rb") as f:  # a reader's earlier offset still reads the same bytes
        f.seek(len(before) // 2)
        assert f.read(len(before) - len(before) // 2) == before[len(before) // 2:]
    assert open(path).read() == text(expected(m, "Stable"))


def test_tail_follows_both_brokers_in_order(two):
    m = two
    make_topic(m, "Tail")
    send_alternately(m, "Tail", ["old%d" % i for i in range(4)])
    path = m.p("topic", "Tail")
    tail = subprocess.Popen(["tail", "-f", "-n", "+1", path], stdout=subprocess.PIPE)
    try:
        got = b""

        def read_lines(n, timeout=15):
            nonlocal got
            deadline = time.monotonic() + timeout
            while got.count(b"\n") < n and time.monotonic() < deadline:
                if select.select([tail.stdout], [], [], 0.2)[0]:
                    got += os.read(tail.stdout.fileno(), 65536)
            return got.decode().splitlines()

        assert read_lines(4) == expected(m, "Tail")
        send_alternately(m, "Tail", ["new%d" % i for i in range(12)])
        lines = read_lines(16)
        assert lines == expected(m, "Tail")  # exactly the new lines, in the file's order
        assert sorted(lines[4:]) == sorted("new%d" % i for i in range(12))
    finally:
        tail.kill()
        tail.wait()


def test_render_at_time_on_the_wire(two):
    """MQFS_RENDER_AT_TIME (30006) encoded independently: offsets and times per asked time."""
    m = two
    make_topic(m, "Wire")
    send_to(m, "Wire", "broker-a", ["one", "twotwo", "three3", "4"])
    queues = queue_records(m.brokers["broker-a"].port, "Wire", QUEUES).values()
    recs = sorted((r.store_ts, r.phys_offset, len(r.body) + 1) for q in queues for r in q)
    ts = [r[0] for r in recs]
    with mp.Client(m.brokers["broker-a"].port) as cli:
        asked = [0, ts[1], ts[-1] + 1]
        r = cli.call(MQFS_RENDER_AT_TIME, {"topic": "Wire", "queueId": "-1",
                                           "timestamps": ",".join(map(str, asked))})
        assert r.code == mp.SUCCESS, r
        offs = [int(x) for x in r.ext["fileOffsets"].split(",")]
        nexts = [int(x) for x in r.ext["storeTimestamps"].split(",")]
        before = [sum(n for t, _, n in recs if t < a) for a in asked]
        assert offs == before
        assert nexts == [ts[0], ts[1], -1]
        prevs = [int(x) for x in r.ext["prevStoreTimestamps"].split(",")]
        assert prevs == [max([t for t in ts if t < a], default=-1) for a in asked]
        assert int(r.ext["watermark"]) > ts[-1]
        assert r.ext["retainedSince"] == "0"
        r = cli.call(MQFS_RENDER_AT_TIME, {"topic": "Wire", "queueId": "0", "timestamp": "0"})
        assert r.code == mp.SYSTEM_ERROR
        r = cli.call(MQFS_RENDER_AT_TIME, {"topic": "NoSuch", "queueId": "-1", "timestamps": ""})
        assert r.code == TOPIC_NOT_EXIST


def test_mtime_is_the_newest_over_both_brokers(two):
    """st_mtime of the merged file: the store time of its newest message, whichever broker
    stored it (MQFS_RENDER_AT_TIME's prevStoreTimestamps at the watermark)."""
    m = two
    make_topic(m, "Mt")
    path = m.p("topic", "Mt")
    assert os.stat(path).st_mtime_ns == os.stat(m.p("topic")).st_mtime_ns  # empty: mount time

    def newest():
        return max(r.store_ts for d in m.brokers.values()
                   for q in queue_records(d.port, "Mt", QUEUES).values() for r in q)

    send_to(m, "Mt", "broker-b", ["b0", "b1"])
    assert os.stat(path).st_mtime_ns == newest() * 1000000
    time.sleep(0.01)
    send_to(m, "Mt", "broker-a", ["a0"])  # the first broker by name, stored last
    assert os.stat(path).st_mtime_ns == newest() * 1000000
    assert os.stat(path).st_size == len(text(expected(m, "Mt")))


def at_time(port, topic):
    with mp.Client(port) as cli:
        r = cli.call(MQFS_RENDER_AT_TIME, {"topic": topic, "queueId": "-1", "timestamps": ""})
    assert r.code == mp.SUCCESS, r
    return r.ext


def test_retention_on_one_broker_removes_only_the_head(namesrv, broker_factory, tmp_path):  # noqa: F811
    """broker-b deletes every full commitlog file at once (fileReservedTime=0, the current hour a
    delete hour): the merged file loses its head — broker-a's older messages too, which stay in
    broker-a's queue files — and what remains is unchanged and in order."""
    hour = time.localtime().tm_hour  # the brokers' delete hours: this one and the next
    a = broker_factory(namesrv=namesrv, name="broker-a")
    b = broker_factory(namesrv=namesrv, name="broker-b", mappedFileSizeCommitLog=65536,
                       fileReservedTime=0, cleanResourceInterval=100,
                       deleteWhen="%02d;%02d" % (hour, (hour + 1) % 24))
    os.makedirs(tmp_path / "fs", exist_ok=True)
    m = Mount(tmp_path / "fs", "127.0.0.1:%d" % namesrv.port).start()
    try:
        m.brokers = {"broker-a": a, "broker-b": b}
        m.namesrv_port = namesrv.port
        make_topic(m, "Ret")
        send_alternately(m, "Ret", ["early%d" % i for i in range(20)])
        path = m.p("topic", "Ret")
        before = open(path).read()
        assert before.splitlines() == expected(m, "Ret")
        # ~100 KiB to broker-b: its first 64 KiB file fills, rolls and is deleted.
        send_to(m, "Ret", "broker-b", ["big%02d-" % i + "x" * 3000 for i in range(35)])
        send_alternately(m, "Ret", ["late%d" % i for i in range(6)])
        deadline = time.monotonic() + 20
        while int(at_time(b.port, "Ret")["retainedSince"]) == 0:
            assert time.monotonic() < deadline, "broker-b never deleted a commitlog file"
            time.sleep(0.1)
        t0 = int(at_time(b.port, "Ret")["retainedSince"])
        assert at_time(a.port, "Ret")["retainedSince"] == "0"
        after = open(path).read()
        keyed = []
        for name, d in m.brokers.items():
            for recs in queue_records(d.port, "Ret", QUEUES).values():
                keyed += [(r.store_ts, name, r.phys_offset, r.body.decode()) for r in recs
                          if r.store_ts >= t0]
        assert after.splitlines() == [k[3] for k in sorted(keyed)]
        assert "early0\n" not in after  # the head went, broker-a's part of it too ...
        qa = "".join(open(m.p("queue", "Ret", "broker-a-%d" % q)).read() for q in range(QUEUES))
        assert "early0\n" in qa  # ... which broker-a's queue files still show
        assert after.endswith(text(expected(m, "Ret")[-6:]))
        assert os.stat(path).st_size == len(after)
    finally:
        m.stop()


def test_reads_during_sends_only_ever_grow(two):
    """Two senders (one per broker) run while a reader re-reads the file, also through one open
    file descriptor from where it stopped: every snapshot is a prefix of every later one."""
    m = two
    make_topic(m, "Live")
    path = m.p("topic", "Live")
    senders = [subprocess.Popen(
        [sys.executable, "-c", SENDER, str(d.port), "Live", name, "150"],
        cwd=os.path.dirname(os.path.abspath(__file__))) for name, d in m.brokers.items()]
    try:
        snaps, streamed = [], b""
        with open(path, "rb") as f:
            while any(s.poll() is None for s in senders):
                snaps.append(open(path, "rb").read())
                streamed += f.read()  # continues at its own offset
            for s in senders:
                assert s.wait(timeout=30) == 0
            final = open(path, "rb").read()
            streamed += f.read()
        for a, b in zip(snaps, snaps[1:] + [final]):
            assert b.startswith(a)
        assert streamed == final
        assert final.decode().splitlines() == expected(m, "Live")
        assert final.count(b"\n") == 300
    finally:
        for s in senders:
            s.kill()
            s.wait()


SENDER = """
import sys
import mqproto as mp
from brokers import send
port, topic, name, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
with mp.Client(port) as cli:
    for i in range(n):
        r = send(cli, topic, ("%s-%d" % (name, i)).encode(), queue_id=i % 2)
        assert r.code == mp.SUCCESS, r
"""


def test_a_broker_joining_the_route_keeps_the_bytes(two):
    """A topic on broker-a alone, then created on broker-b too: the file switches from the one
    broker's view to the merged one without changing a byte, then grows with both."""
    m = two
    with mp.Client(m.brokers["broker-a"].port) as cli:
        create_topic(cli, "Join", queues=QUEUES)
    path = m.p("topic", "Join")
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "topic never routed"
        time.sleep(0.1)
    send_to(m, "Join", "broker-a", ["a%d" % i for i in range(10)])
    before = open(path, "rb").read()
    assert before == text(["a%d" % i for i in range(10)]).encode()
    make_topic(m, "Join")  # now on broker-b as well
    send_to(m, "Join", "broker-b", ["b-first"])
    deadline = time.monotonic() + 15
    while True:  # until mqfs's route for the topic (cached for 5 s) has broker-b
        now = open(path, "rb").read()
        assert now.startswith(before)  # the switch to the merged view moves nothing
        if b"b-first\n" in now:
            break
        assert time.monotonic() < deadline, "mqfs never read broker-b's message"
        time.sleep(0.2)
    assert now == before + b"b-first\n"
    send_alternately(m, "Join", ["n%d" % i for i in range(6)])
    after = open(path, "rb").read()
    assert after.startswith(now)
    assert after.decode().splitlines() == expected(m, "Join")


def test_tail_follows_across_a_broker_restart(two, daemons):
    """broker-a is killed right after the file grew and restarted while `tail -f` runs: tail's
    next read lands in bytes it has not seen and that need broker-a. The read waits for the
    broker (within the client timeout) instead of failing at once with EIO, which GNU tail
    answers by exiting: tail keeps running and prints what is sent after the restart."""
    from brokers import restart
    m = two
    make_topic(m, "Survive")
    send_alternately(m, "Survive", ["old%d" % i for i in range(4)])
    path = m.p("topic", "Survive")
    tail = subprocess.Popen(["tail", "-f", "-s", "0.5", "-n", "+1", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = b""

    def read_until(pred, timeout=30):
        nonlocal got
        deadline = time.monotonic() + timeout
        while not pred(got.decode()) and time.monotonic() < deadline and tail.poll() is None:
            if select.select([tail.stdout], [], [], 0.2)[0]:
                got += os.read(tail.stdout.fileno(), 65536)
        return pred(got.decode())

    try:
        assert read_until(lambda s: s.count("\n") == 4)
        send_alternately(m, "Survive", ["mid%d" % i for i in range(6)])
        os.stat(path)  # the file's known size grows past what tail has read ...
        a = m.brokers["broker-a"]
        a.proc.kill()  # ... and broker-a goes before tail reads it
        a.kill()
        time.sleep(1.5)  # tail polls (every 0.5 s) while broker-a is down
        assert tail.poll() is None, tail.stderr.read().decode()
        m.brokers["broker-a"] = restart(daemons, a)
        wait_route(m.namesrv_port, "Survive", brokers=m.brokers)
        send_alternately(m, "Survive", ["after%d" % i for i in range(4)])
        assert read_until(lambda s: all("after%d\n" % i in s for i in range(4))), (
            got, tail.poll(), tail.stderr.read1() if tail.poll() is not None else b"")
        assert tail.poll() is None
        lines = got.decode().splitlines()
        for body in expected(m, "Survive"):  # nothing is skipped
            assert body in lines, body
    finally:
        tail.kill()
        tail.wait()

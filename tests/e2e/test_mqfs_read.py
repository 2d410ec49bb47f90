"""test_mqfs_read.py — reading through mqfs with the real shell tools against a real NameServer,
broker and mount: the log views (cat, wc, tail -n, head, grep, tail -f, exact sizes, a million
lines), the group views (exact consumption with head, offsets across mqfs restarts, concurrent
readers sharing queues, blocking reads that Ctrl-C ends, O_NONBLOCK, poll, .now, .json + jq; the
sharing, blocking and jq cases also for .bulk files, whose own tests are in
test_mqfs_groups.py)."""

import errno
import json
import os
import select
import signal
import subprocess
import threading
import time

import pytest

import mqproto as mp
from brokers import broker_factory, create_topic, mqfs_cluster as cluster, wait_route  # noqa: F401
from mqfs_mount import Mount


def sh(cmd, timeout=60, **kw):
    r = subprocess.run(cmd, shell=True, capture_output=True, timeout=timeout, **kw)
    return r


def make_topic(m, topic, queues=4):
    """Creates a topic on the broker and waits until the NameServer routes it."""
    with mp.Client(m.broker.port) as cli:
        create_topic(cli, topic, queues=queues)
    wait_route(m.namesrv_port, topic)


def topic_with(m, topic, lines, queues=4):
    make_topic(m, topic, queues)
    with open(m.p("topic", topic), "w") as f:
        f.write("".join(l + "\n" for l in lines))


def test_log_view_with_shell_tools(cluster):
    m = cluster
    lines = ["line %d %s" % (i, "match" if i % 10 == 0 else "other") for i in range(500)]
    topic_with(m, "Logs", lines)
    path = m.p("topic", "Logs")
    content = "".join(l + "\n" for l in lines)
    with open(path) as f:
        assert f.read() == content  # on one broker: the order messages were stored
    assert os.stat(path).st_size == len(content)
    assert sh("wc -l < '%s'" % path).stdout.strip() == b"500"
    assert sh("tail -n 3 '%s'" % path).stdout.decode() == "".join(l + "\n" for l in lines[-3:])
    assert sh("head -n 2 '%s'" % path).stdout.decode() == lines[0] + "\n" + lines[1] + "\n"
    assert sh("grep -c match '%s'" % path).stdout.strip() == b"50"
    # Two readers see the same bytes; reading consumes nothing.
    assert sh("cat '%s'" % path).stdout.decode() == content
    # The queue files partition the topic; each is exact and seekable.
    qs = sorted(os.listdir(m.p("queue", "Logs")))
    assert qs == ["broker-a-%d" % i for i in range(4)]
    total = 0
    for q in qs:
        qp = m.p("queue", "Logs", q)
        data = open(qp, "rb").read()
        assert os.stat(qp).st_size == len(data)
        assert os.stat(qp).st_blocks == (len(data) + 511) // 512  # du agrees with wc -c
        total += data.count(b"\n")
        with open(qp, "rb") as f:
            f.seek(len(data) // 2)
            assert f.read() == data[len(data) // 2:]
    assert total == 500
    # A queue id past its broker's queue count cannot exist.
    for q in ("broker-a-4", "broker-a-99"):
        with pytest.raises(OSError) as e:
            os.stat(m.p("queue", "Logs", q))
        assert e.value.errno == errno.ENOENT, q


def test_tail_follows_new_messages(cluster):
    m = cluster
    topic_with(m, "Follow", ["first"])
    path = m.p("topic", "Follow")
    tail = subprocess.Popen(["tail", "-f", "-n", "+1", path], stdout=subprocess.PIPE)
    try:
        assert tail.stdout.readline() == b"first\n"
        t0 = time.monotonic()
        with open(path, "a") as f:
            f.write("second\n")
        assert tail.stdout.readline() == b"second\n"  # tail polls fstat once a second
        assert time.monotonic() - t0 < 3
    finally:
        tail.kill()
        tail.wait()


def test_million_lines_no_loss_no_duplicates(cluster):
    m = cluster
    make_topic(m, "Million", queues=4)
    path = m.p("topic", "Million")
    r = sh("seq 1000000 > '%s'" % path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sh("wc -l < '%s'" % path, timeout=120).stdout.strip() == b"1000000"
    r = sh("sort -n '%s' | uniq -d | wc -l" % path, timeout=120)
    assert r.stdout.strip() == b"0"
    r = sh("sort -n '%s' | uniq | wc -l" % path, timeout=120)
    assert r.stdout.strip() == b"1000000"


def test_group_head_consumes_exactly(cluster):
    m = cluster
    topic_with(m, "Work", ["job %d" % i for i in range(10)], queues=1)
    os.mkdir(m.p("group", "G1"))
    g = m.p("group", "G1", "Work")
    r = sh("head -n 3 '%s'" % g)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert r.stdout == b"job 0\njob 1\njob 2\n"
    assert sh("head -n 1 '%s'" % g).stdout == b"job 3\n"  # the next reader gets the 4th
    # .now: take what is there, then EOF.
    assert sh("cat '%s'" % (g + ".now")).stdout.decode() == "".join(
        "job %d\n" % i for i in range(4, 10))
    assert sh("cat '%s'" % (g + ".now")).stdout == b""


def test_group_offsets_survive_mqfs_restart(cluster, tmp_path):
    m = cluster
    topic_with(m, "Keep", ["k%d" % i for i in range(6)], queues=2)
    os.mkdir(m.p("group", "GK"))
    got = sh("head -n 4 '%s'" % m.p("group", "GK", "Keep")).stdout.decode().split()
    m.stop()
    m2 = Mount(tmp_path / "fs2", "127.0.0.1:%d" % m.namesrv_port)
    os.makedirs(tmp_path / "fs2", exist_ok=True)
    m2.start()
    try:
        assert os.path.isdir(m2.p("group", "GK"))  # the brokers keep the group
        rest = sh("cat '%s'" % m2.p("group", "GK", "Keep.now")).stdout.decode().split()
        assert sorted(got + rest) == ["k%d" % i for i in range(6)]
    finally:
        m2.stop()
        m.start()  # the fixture stops it again


@pytest.mark.parametrize("mode", ["", ".bulk"])
def test_two_group_readers_share_the_queues(cluster, mode):
    m = cluster
    make_topic(m, "Shared", queues=4)
    os.mkdir(m.p("group", "GS"))
    g = m.p("group", "GS", "Shared" + mode)
    readers = [subprocess.Popen(["cat", g], stdout=subprocess.PIPE) for _ in range(2)]
    time.sleep(2.5)  # both join the group and rebalance (1 s period)
    fd = os.open(m.p("topic", "Shared"), os.O_WRONLY | os.O_APPEND)
    for i in range(400):  # one write() is one batch to one queue: 400 writes spread them
        os.write(fd, b"s%d\n" % i)
    os.close(fd)
    outs = [b"", b""]

    def drain(i):
        for line in iter(readers[i].stdout.readline, b""):
            outs[i] += line

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(o.count(b"\n") for o in outs) < 400:
        time.sleep(0.2)
    for r in readers:
        r.send_signal(signal.SIGINT)
    for t in threads:
        t.join(10)
    assert sum(o.count(b"\n") for o in outs) == 400  # none twice
    sets = [set(o.decode().split()) for o in outs]
    assert sets[0].isdisjoint(sets[1])
    assert sets[0] | sets[1] == {"s%d" % i for i in range(400)}
    assert sets[0] and sets[1]  # both got a share


@pytest.mark.parametrize("mode", ["", ".bulk"])
def test_blocked_read_waits_is_interruptible_and_nonblocking(cluster, mode):
    m = cluster
    make_topic(m, "Wait", queues=1)
    os.mkdir(m.p("group", "GW"))
    g = m.p("group", "GW", "Wait" + mode)
    # O_NONBLOCK: EAGAIN when there is nothing.
    fd = os.open(g, os.O_RDONLY | os.O_NONBLOCK)
    with pytest.raises(BlockingIOError):
        os.read(fd, 100)
    # poll: not readable, then readable once a message arrives.
    p = select.poll()
    p.register(fd, select.POLLIN)
    assert p.poll(200) == []
    with open(m.p("topic", "Wait"), "a") as f:
        f.write("ping\n")
    assert p.poll(5000) != []
    assert os.read(fd, 100) == b"ping\n"
    os.close(fd)
    # A blocked cat gets the next message as soon as it is sent...
    cat = subprocess.Popen(["cat", g], stdout=subprocess.PIPE)
    time.sleep(1.0)
    t0 = time.monotonic()
    with open(m.p("topic", "Wait"), "a") as f:
        f.write("pong\n")
    assert cat.stdout.readline() == b"pong\n"
    assert time.monotonic() - t0 < 2
    # ... and Ctrl-C ends it at once.
    t0 = time.monotonic()
    cat.send_signal(signal.SIGINT)
    assert cat.wait(5) != 0
    assert time.monotonic() - t0 < 2


def test_json_views_work_with_jq(cluster):
    m = cluster
    topic_with(m, "Js", ["a", "b", "c"], queues=1)
    for group, name in (("GJ", "Js.now.json"), ("GJB", "Js.bulk.now.json")):
        os.mkdir(m.p("group", group))
        r = sh("cat '%s' | jq -r '.body + \" \" + (.queueOffset|tostring)'" %
               m.p("group", group, name))
        assert r.stdout == b"a 0\nb 1\nc 2\n", (name, r.stderr)
    os.mkdir(m.p("group", "GJ2"))
    obj = json.loads(sh("head -n 1 '%s'" % m.p("group", "GJ2", "Js.json")).stdout)
    assert (obj["topic"], obj["queueId"], obj["body"]) == ("Js", 0, "a")
    assert len(obj["msgId"]) == 32 and obj["storeTimestamp"] >= obj["bornTimestamp"] > 0


def test_xattrs_and_rm_topic(cluster):
    m = cluster
    topic_with(m, "Attrs", ["a", "b", "c"], queues=2)
    r = sh("getfattr -d '%s'" % m.p("topic", "Attrs"))
    assert b'user.mq.messages="3"' in r.stdout and b'user.mq.queues="2"' in r.stdout, r.stdout
    q = sorted(os.listdir(m.p("queue", "Attrs")))[0]
    r = sh("getfattr -n user.mq.maxOffset --only-values '%s'" % m.p("queue", "Attrs", q))
    assert r.returncode == 0 and int(r.stdout) in (0, 3)
    os.mkdir(m.p("group", "GA"))
    assert sh("head -n 1 '%s'" % m.p("group", "GA", "Attrs")).stdout == b"a\n"
    time.sleep(1.5)  # the group's offset reaches the broker within a second
    r = sh("getfattr -d '%s'" % m.p("group", "GA", "Attrs"))
    assert b'user.mq.consumed="1"' in r.stdout and b'user.mq.lag="2"' in r.stdout, r.stdout
    # rm deletes the topic from the broker and the NameServer.
    assert sh("rm '%s'" % m.p("topic", "Attrs")).returncode == 0
    with mp.Client(m.namesrv_port) as ns:
        assert ns.call(mp.GET_ROUTEINFO_BY_TOPIC, {"topic": "Attrs"}).code == mp.TOPIC_NOT_EXIST
    time.sleep(1.2)  # listings are cached for a second
    assert "Attrs" not in os.listdir(m.p("topic"))


def test_tail_follows_across_a_broker_restart(cluster, daemons):
    """The broker is killed and restarted (same port and store) while `tail -f` runs: tail keeps
    running, never prints wrong bytes, and shows what is sent after the restart."""
    from brokers import restart
    m = cluster
    topic_with(m, "Survive", ["before"], queues=1)
    path = m.p("topic", "Survive")
    tail = subprocess.Popen(["tail", "-f", "-n", "+1", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert tail.stdout.readline() == b"before\n"
        m.broker.proc.kill()
        m.broker.kill()
        time.sleep(1.5)  # tail polls while the broker is gone: the last known size stands
        assert tail.poll() is None
        m.broker = restart(daemons, m.broker)
        deadline = time.monotonic() + 30
        while True:  # the producer may need a moment to find the broker again
            r = sh("echo after >> '%s'" % path)
            if r.returncode == 0:
                break
            assert time.monotonic() < deadline, r.stderr
            time.sleep(0.5)
        assert tail.stdout.readline() == b"after\n"
    finally:
        tail.kill()
        tail.wait()


def in_fuse_request(pid):
    """Whether the process waits for an answer of the mount (or is already gone)."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read() == "request_wait_answer"
    except OSError:
        return True


def test_reads_waiting_for_a_down_broker_hold_up_nothing_else(cluster, daemons):
    """Reads of a log view whose broker refuses wait up to 6 s for it. They waited on FUSE
    workers, of which libfuse runs at most 10: 14 readers of a killed broker's topic held up
    every other operation of the mount (an `ls` of the mount root took 5.5 s) and the last
    readers waited twice as long. They wait on their own thread now: the mount answers meanwhile,
    every reader gets EIO after the wait, and a reader interrupted by a signal goes at once."""
    from brokers import restart
    m = cluster
    topic_with(m, "Down", ["a", "b"], queues=1)
    path = m.p("topic", "Down")
    with open(path) as f:
        assert f.read() == "a\nb\n"  # the route is cached: reads will need this broker
    m.broker.kill()
    started = time.monotonic()
    readers = [subprocess.Popen(["dd", "if=" + path, "of=/dev/null", "bs=1", "skip=1",
                                 "status=none"], stderr=subprocess.PIPE) for _ in range(14)]
    interrupted = subprocess.Popen(["dd", "if=" + path, "of=/dev/null", "bs=1", "skip=1",
                                    "status=none"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while not all(in_fuse_request(r.pid) for r in readers + [interrupted]):
            assert time.monotonic() < deadline, "the readers never reached the mount"
            time.sleep(0.05)
        # every reader is waiting (15 > the 10 workers), the mount still answers
        t = time.monotonic()
        assert sorted(os.listdir(m.p(""))) == ["blob", "cluster", "group", "key", "msg",
                                              "queue", "topic"]
        os.stat(m.p("cluster"))
        assert time.monotonic() - t < 1.0, "the mount waited %.1f s" % (time.monotonic() - t)
        assert all(r.poll() is None for r in readers), "a reader did not wait"
        interrupted.send_signal(signal.SIGINT)
        assert interrupted.wait(timeout=3) != 0
        for r in readers:
            assert r.wait(timeout=15) != 0 and b"Input/output error" in r.stderr.read()
        assert time.monotonic() - started < 9, "readers waited %.1f s" % (
            time.monotonic() - started)
    finally:
        for r in readers + [interrupted]:
            r.kill()
            r.wait()
    m.broker = restart(daemons, m.broker)


def test_rm_then_recreate_starts_empty(cluster):
    """rm deletes a topic; writing the name again makes a new, empty topic at once: not one the
    mount still believes exists, nor one showing the deleted messages."""
    m = cluster
    path = m.p("topic", "Again")
    assert sh("printf 'old1\\nold2\\n' > '%s'" % path).returncode == 0
    assert sh("cat '%s'" % path).stdout == b"old1\nold2\n"
    assert "Again" in os.listdir(m.p("topic"))  # the mount's topic list has it now
    assert sh("rm '%s'" % path).returncode == 0
    r = sh("touch '%s' && echo new1 >> '%s' && cat '%s'" % (path, path, path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"new1\n"
    assert "Again" in os.listdir(m.p("topic"))
    os.mkdir(m.p("group", "GAgain"))
    assert sh("cat '%s'" % m.p("group", "GAgain", "Again.now")).stdout == b"new1\n"

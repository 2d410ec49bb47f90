"""test_mqfs_groups.py — consumer groups through mqfs with the real tools: the `.bulk` group files
(many whole messages per read: cat | wc, lag 0 after a drain, bash's read loop, messages larger
than the read buffer, what an early-stopping reader consumes; concurrent and blocked .bulk
readers and .bulk.json with jq are cases of test_mqfs_read.py's group tests) and the `group/`
directory (the brokers' groups listed, system groups hidden, rmdir deleting a group and its
offsets on the brokers, a broker that does not answer), and concurrent readers of one group on one
mount sharing its queues exactly: a queue moves to a new reader only after its previous reader let
go of it, so no line reaches two readers and none is lost."""

import errno
import os
import signal
import subprocess
import time

import pytest

from brokers import broker_factory, mqfs_cluster as cluster  # noqa: F401
from clientkit import run, wait_for
from test_mqfs_read import make_topic, sh, topic_with

import mqproto as mp

GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201


def lag(path):
    r = sh("getfattr -n user.mq.lag --only-values '%s'" % path)
    return int(r.stdout) if r.returncode == 0 else None


def broker_groups(m):
    with mp.Client(m.broker.port) as cli:
        return set(cli.call(GET_ALL_SUBSCRIPTIONGROUP_CONFIG).json_body()["subscriptionGroupTable"])


def read_all(fd, size):
    """Reads fd to EOF with read(size) calls: (the bytes, the byte counts of each read)."""
    data, sizes = b"", []
    while True:
        b = os.read(fd, size)
        if not b:
            return data, sizes
        data += b
        sizes.append(len(b))


def test_bulk_now_drains_everything_once_and_leaves_no_lag(cluster):
    m = cluster
    make_topic(m, "Bulk", queues=4)
    assert sh("seq 20000 > '%s'" % m.p("topic", "Bulk")).returncode == 0
    os.mkdir(m.p("group", "GBulk"))
    g = m.p("group", "GBulk", "Bulk")
    r = sh("cat '%s.bulk.now' | sort -n | uniq | wc -l" % g)
    assert r.stdout.strip() == b"20000", r.stderr
    # Offsets are committed at close: the group has consumed everything.
    assert wait_for(lambda: lag(g) == 0, timeout=10), lag(g)
    assert sh("cat '%s.bulk.now'" % g).stdout == b""
    # More messages later: one read hands out many whole messages (cat's buffer holds them all).
    with open(m.p("topic", "Bulk"), "w") as f:
        f.write("".join("late %d\n" % i for i in range(300)))
    fd = os.open(g + ".now.bulk", os.O_RDONLY)
    try:
        data, sizes = read_all(fd, 1 << 17)
    finally:
        os.close(fd)
    lines = data.decode().splitlines()
    assert sorted(lines) == sorted("late %d" % i for i in range(300))
    assert len(sizes) < len(lines)  # several messages per read
    off = 0
    for s in sizes:  # every read ends on a message boundary
        off += s
        assert data[off - 1:off] == b"\n"


def test_bulk_while_read_loop_sees_every_line(cluster):
    """bash's `read` builtin reads ahead from a seekable file and gives back what it did not use
    with lseek (dash reads byte by byte): a .bulk file serves those bytes again at the earlier
    offset."""
    m = cluster
    lines = ["w%d" % i for i in range(2000)]
    topic_with(m, "BulkLoop", lines, queues=2)
    os.mkdir(m.p("group", "GLoop"))
    r = subprocess.run(["bash", "-c", "while read -r l; do echo \"$l\"; done < \"$0\"",
                        m.p("group", "GLoop", "BulkLoop.bulk.now")], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.decode().split()) == sorted(lines)


def test_bulk_message_larger_than_the_read_buffer(cluster):
    m = cluster
    big = "B" * 10000
    lines = ["s1", big, "s2", "s3"]
    topic_with(m, "BulkBig", lines, queues=1)
    os.mkdir(m.p("group", "GBig"))
    fd = os.open(m.p("group", "GBig", "BulkBig.bulk.now"), os.O_RDONLY)
    try:
        data, sizes = read_all(fd, 4096)
    finally:
        os.close(fd)
    assert data.decode() == "".join(l + "\n" for l in lines)
    assert max(sizes) <= 4096


def test_bulk_reader_that_stops_early_consumed_what_it_was_handed(cluster):
    m = cluster
    lines = ["j%d" % i for i in range(200)]
    topic_with(m, "BulkHead", lines, queues=1)
    os.mkdir(m.p("group", "GH"))
    g = m.p("group", "GH", "BulkHead")
    assert sh("head -n 1 '%s.bulk'" % g).stdout == b"j0\n"
    rest = sh("cat '%s.now'" % g).stdout.decode().split()
    # One queue: the next reader continues right after the last message head's read carried.
    assert rest == lines[len(lines) - len(rest):] and len(rest) < len(lines) - 1


def test_ls_group_lists_the_brokers_groups(cluster):
    m = cluster
    ns = "127.0.0.1:%d" % m.namesrv_port
    broker = "127.0.0.1:%d" % m.broker.port
    before = os.listdir(m.p("group"))  # the mount was started before the groups exist
    assert "GAdmin" not in before
    system = ["TOOLS_CONSUMER", "CID_RMQ_SYS_TRANS", "CID_ONSAPI_PULL", "SELF_TEST_C_GROUP",
              "CID_ONS-HTTP-PROXY", "FILTERSRV_CONSUMER"]
    for grp in ["GAdmin"] + system:
        rc, _, err = run("mqadmin", "updateSubGroup", "-n", ns, "-b", broker, "-g", grp)
        assert rc == 0, err
    assert set(system) | {"GAdmin"} <= broker_groups(m)
    listed = wait_for(lambda: "GAdmin" in os.listdir(m.p("group")) and os.listdir(m.p("group")),
                      timeout=5)
    assert listed, os.listdir(m.p("group"))
    assert not set(system) & set(listed), listed
    assert os.path.isdir(m.p("group", "TOOLS_CONSUMER"))  # hidden, still reachable by name
    with pytest.raises(PermissionError):  # and not deleted by rmdir
        os.rmdir(m.p("group", "CID_RMQ_SYS_TRANS"))
    assert "CID_RMQ_SYS_TRANS" in broker_groups(m)
    os.mkdir(m.p("group", "GHere"))
    assert sorted(n for n in os.listdir(m.p("group")) if n in ("GAdmin", "GHere")) == \
        ["GAdmin", "GHere"]  # each listed once


def test_rmdir_deletes_the_group_and_its_offsets(cluster):
    m = cluster
    topic_with(m, "Del", ["d%d" % i for i in range(5)], queues=1)
    os.mkdir(m.p("group", "GDel"))
    g = m.p("group", "GDel", "Del")
    assert sh("head -n 2 '%s'" % g).stdout == b"d0\nd1\n"
    fd = os.open(g + ".bulk", os.O_RDONLY | os.O_NONBLOCK)
    try:  # a file of the group is open here: its heartbeats would make the group again
        with pytest.raises(OSError) as e:
            os.rmdir(m.p("group", "GDel"))
        assert e.value.errno == errno.EBUSY
    finally:
        os.close(fd)
    assert wait_for(lambda: sh("rmdir '%s'" % m.p("group", "GDel")).returncode == 0, timeout=5)
    assert "GDel" not in broker_groups(m)
    assert "GDel" not in os.listdir(m.p("group"))
    assert not os.path.exists(m.p("group", "GDel"))
    with pytest.raises(FileNotFoundError):
        os.rmdir(m.p("group", "GDel"))
    # Made again, it starts over: the offsets went with it.
    os.mkdir(m.p("group", "GDel"))
    assert sh("cat '%s.now'" % g).stdout.decode().split() == ["d%d" % i for i in range(5)]


def test_ls_group_with_a_broker_that_does_not_answer(cluster):
    """A stopped broker (SIGSTOP: connections hang, nothing is refused) costs one listing the
    client timeout at most; its groups stay listed from the cache and later listings answer at
    once."""
    m = cluster
    ns = "127.0.0.1:%d" % m.namesrv_port
    rc, _, err = run("mqadmin", "updateSubGroup", "-n", ns, "-b",
                     "127.0.0.1:%d" % m.broker.port, "-g", "GKept")
    assert rc == 0, err
    assert wait_for(lambda: "GKept" in os.listdir(m.p("group")), timeout=5)
    m.broker.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.2)  # the cached lists are older than a second: the next listing refetches
        t0 = time.monotonic()
        assert "GKept" in os.listdir(m.p("group"))  # waits for the timeout once
        assert time.monotonic() - t0 < 8
        for _ in range(3):
            time.sleep(0.6)
            t0 = time.monotonic()
            assert "GKept" in os.listdir(m.p("group"))
            assert time.monotonic() - t0 < 0.5  # from the cache; refetched in the background
    finally:
        m.broker.proc.send_signal(signal.SIGCONT)


def send_each(m, topic, lines):
    """Sends each line as its own message (one write per line: one send, round robin over the
    topic's queues)."""
    fd = os.open(m.p("topic", topic), os.O_WRONLY | os.O_APPEND)
    try:
        for l in lines:
            assert os.write(fd, (l + "\n").encode()) == len(l) + 1
    finally:
        os.close(fd)


def start_reader(path, out, seconds):
    """`timeout <seconds> cat path > out`, started now."""
    return subprocess.Popen(["timeout", str(seconds), "cat", path], stdout=open(out, "wb"),
                            stderr=subprocess.PIPE)


def delivered(outs):
    """The lines each reader got, and every line that reached more than one reader or one reader
    twice."""
    got = [open(o).read().split() for o in outs]
    seen, dups = set(), []
    for lines in got:
        for l in lines:
            if l in seen:
                dups.append(l)
            seen.add(l)
    return got, dups


def test_two_now_readers_of_a_new_group_share_the_queues_exactly(cluster, tmp_path):
    """Two `.now` readers opened together on a new group: the second one's queues are handed over
    by the first, which had already read from them — the new owner goes on from where the first
    stopped, not from the group's (stale) committed offset."""
    m = cluster
    make_topic(m, "Dup", queues=4)
    lines = ["m%d" % i for i in range(600)]
    send_each(m, "Dup", lines)
    for trial in range(4):
        os.mkdir(m.p("group", "GDup%d" % trial))
        g = m.p("group", "GDup%d" % trial, "Dup.now")
        outs = [str(tmp_path / ("r%d-%d" % (trial, i))) for i in range(2)]
        procs = [start_reader(g, o, 20) for o in outs]
        for p in procs:
            assert p.wait(timeout=30) == 0, p.stderr.read()
        got, dups = delivered(outs)
        assert dups == [], "trial %d: %d lines went twice (%d + %d read)" % (
            trial, len(dups), len(got[0]), len(got[1]))
        assert sorted(got[0] + got[1]) == sorted(lines), "trial %d" % trial
        assert sh("cat '%s'" % g).stdout == b""  # and the group consumed it all


def test_two_now_readers_of_an_existing_group_share_new_messages_exactly(cluster, tmp_path):
    m = cluster
    make_topic(m, "DupOld", queues=4)
    os.mkdir(m.p("group", "GOld"))
    g = m.p("group", "GOld", "DupOld.now")
    send_each(m, "DupOld", ["old%d" % i for i in range(8)])
    assert len(sh("cat '%s'" % g).stdout.split()) == 8
    for trial in range(6):
        lines = ["n%d-%d" % (trial, i) for i in range(40)]
        send_each(m, "DupOld", lines)
        outs = [str(tmp_path / ("r%d-%d" % (trial, i))) for i in range(2)]
        procs = [start_reader(g, o, 20) for o in outs]
        for p in procs:
            assert p.wait(timeout=30) == 0, p.stderr.read()
        got, dups = delivered(outs)
        assert dups == [], "trial %d: %s went twice" % (trial, dups)
        assert sorted(got[0] + got[1]) == sorted(lines), "trial %d" % trial


def test_reader_joining_mid_burst_gets_no_line_the_other_reader_got(cluster, tmp_path):
    """Reader A reads while 20 single-line sends go out over a second; reader B opens the same
    group 0.2 s in. The queues B is given move from A to B without a line reaching both, and
    together they read every line."""
    m = cluster
    for trial in range(4):
        topic, grp = "Burst%d" % trial, "GBurst%d" % trial
        make_topic(m, topic, queues=4)
        os.mkdir(m.p("group", grp))
        g = m.p("group", grp, topic)
        send_each(m, topic, ["warm%d" % trial])  # the group starts at the earliest message
        outs = [str(tmp_path / ("r%d-%d" % (trial, i))) for i in range(2)]
        a = start_reader(g, outs[0], 60)
        assert wait_for(lambda: os.path.getsize(outs[0]) > 0, timeout=10)  # A is reading
        lines = ["b%d-%d" % (trial, i) for i in range(20)]
        b, t0 = None, time.monotonic()
        for i, l in enumerate(lines):
            if b is None and time.monotonic() - t0 >= 0.2:
                b = start_reader(g, outs[1], 60)
            send_each(m, topic, [l])
            time.sleep(max(0.0, t0 + (i + 1) * 0.05 - time.monotonic()))
        want = set(lines)
        assert wait_for(lambda: want <= set(sum(delivered(outs)[0], [])), timeout=10), \
            delivered(outs)
        time.sleep(1.5)  # a late duplicate would show now
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        got, dups = delivered(outs)
        assert dups == [], "trial %d: %s went to both readers (A %d, B %d lines)" % (
            trial, dups, len(got[0]), len(got[1]))
        assert sorted(got[0] + got[1]) == sorted(lines + ["warm%d" % trial])

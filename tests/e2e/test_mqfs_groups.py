"""test_mqfs_groups.py — consumer groups through mqfs with the real tools: the `.bulk` group files
(many whole messages per read: cat | wc, lag 0 after a drain, bash's read loop, messages larger
than the read buffer, what an early-stopping reader consumes; concurrent and blocked .bulk
readers and .bulk.json with jq are cases of test_mqfs_read.py's group tests) and the `group/`
directory (the brokers' groups listed, system groups hidden, rmdir deleting a group and its
offsets on the brokers, a broker that does not answer)."""

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

"""test_mqfs_groups.py — consumer groups through mqfs with the real tools: the `.bulk` group files
(many whole messages per read: cat | wc, concurrent readers, lag 0 after a drain, jq, blocking
reads woken by a send, messages larger than the read buffer, what an early-stopping reader
consumes) and the `group/` directory (the brokers' groups listed, system groups hidden, rmdir
deleting a group and its offsets on the brokers)."""

import errno
import os
import select
import signal
import subprocess
import threading
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


def test_two_bulk_readers_get_disjoint_sets(cluster):
    m = cluster
    make_topic(m, "BulkShared", queues=4)
    os.mkdir(m.p("group", "GBS"))
    g = m.p("group", "GBS", "BulkShared.bulk")
    readers = [subprocess.Popen(["cat", g], stdout=subprocess.PIPE) for _ in range(2)]
    time.sleep(2.5)  # both join the group and rebalance (1 s period)
    fd = os.open(m.p("topic", "BulkShared"), os.O_WRONLY | os.O_APPEND)
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
    assert wait_for(lambda: sum(o.count(b"\n") for o in outs) >= 400, timeout=20, interval=0.2)
    for r in readers:
        r.send_signal(signal.SIGINT)
    for t in threads:
        t.join(10)
    sets = [o.decode().split() for o in outs]
    assert len(sets[0]) + len(sets[1]) == 400  # no duplicates
    assert set(sets[0]).isdisjoint(sets[1])
    assert set(sets[0]) | set(sets[1]) == {"s%d" % i for i in range(400)}
    assert sets[0] and sets[1]  # both got a share


def test_bulk_json_with_jq(cluster):
    m = cluster
    topic_with(m, "BulkJs", ["a", "b", "c"], queues=1)
    os.mkdir(m.p("group", "GBJ"))
    r = sh("cat '%s' | jq -r '.body + \" \" + (.queueOffset|tostring)'" %
           m.p("group", "GBJ", "BulkJs.bulk.now.json"))
    assert r.stdout == b"a 0\nb 1\nc 2\n", r.stderr


def test_blocked_bulk_read_is_woken_by_echo(cluster):
    m = cluster
    make_topic(m, "BulkWait", queues=1)
    os.mkdir(m.p("group", "GBW"))
    g = m.p("group", "GBW", "BulkWait.bulk")
    # O_NONBLOCK: EAGAIN; poll reports readiness once a message arrives.
    fd = os.open(g, os.O_RDONLY | os.O_NONBLOCK)
    with pytest.raises(BlockingIOError):
        os.read(fd, 100)
    p = select.poll()
    p.register(fd, select.POLLIN)
    assert p.poll(200) == []
    assert sh("echo ping >> '%s'" % m.p("topic", "BulkWait")).returncode == 0
    assert p.poll(5000) != []
    assert os.read(fd, 100) == b"ping\n"
    os.close(fd)
    cat = subprocess.Popen(["cat", g], stdout=subprocess.PIPE)
    time.sleep(1.0)  # cat is blocked in read()
    t0 = time.monotonic()
    assert sh("echo pong >> '%s'" % m.p("topic", "BulkWait")).returncode == 0
    assert cat.stdout.readline() == b"pong\n"
    assert time.monotonic() - t0 < 2
    t0 = time.monotonic()
    cat.send_signal(signal.SIGINT)  # Ctrl-C ends the blocked read at once
    assert cat.wait(5) != 0
    assert time.monotonic() - t0 < 2


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

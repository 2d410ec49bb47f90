"""test_mqfs_send.py — writes become sends, checked message by message in the real broker
(pulled back through the independent Python decoder): lines and partial lines, one batch per
write, tags and keys from the names, byte-exact blobs, errno and exactly-once retry when no
broker is reachable, and SIGTERM while writes are in flight (docs/FS.md "Sending")."""

import errno
import os
import signal
import subprocess
import threading
import time

import pytest

import mqproto as mp
from brokers import broker_factory, create_topic, mqfs_cluster as cluster  # noqa: F401
from brokers import queue_records, restart
from mqfs_mount import write_lines


def records(broker_port, topic):
    """Every message of topic (8 queues at most here), per queue in queue order."""
    return queue_records(broker_port, topic, 8)


def bodies(broker_port, topic):
    """All bodies of a topic in store order."""
    recs = [r for rs in records(broker_port, topic).values() for r in rs]
    return [r.body for r in sorted(recs, key=lambda r: r.phys_offset)]


def sh(cmd, env=None):
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=120, env=env)
    return r.returncode, r.stderr.decode()


def test_echo_and_lines(cluster):
    m = cluster
    rc, err = sh("echo hello > '%s'" % m.p("topic", "T"))
    assert rc == 0, err
    assert bodies(m.broker.port, "T") == [b"hello"]
    fd = os.open(m.p("topic", "T:TagA"), os.O_WRONLY | os.O_APPEND)
    assert os.write(fd, b"a\nb\nc\n") == 6
    assert os.write(fd, b"par") == 3  # carried, not sent yet
    assert os.write(fd, b"tial\nlast") == 9
    assert bodies(m.broker.port, "T") == [b"hello", b"a", b"b", b"c", b"partial"]
    os.close(fd)  # the final partial line goes at close
    assert bodies(m.broker.port, "T")[-1] == b"last"
    recs = sorted((r for rs in records(m.broker.port, "T").values() for r in rs),
                  key=lambda r: r.phys_offset)
    assert "TAGS" not in recs[0].props
    assert all(r.props.get("TAGS") == "TagA" for r in recs[1:])
    # One write() is one batch: "a b c" sit in one queue at consecutive offsets.
    abc = recs[1:4]
    assert len({r.queue_id for r in abc}) == 1
    assert [r.queue_offset for r in abc] == [abc[0].queue_offset + i for i in range(3)]
    assert "T" in os.listdir(m.p("topic"))


def test_many_lines_in_order(cluster):
    m = cluster
    rc, err = sh("seq 1 100000 > '%s'" % m.p("topic", "Seq"))
    assert rc == 0, err
    assert bodies(m.broker.port, "Seq") == [str(i).encode() for i in range(1, 100001)]


def test_keys_and_blobs(cluster):
    m = cluster
    rc, err = sh("echo paid > '%s'" % m.p("key", "Orders:Paid", "order-42"))
    assert rc == 0, err
    r = [x for rs in records(m.broker.port, "Orders").values() for x in rs][-1]
    assert (r.topic, r.body, r.props.get("KEYS"), r.props.get("TAGS")) == (
        "Orders", b"paid", "order-42", "Paid")
    assert open(m.p("key", "Orders", "order-42"), "rb").read() == b"paid\n"
    data = os.urandom(300000) + b"\n\n\x00end"  # empty lines and NULs are fine in a blob
    src = os.path.join(m.workdir, "photo.bin")
    with open(src, "wb") as f:
        f.write(data)
    rc, err = sh("cp '%s' '%s'" % (src, m.p("blob", "Photos", "cat.jpg")))
    assert rc == 0, err
    r = [x for rs in records(m.broker.port, "Photos").values() for x in rs][-1]
    assert (r.topic, r.props.get("KEYS"), r.body) == ("Photos", "cat.jpg", data)
    out = os.path.join(m.workdir, "copy.bin")
    rc, err = sh("cp '%s' '%s'" % (m.p("blob", "Photos", "cat.jpg"), out))
    assert rc == 0, err
    assert open(out, "rb").read() == data  # byte-exact both ways


def test_broker_down_then_retry_sends_once(cluster, daemons):
    m = cluster
    with mp.Client(m.broker.port) as cli:
        create_topic(cli, "R", queues=2)
    fd = os.open(m.p("topic", "R"), os.O_WRONLY | os.O_CREAT)
    assert os.write(fd, b"x") == 1
    assert m.broker.stop() == 0
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        os.write(fd, b"y\nz\n")
    assert e.value.errno == errno.EIO  # no broker reachable after the retries
    assert time.monotonic() - t0 < 30
    b2 = restart(daemons, m.broker)
    deadline = time.monotonic() + 30
    while True:  # the producer finds the broker again (fault avoidance backs off a while)
        try:
            assert os.write(fd, b"y\nz\n") == 4  # the retry sends each line exactly once
            break
        except OSError as err:
            assert err.errno == errno.EIO and time.monotonic() < deadline
            time.sleep(0.5)
    os.close(fd)
    assert sorted(bodies(b2.port, "R")) == [b"xy", b"z"]
    m.broker = b2


def test_sigterm_with_writes_in_flight(cluster):
    """SIGTERM while writers are sending: every write() that returned success is stored, and
    mqfs exits 0 with the mount gone."""
    m = cluster
    with mp.Client(m.broker.port) as cli:
        create_topic(cli, "Slow", queues=4)
    acked = []
    stop = threading.Event()
    threads = [threading.Thread(target=write_lines, args=(m.p("topic", "Slow"), b"w%d" % n,
                                                          acked, stop)) for n in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    m.proc.send_signal(signal.SIGTERM)
    assert m.wait_exit() == 0
    stop.set()
    for t in threads:
        t.join(20)
    m.check_stderr()
    m._err.close()
    m.proc = None
    assert not os.path.ismount(m.path)
    stored = set(bodies(m.broker.port, "Slow"))
    assert len(acked) >= 200
    assert set(acked) <= stored  # nothing acknowledged is lost


def test_blob_shared_by_several_processes(cluster):
    """One open blob file written by several processes (each `cat` closes its copy: a FLUSH)
    keeps its whole content: every close that follows a change sends all of it, so the newest
    message, which blob/ reads back, is the complete file, byte-exact; never a zero-filled one."""
    m = cluster
    a, b = os.path.join(m.workdir, "a"), os.path.join(m.workdir, "b")
    rc, err = sh("printf AAAA > '%s'; printf BBBB > '%s'" % (a, b))
    assert rc == 0, err
    rc, err = sh("{ cat '%s'; cat '%s'; } > '%s'" % (a, b, m.p("blob", "Bx", "k2")))
    assert rc == 0, err
    r = subprocess.run(["bash", "-c", "od -c '%s'" % m.p("blob", "Bx", "k2")],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and b"\\0" not in r.stdout, r.stdout
    assert open(m.p("blob", "Bx", "k2"), "rb").read() == b"AAAABBBB"
    assert open(m.p("key", "Bx", "k2"), "rb").read() == b"AAAA\nAAAABBBB\n"
    rc, err = sh("exec 3> '%s'; cat '%s' >&3; cat '%s' >&3; exec 3>&-" %
                 (m.p("blob", "Bx", "kk"), a, b))
    assert rc == 0, err
    assert open(m.p("blob", "Bx", "kk"), "rb").read() == b"AAAABBBB"
    recs = [x for rs in records(m.broker.port, "Bx").values() for x in rs]
    assert sorted((x.props.get("KEYS"), x.body) for x in recs) == [
        ("k2", b"AAAA"), ("k2", b"AAAABBBB"), ("kk", b"AAAA"), ("kk", b"AAAABBBB")]
    # Written by one process (cp): one message, and a cp out right after sees it.
    src, out = os.path.join(m.workdir, "x.bin"), os.path.join(m.workdir, "y.bin")
    data = os.urandom(70000) + b"\x00\n"
    with open(src, "wb") as f:
        f.write(data)
    rc, err = sh("cp '%s' '%s' && cp '%s' '%s'" % (src, m.p("blob", "Cp", "k"),
                                                  m.p("blob", "Cp", "k"), out))
    assert rc == 0, err
    assert open(out, "rb").read() == data
    assert bodies(m.broker.port, "Cp") == [data]
    # Closed, a blob file reports size 0 again (FS.md: lookup files are 0), not the length
    # its last writer left: a size-bound copy would cut the next, longer message short.
    assert os.stat(m.p("blob", "Cp", "k")).st_size == 0


def test_line_over_4mib_sends_nothing_of_it(cluster):
    """A line over 4 MiB fails with EMSGSIZE and nothing of it is stored, although the kernel
    hands mqfs its first 4 MiB in requests that are accepted (a short write); the caller's
    rewrites of the rest are refused too, and the next line is fine."""
    m = cluster
    long = os.path.join(m.workdir, "long")
    rc, err = sh("head -c 5000000 /dev/zero | tr '\\0' y > '%s'; echo >> '%s'" % (long, long))
    assert rc == 0, err
    # Python as installed (buffered stdout): the write returns a short count, the rest stays
    # in its buffer and is written again at exit, twice; both fail ("Exception ignored").
    py = dict(os.environ)
    py.pop("PYTHONUNBUFFERED", None)
    pycmd = "python3 -c \"import sys; sys.stdout.write('x'*5000000+'\\n')\" > '%s'"
    for topic, cmd in (("L9", "cat '%s' > '%%s'" % long), ("L8", pycmd)):
        t = m.p("topic", topic)
        rc, err = sh("echo first > '%s'" % t)
        assert rc == 0, err
        size = os.stat(t).st_size
        assert size == 6
        rc, err = sh(cmd % t, env=py)
        assert rc != 0, err
        assert "Message too long" in err, err
        assert os.stat(t).st_size == size  # nothing of the line was stored
        rc, err = sh("echo next >> '%s'" % t)
        assert rc == 0, err
        assert bodies(m.broker.port, topic) == [b"first", b"next"]
        assert os.stat(t).st_size == size + 5
    # With PYTHONUNBUFFERED=1 Python drops the rest of a short write itself and exits 0: mqfs
    # sees only the accepted part, and still stores nothing of the line.
    rc, err = sh(pycmd % m.p("topic", "L7"), env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert rc == 0, err
    assert bodies(m.broker.port, "L7") == []
    rc, err = sh("echo next >> '%s'" % m.p("topic", "L7"))
    assert rc == 0, err
    assert bodies(m.broker.port, "L7") == [b"next"]


def test_line_halves_from_two_processes_are_two_messages(cluster):
    """The documented limit: the first process's close sends the partial line it wrote."""
    m = cluster
    rc, err = sh("{ /usr/bin/printf hel; /usr/bin/printf 'lo\\n'; } > '%s'" % m.p("topic", "H"))
    assert rc == 0, err
    assert bodies(m.broker.port, "H") == [b"hel", b"lo"]

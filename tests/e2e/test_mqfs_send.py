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


def sh(cmd):
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=120)
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

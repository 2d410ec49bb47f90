"""test_mqfs_send.py — writes become sends, checked message by message against a stand-in
NameServer + broker (fake_cluster.py): lines and partial lines, one batch per write, tags and
keys from the names, byte-exact blobs, and the errno and retry behaviour when the broker
refuses (docs/FS.md "Sending")."""

import errno
import os
import signal
import subprocess
import threading
import time

import pytest

from fake_cluster import FakeCluster
from mqfs_mount import Mount


@pytest.fixture
def fake(tmp_path):
    fc = FakeCluster()
    m = Mount(tmp_path, fc.addr).start()
    try:
        yield m, fc
    finally:
        m.stop()
        fc.close()


def sh(cmd):
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60)
    return r.returncode, r.stderr.decode()


def test_echo_and_lines(fake):
    m, fc = fake
    rc, err = sh("echo hello > '%s'" % m.p("topic", "T"))
    assert rc == 0, err
    assert fc.bodies("T") == [b"hello"]
    fd = os.open(m.p("topic", "T:TagA"), os.O_WRONLY | os.O_APPEND)
    assert os.write(fd, b"a\nb\nc\n") == 6
    assert os.write(fd, b"par") == 3  # carried
    assert os.write(fd, b"tial\nlast") == 9
    assert fc.bodies("T") == [b"hello", b"a", b"b", b"c", b"partial"]
    os.close(fd)  # the final partial line goes at close
    assert fc.bodies("T")[-1] == b"last"
    with fc.lock:
        tagged = fc.messages[1:]
        reqs = list(fc.requests)
    assert all(p.get("TAGS") == "TagA" for _, _, p, _ in tagged)
    assert "TAGS" not in fc.messages[0][2]
    # one request per write: "a b c" as one batch; "partial" and "last" alone
    assert reqs == [(310, 1), (320, 3), (310, 1), (310, 1)]
    assert "T" in os.listdir(m.p("topic"))


def test_many_lines_in_order(fake):
    m, fc = fake
    rc, err = sh("seq 1 100000 > '%s'" % m.p("topic", "Seq"))
    assert rc == 0, err
    assert fc.bodies("Seq") == [str(i).encode() for i in range(1, 100001)]
    with fc.lock:
        nreq = len(fc.requests)
    assert nreq < 100  # batches, not one round trip per line


def test_keys_and_blobs(fake):
    m, fc = fake
    rc, err = sh("echo paid > '%s'" % m.p("key", "Orders:Paid", "order-42"))
    assert rc == 0, err
    with fc.lock:
        topic, body, props, _ = fc.messages[-1]
    assert (topic, body, props.get("KEYS"), props.get("TAGS")) == ("Orders", b"paid",
                                                                   "order-42", "Paid")
    data = os.urandom(300000) + b"\n\n\x00end"  # empty lines and NULs are fine in a blob
    src = os.path.join(m.workdir, "photo.bin")
    with open(src, "wb") as f:
        f.write(data)
    rc, err = sh("cp '%s' '%s'" % (src, m.p("blob", "Photos", "cat.jpg")))
    assert rc == 0, err
    with fc.lock:
        topic, body, props, code = fc.messages[-1]
    assert (topic, props.get("KEYS"), code) == ("Photos", "cat.jpg", 310)
    assert body == data


def test_refused_send_consumes_nothing(fake):
    m, fc = fake
    fd = os.open(m.p("topic", "R"), os.O_WRONLY | os.O_CREAT)
    assert os.write(fd, b"x") == 1
    fc.fail_with = (14, "disk full: commitlog")  # SERVICE_NOT_AVAILABLE, as our broker says it
    with pytest.raises(OSError) as e:
        os.write(fd, b"y\nz\n")
    assert e.value.errno == errno.ENOSPC
    fc.fail_with = (1, "boom")  # any other refusal: EIO
    with pytest.raises(OSError) as e:
        os.write(fd, b"y\nz\n")
    assert e.value.errno == errno.EIO
    assert fc.bodies("R") == []
    fc.fail_with = None
    assert os.write(fd, b"y\nz\n") == 4  # the retry sends each line exactly once
    os.close(fd)
    assert fc.bodies("R") == [b"xy", b"z"]


def test_sigterm_lets_the_send_in_progress_finish(tmp_path):
    """SIGTERM while a write waits for the broker: the write completes (the broker has the
    message and the writer sees success), then mqfs exits 0."""
    fc = FakeCluster()
    m = Mount(tmp_path, fc.addr).start()
    try:
        fc.send_delay = 1.5
        result = {}

        def writer():
            fd = os.open(m.p("topic", "Slow"), os.O_WRONLY | os.O_CREAT)
            try:
                result["n"] = os.write(fd, b"in flight\n")
            except OSError as e:
                result["err"] = e
            try:
                os.close(fd)
            except OSError:
                pass  # the mount may be gone by the time the writer closes
        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 5
        while fc.sends_started == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fc.sends_started == 1
        time.sleep(0.2)  # the send is now waiting in the stand-in broker
        m.proc.send_signal(signal.SIGTERM)
        t.join(timeout=20)
        assert result.get("n") == 10, result
        assert fc.bodies("Slow") == [b"in flight"]
        assert m.wait_exit() == 0
        m.check_stderr()
        m._err.close()
        m.proc = None
        assert not os.path.ismount(m.path)
    finally:
        m.stop()
        fc.close()

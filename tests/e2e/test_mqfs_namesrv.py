"""test_mqfs_namesrv.py — mqfs against a real NameServer and broker: topic listings (system
topics hidden, still reachable), queue directories from routes, the `cluster` file, and the
cached answers mqfs keeps serving, fast, once the NameServer is gone.

Needs mqnamesrv and mqbroker next to mqfs in $MQ_BIN_DIR (MQ_NAMESRV_BIN / MQ_BROKER_BIN
override them); skipped otherwise. Self-contained: it starts the daemons itself."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from mqfs_mount import Mount, mqfs_binary

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def program(name, env):
    path = os.environ.get(env) or os.path.join(os.path.dirname(mqfs_binary()), name)
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built" % name)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, log, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("daemon exited early:\n" + open(log).read())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("daemon not listening on %d:\n%s" % (port, open(log).read()))


class Proc:
    def __init__(self, argv, workdir, name):
        self.log = os.path.join(workdir, name + ".stderr")
        self._f = open(self.log, "wb")
        self.proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._f, stderr=self._f)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._f.close()
        text = open(self.log, errors="replace").read()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text


@pytest.fixture
def cluster(tmp_path):
    ns_bin = program("mqnamesrv", "MQ_NAMESRV_BIN")
    broker_bin = program("mqbroker", "MQ_BROKER_BIN")
    ns_port, broker_port = free_port(), free_port()
    ns = Proc([ns_bin, "-p", str(ns_port)], str(tmp_path), "mqnamesrv")
    procs = [ns]
    try:
        wait_port(ns_port, ns.proc, ns.log)
        conf = tmp_path / "broker.conf"
        conf.write_text("brokerClusterName=DefaultCluster\nbrokerName=broker-a\n"
                        "listenPort=%d\nnamesrvAddr=127.0.0.1:%d\nstorePathRootDir=%s\n"
                        "mappedFileSizeCommitLog=4194304\nmappedFileSizeConsumeQueue=60000\n"
                        "maxHashSlotNum=5000\nmaxIndexNum=20000\n" %
                        (broker_port, ns_port, tmp_path / "store"))
        broker = Proc([broker_bin, "-c", str(conf)], str(tmp_path), "mqbroker")
        procs.append(broker)
        wait_port(broker_port, broker.proc, broker.log)
        m = Mount(tmp_path, "127.0.0.1:%d" % ns_port).start()
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:  # until the broker shows in the cluster file
                if "broker-a" in open(m.p("cluster")).read():
                    break
                time.sleep(0.2)
            yield m, ns
        finally:
            m.stop()
    finally:
        for p in reversed(procs):
            p.stop()


def test_listings_and_cluster(cluster):
    m, _ = cluster
    text = open(m.p("cluster")).read()
    assert re.search(r"DefaultCluster\s+broker-a\s+0\s+127\.0\.0\.1:\d+\s+master", text), text
    # the broker's own topics (TBW102, its cluster and broker names) are hidden but reachable
    assert os.listdir(m.p("topic")) == []
    for t in ("TBW102", "DefaultCluster", "broker-a"):
        assert os.path.isfile(m.p("topic", t)), t
    queues = os.listdir(m.p("queue", "TBW102"))
    assert queues and all(re.fullmatch(r"broker-a-\d+", q) for q in queues), queues
    open(m.p("topic", "Made"), "w").close()  # create: listed by this mount at once
    assert os.listdir(m.p("topic")) == ["Made"]


def test_namesrv_down_serves_the_cache(cluster):
    m, ns = cluster
    assert os.path.isfile(m.p("topic", "TBW102"))
    ns.proc.send_signal(signal.SIGTERM)
    ns.proc.wait(timeout=10)
    time.sleep(1.2)  # the cached list is now older than the refetch age
    t0 = time.monotonic()
    assert os.listdir(m.p("topic")) == []
    assert os.path.isfile(m.p("topic", "TBW102"))
    text = open(m.p("cluster")).read()
    assert "unreachable" in text and "broker-a" in text, text
    assert time.monotonic() - t0 < 5


def test_create_makes_the_topic_and_cluster_shows_it(cluster):
    """`touch topic/T` creates T on the broker with the default 4 queues (what a first send
    would give), visible to every client at once; `cluster` shows liveness and queue counts."""
    m, _ = cluster
    r = subprocess.run(["touch", m.p("topic", "Fresh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(m.p("queue", "Fresh"))) == ["broker-a-%d" % i for i in range(4)]
    text = open(m.p("cluster")).read()
    assert re.search(r"broker-a\s+0\s+127\.0\.0\.1:\d+\s+master\s+yes", text), text
    assert re.search(r"^Fresh\s+broker-a\s+4\s+4\s+rw$", text, re.M), text
    # An existing topic is not re-created: another mount with another default keeps its queues.
    m2 = Mount(os.path.join(m.workdir, "m2"), m.namesrv, ["-o", "queues=2"]).start()
    try:
        open(m2.p("topic", "Fresh"), "w").close()
        assert len(os.listdir(m2.p("queue", "Fresh"))) == 4
        open(m2.p("topic", "Two"), "w").close()
        assert sorted(os.listdir(m2.p("queue", "Two"))) == ["broker-a-0", "broker-a-1"]
    finally:
        m2.stop()


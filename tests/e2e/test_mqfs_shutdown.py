"""test_mqfs_shutdown.py — mqfs ends, and ends cleanly, however it is told to while it is busy:
concurrent line writers, blocked group readers (`cat group/G/T`), `.now` drains in a loop and
`tail -f` of a queue file, then one of

- `term`: SIGTERM with all of them still running (the open files fail, mqfs exits 0);
- `kill-umount`: the readers get SIGKILL (their reads are interrupted while the kernel
  releases their files) and `fusermount3 -u` follows at once;
- `lazy`: `fusermount3 -u -z` with every file still open; mqfs exits once the last one closes;
- `ns-copy`: a process in a new mount namespace (`unshare -m`, as `ip netns exec` or a container
  runtime makes) holds a copy of the mount; with `/` private the unmount does not reach that
  copy, and the kernel kept the FUSE connection — and mqfs — alive until that namespace ended
  (the intermittent "mqfs did not exit after unmount" of the e2e runs: concurrent tests start
  `ip netns exec` processes). mqfs now ends once its mount is gone from its own namespace, and
  the copy fails with ENOTCONN.

Each mode runs several rounds on fresh mounts (MQFS_SHUTDOWN_ROUNDS, default 2) and mqfs must
exit 0 within 20 s each time (a hang fails with the daemon's thread stacks).
See docs/RELIABILITY.md "mqfs shutdown"."""

import os
import signal
import subprocess
import threading
import time

import pytest

import mqproto as mp
from brokers import GET_MAX_OFFSET, broker_factory, create_topic, wait_route  # noqa: F401
from mqfs_mount import Mount, write_lines

TOPIC, QUEUES = "Down", 4
ROUNDS = int(os.environ.get("MQFS_SHUTDOWN_ROUNDS", "2"))
EXIT_S = 20.0


class Load:
    """Writers, blocked group readers, `.now` drains and a `tail -f`, all on one mount."""

    def __init__(self, m, workdir):
        self.m, self.stop, self.procs, self.threads = m, threading.Event(), [], []
        self.written = []  # the lines whose write() returned
        self.out = open(os.path.join(workdir, "load.out"), "wb")

    def _drain(self):
        while not self.stop.is_set():
            try:
                p = subprocess.Popen(["cat", self.m.p("group", "GNow", TOPIC + ".now")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                return
            self.procs.append(p)
            p.wait()

    def start(self):
        for g in ("GDown", "GNow"):
            if not os.path.isdir(self.m.p("group", g)):
                os.mkdir(self.m.p("group", g))
        cmds = [["cat", self.m.p("group", "GDown", TOPIC)],
                ["cat", self.m.p("group", "GDown", TOPIC + ".json")],
                ["tail", "-f", self.m.p("queue", TOPIC, "broker-a-0")]]
        for c in cmds:
            self.procs.append(subprocess.Popen(c, stdout=self.out, stderr=subprocess.DEVNULL))
        self.threads = [threading.Thread(target=write_lines, args=(
            self.m.p("topic", TOPIC), b"w%d" % t, self.written, self.stop)) for t in range(3)]
        self.threads.append(threading.Thread(target=self._drain))
        for t in self.threads:
            t.start()

    def kill(self):
        self.stop.set()
        for p in list(self.procs):
            if p.poll() is None:
                p.kill()
        for p in list(self.procs):
            p.wait()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "a writer or drain hangs on an ended mount"
        self.out.close()


def ns_copy_holder():
    """A process in a new mount namespace (a copy of every mount), or a skip."""
    p = subprocess.Popen(["unshare", "-m", "--propagation", "unchanged", "sleep", "120"],
                         stderr=subprocess.PIPE)
    time.sleep(0.3)
    if p.poll() is not None:
        pytest.skip("cannot make a mount namespace: %s" % p.stderr.read().decode().strip())
    return p


@pytest.mark.parametrize("mode", ["term", "kill-umount", "lazy", "ns-copy"])
def test_mqfs_exits_under_load(mode, namesrv, broker_factory, tmp_path):  # noqa: F811
    b = broker_factory(namesrv=namesrv)
    with mp.Client(b.port) as cli:
        create_topic(cli, TOPIC, QUEUES)
    wait_route(namesrv.port, TOPIC, 10)
    for rnd in range(ROUNDS):
        work = tmp_path / ("r%d" % rnd)
        os.makedirs(work)
        m = Mount(work, "127.0.0.1:%d" % namesrv.port).start()
        load = Load(m, str(work))
        holder = None
        try:
            load.start()
            if mode == "ns-copy":
                holder = ns_copy_holder()
            time.sleep(1.0)
            assert len(load.written) > 0, "the writers got nowhere"
            if mode == "term":
                m.proc.send_signal(signal.SIGTERM)
                assert m.wait_exit(EXIT_S) == 0
                load.kill()
            elif mode in ("kill-umount", "ns-copy"):
                load.kill()
                r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True)
                while r.returncode != 0 and m.proc.poll() is None:
                    time.sleep(0.05)  # the killed readers' files are still being released
                    r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True)
                assert m.wait_exit(EXIT_S) == 0
                if holder:  # the copy in the other namespace lost its daemon: ENOTCONN
                    r = subprocess.run(["nsenter", "-t", str(holder.pid), "-m", "ls", m.path],
                                       capture_output=True, timeout=10)
                    assert r.returncode != 0, r.stdout
                    assert b"not connected" in r.stderr, r.stderr
            else:
                r = subprocess.run(["fusermount3", "-u", "-z", m.path], capture_output=True)
                assert r.returncode == 0, r.stderr
                time.sleep(0.3)  # the open files keep being served meanwhile
                load.kill()
                assert m.wait_exit(EXIT_S) == 0
            load.join()
            assert not os.path.ismount(m.path)
            m.check_stderr()
        finally:
            if holder:
                holder.kill()
                holder.wait()
            load.kill()
            m._kill()
            m._err.close()
            m.proc = None


def test_lazy_unmount_serves_open_files_until_closed(namesrv, broker_factory, tmp_path):  # noqa: F811
    """`fusermount3 -u -z` with files open: they go on working (a write is sent, a read
    answers) until the last is closed, and only then does mqfs exit 0."""
    b = broker_factory(namesrv=namesrv)
    with mp.Client(b.port) as cli:
        create_topic(cli, "Lazy", 1)
    wait_route(namesrv.port, "Lazy", 10)
    m = Mount(tmp_path, "127.0.0.1:%d" % namesrv.port).start()
    try:
        w = os.open(m.p("topic", "Lazy"), os.O_WRONLY)
        r = os.open(m.p("topic", "Lazy"), os.O_RDONLY)
        assert os.write(w, b"before\n") == 7
        u = subprocess.run(["fusermount3", "-u", "-z", m.path], capture_output=True)
        assert u.returncode == 0, u.stderr
        assert not os.path.ismount(m.path)
        time.sleep(1.5)  # past the mount watcher's look at the mount table
        assert m.proc.poll() is None, "mqfs ended with files open:\n" + m.stderr()
        assert os.write(w, b"after\n") == 6
        assert os.pread(r, 100, 0) == b"before\nafter\n"
        os.close(w)
        assert m.proc.poll() is None
        os.close(r)
        assert m.wait_exit(EXIT_S) == 0
        m.check_stderr()
    finally:
        m.stop()
    with mp.Client(b.port) as cli:  # what was written after the unmount reached the broker
        r = cli.call(GET_MAX_OFFSET, {"topic": "Lazy", "queueId": "0"})
        assert int(r.ext["offset"]) == 2

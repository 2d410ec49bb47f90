"""test_mqfs_memory.py — mqfs's resident memory stays bounded (issue: under 64 MiB whatever the
topic size): reading a topic far larger than that, and keeping 1,000 files open, grow it only by
per-open O(1) state and bounded buffers. Peak RSS (VmHWM) is read from /proc after the work.

Sanitizer builds keep shadow memory and quarantined allocations, so there the files are opened
and read the same way but the limit is not asserted."""

import os
import subprocess

import pytest

from brokers import broker_factory, mqfs_cluster  # noqa: F401  (fixtures)

LIMIT_KIB = 64 * 1024


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def sanitized(pid):
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in line or "libubsan" in line for line in f)


def check_peak(m, what):
    pid = m.proc.pid
    hwm, rss = status(pid, "VmHWM"), status(pid, "VmRSS")
    print("%s: mqfs VmHWM %d KiB, VmRSS %d KiB" % (what, hwm, rss))
    if not sanitized(pid):
        assert hwm < LIMIT_KIB, "%s: mqfs peak RSS %d KiB" % (what, hwm)


def test_reading_a_large_topic_keeps_rss_bounded(mqfs_cluster):  # noqa: F811
    m = mqfs_cluster
    path = m.p("topic", "Big")
    # 800,000 lines of 100 bytes: 80 MB of topic, more than the limit (MQFS_MEM_LINES=10000000
    # reads 1 GB: docs/BENCHMARKS.md).
    n = int(os.environ.get("MQFS_MEM_LINES", "800000"))
    gen = "seq -f '%%010.0f%s' 1 %d" % ("x" * 89, n)
    r = subprocess.run("%s > %s" % (gen, path), shell=True, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert os.stat(path).st_size == n * 100
    for _ in range(2):  # two passes, so steady state is what is measured
        r = subprocess.run("cat %s | wc -l" % path, shell=True, capture_output=True, text=True,
                           timeout=300)
        assert r.stdout.strip() == str(n)
    check_peak(m, "after writing and reading %d MB" % (n // 10000))


def test_a_thousand_open_files_keep_rss_bounded(mqfs_cluster):  # noqa: F811
    m = mqfs_cluster
    with open(m.p("topic", "Many"), "w") as f:
        f.write("".join("m%d\n" % i for i in range(100)))
    os.mkdir(m.p("group", "MemG"))
    queues = sorted(os.listdir(m.p("queue", "Many")))
    fds = []
    try:
        for i in range(1000):
            kind = i % 4
            if kind == 0:
                p = m.p("topic", "Many")
            elif kind == 1:
                p = m.p("queue", "Many", queues[i % len(queues)])
            elif kind == 2:
                p = m.p("topic", "Many")  # a writer: carries a partial line
            else:
                p = m.p("key", "Many", "k%d" % i)
            fd = os.open(p, os.O_WRONLY | os.O_APPEND if kind == 2 else os.O_RDONLY)
            if kind == 2:
                assert os.write(fd, b"partial-%d" % i) > 0
            else:
                assert os.read(fd, 4096) is not None
            fds.append(fd)
        # 100 group readers among them: each is a consumer of the group.
        for i in range(100):
            fd = os.open(m.p("group", "MemG", "Many.now"), os.O_RDONLY)
            os.read(fd, 4096)
            fds.append(fd)
        check_peak(m, "with %d files open" % len(fds))
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

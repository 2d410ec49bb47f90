#!/usr/bin/env python3
"""fs_bench.py — the file interface measured with the shell tools, side by side in one run:

  ingest     `cat FILE > topic/T` (N lines of 100 bytes) vs the same cat into a plain file on
             the same disk and into a FUSE passthrough mount (mqbench-passthrough: the FUSE
             ceiling with mqfs's mount settings)
  log read   `cat topic/T > /dev/null` (lines/s)
  group read `head -n M group/G/T` in exact mode (one message per read)
  latency    a line written to topic/T until a blocked reader of group/G/T has it (p50/p99)

Starts its own NameServer, broker (ASYNC_FLUSH) and mounts on free 127.0.0.1 ports in a temp
dir, and stops them. Usage: tools/fsbench/fs_bench.py [--lines N] [--bin build/bin]
[--read-repeat K]
Final line: RESULT ingest_mps=... plain_mps=... passthrough_mps=... ingest_vs_plain=...
ingest_vs_passthrough=... log_read_lps=... group_exact_lps=... lat_p50_ms=... lat_p99_ms=...
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(pred, what, timeout=20):
    t = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t:
            raise SystemExit("timed out waiting for " + what)
        time.sleep(0.05)


def port_open(p):
    try:
        socket.create_connection(("127.0.0.1", p), 0.2).close()
        return True
    except OSError:
        return False


def timed(cmd):
    t0 = time.monotonic()
    subprocess.run(["bash", "-c", cmd], check=True)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--group-lines", type=int, default=20000)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--read-repeat", type=int, default=1,
                    help="log reads to time (the fastest counts; files are direct_io)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mq-fsbench-")
    procs, mounts = [], []
    try:
        ns_port, br_port = free_port(), free_port()
        with open(os.path.join(work, "ns.conf"), "w") as f:
            f.write("listenPort=%d\n" % ns_port)
        with open(os.path.join(work, "b.conf"), "w") as f:
            f.write("listenPort=%d\nnamesrvAddr=127.0.0.1:%d\nstorePathRootDir=%s/store\n"
                    "flushDiskType=ASYNC_FLUSH\nmappedFileSizeCommitLog=%d\n"
                    % (br_port, ns_port, work, 256 << 20))
        log = open(os.path.join(work, "daemons.log"), "wb")
        procs.append(subprocess.Popen([os.path.join(a.bin, "mqnamesrv"), "-c",
                                       os.path.join(work, "ns.conf")], stderr=log))
        wait(lambda: port_open(ns_port), "mqnamesrv")
        procs.append(subprocess.Popen([os.path.join(a.bin, "mqbroker"), "-c",
                                       os.path.join(work, "b.conf")], stderr=log))
        wait(lambda: port_open(br_port), "mqbroker")
        mnt, pmnt, psrc = (os.path.join(work, d) for d in ("mnt", "pmnt", "psrc"))
        for d in (mnt, pmnt, psrc):
            os.makedirs(d)
        procs.append(subprocess.Popen([os.path.join(a.bin, "mqfs"), mnt, "-f", "-n",
                                       "127.0.0.1:%d" % ns_port], stderr=log))
        mounts.append(mnt)
        procs.append(subprocess.Popen([os.path.join(a.bin, "mqbench-passthrough"), psrc, pmnt],
                                      stderr=log))
        mounts.append(pmnt)
        wait(lambda: os.path.ismount(mnt) and os.path.ismount(pmnt), "the mounts")
        src = os.path.join(work, "lines.txt")
        with open(src, "w") as f:  # N lines of 100 bytes (99 + newline)
            for i in range(a.lines):
                f.write("%010d %s\n" % (i, "x" * 88))
        n = a.lines
        time.sleep(3)  # let the broker register so mqfs finds the route at once
        t_plain = timed("cat '%s' > '%s/plain.txt'" % (src, work))
        t_pass = timed("cat '%s' > '%s/f.txt'" % (src, pmnt))
        t_ingest = timed("cat '%s' > '%s/topic/Bench'" % (src, mnt))
        t_read = min(timed("cat '%s/topic/Bench' > /dev/null" % mnt)
                     for _ in range(max(1, a.read_repeat)))
        os.mkdir(os.path.join(mnt, "group", "GB"))
        gl = min(a.group_lines, n)
        t_group = timed("head -n %d '%s/group/GB/Bench' > /dev/null" % (gl, mnt))
        # Latency: one blocked reader, one line at a time.
        os.mkdir(os.path.join(mnt, "group", "GL"))
        with open(os.path.join(mnt, "topic", "Lat"), "a") as f:
            f.write("warm\n")
        rd = open(os.path.join(mnt, "group", "GL", "Lat"), "rb", buffering=0)
        rd.read(100)  # the warm-up line
        lats = []
        wfd = os.open(os.path.join(mnt, "topic", "Lat"), os.O_WRONLY | os.O_APPEND)
        for i in range(200):
            t0 = time.monotonic()
            os.write(wfd, b"m%d\n" % i)
            got = rd.read(100)
            lats.append((time.monotonic() - t0) * 1000)
            assert got == b"m%d\n" % i, got
        os.close(wfd)
        rd.close()
        lats.sort()
        p50, p99 = lats[len(lats) // 2], lats[int(len(lats) * 0.99) - 1]
        r = {"ingest_mps": n / t_ingest, "plain_mps": n / t_plain, "passthrough_mps": n / t_pass,
             "log_read_lps": n / t_read, "group_exact_lps": gl / t_group}
        print("lines %d x 100 bytes" % n)
        print("ingest (cat > topic/T)        %10.0f msgs/s  (%.3fx plain file, %.3fx FUSE "
              "passthrough)" % (r["ingest_mps"], r["ingest_mps"] / r["plain_mps"],
                                r["ingest_mps"] / r["passthrough_mps"]))
        print("cat > plain file              %10.0f lines/s" % r["plain_mps"])
        print("cat > FUSE passthrough        %10.0f lines/s" % r["passthrough_mps"])
        print("log read (cat topic/T)        %10.0f lines/s" % r["log_read_lps"])
        print("group read, exact (head -n)   %10.0f lines/s" % r["group_exact_lps"])
        print("echo -> blocked group reader  p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        print("RESULT ingest_mps=%.0f plain_mps=%.0f passthrough_mps=%.0f ingest_vs_plain=%.4f "
              "ingest_vs_passthrough=%.4f log_read_lps=%.0f group_exact_lps=%.0f "
              "lat_p50_ms=%.3f lat_p99_ms=%.3f" % (
                  r["ingest_mps"], r["plain_mps"], r["passthrough_mps"],
                  r["ingest_mps"] / r["plain_mps"], r["ingest_mps"] / r["passthrough_mps"],
                  r["log_read_lps"], r["group_exact_lps"], p50, p99))
    finally:
        for m in mounts:
            subprocess.run(["fusermount3", "-u", m], capture_output=True)
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        for m in mounts:
            if os.path.ismount(m):
                subprocess.run(["fusermount3", "-u", "-z", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

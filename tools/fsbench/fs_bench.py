#!/usr/bin/env python3
"""fs_bench.py — the file interface measured with the shell tools, side by side in one run:

  ingest     `cat FILE > topic/T` (N lines of 100 bytes) vs the same cat into a plain file on
             the same disk and into a FUSE passthrough mount (mqbench-passthrough: the FUSE
             ceiling with mqfs's mount settings)
  log read   `cat topic/T > /dev/null` (lines/s)
  group read `head -n M group/G/T` in exact mode (one message per read) and
             `cat group/G2/T.bulk.now | wc -l` of all N lines (as many whole messages per
             read as fit)
  latency    a line written to topic/T (open, write, close: what `echo x >> topic/T` does)
             until a blocked `cat group/G/T` prints it (p50/p99 over --samples lines, one
             every --gap-ms, default 5 ms, so cat is parked in read() each time), for
             exact and .bulk readers; and a write() on a topic file kept open

Starts its own NameServer, broker (ASYNC_FLUSH) and mounts on free 127.0.0.1 ports in a temp
dir, and stops them. Usage: tools/fsbench/fs_bench.py [--lines N] [--group-lines M]
[--samples S] [--gap-ms G] [--read-repeat K] [--only all|ingest] [--ingest-repeat R]
[--bin build/bin]. Prints the load average before and after, and per ingest the CPU time of
mqfs and of the broker per message. --only ingest stops after the ingests (RESULT
ingest_mps plain_mps passthrough_mps mqfs_cpu_us broker_cpu_us; the median of R ingests).
Final line: RESULT ingest_mps=... plain_mps=... passthrough_mps=... ingest_vs_plain=...
ingest_vs_passthrough=... log_read_lps=... group_exact_lps=... group_bulk_lps=...
lat_p50_ms=... lat_p99_ms=... lat_bulk_p50_ms=... lat_bulk_p99_ms=... lat_fd_p50_ms=...
lat_fd_p99_ms=...
"""

import argparse
import math
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


def cpu_s(pid):
    """user + system CPU seconds of a process (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_ms, p):
    """The p-th percentile (nearest rank) of an ascending list."""
    k = max(0, min(len(sorted_ms) - 1, math.ceil(p / 100.0 * len(sorted_ms)) - 1))
    return sorted_ms[k]


def latency(mnt, group, topic, name, samples, gap_ms, reopen=True):
    """A blocked `cat` of group/<group>/<name> and one line at a time written to topic/<topic>
    (open, write, close, as `echo` does; with reopen False one write() on a file kept open):
    ms from the write until cat printed the line."""
    os.mkdir(os.path.join(mnt, "group", group))
    tpath = os.path.join(mnt, "topic", topic)
    with open(tpath, "a") as f:
        f.write("warm\n")
    cat = subprocess.Popen(["cat", os.path.join(mnt, "group", group, name)],
                           stdout=subprocess.PIPE, bufsize=0)
    try:
        if cat.stdout.readline() != b"warm\n":
            raise SystemExit("latency: the warm-up line did not arrive")
        lats = []
        keep = None if reopen else os.open(tpath, os.O_WRONLY | os.O_APPEND)
        for i in range(samples):
            time.sleep(gap_ms / 1000.0)  # cat is blocked in read() again
            t0 = time.monotonic()
            fd = keep if keep is not None else os.open(tpath, os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"m%d\n" % i)
            if keep is None:
                os.close(fd)
            got = cat.stdout.readline()
            lats.append((time.monotonic() - t0) * 1000)
            if got != b"m%d\n" % i:
                raise SystemExit("latency: got %r" % got)
        if keep is not None:
            os.close(keep)
    finally:
        cat.kill()
        cat.wait()
    lats.sort()
    return percentile(lats, 50), percentile(lats, 99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--group-lines", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--gap-ms", type=float, default=5.0,
                    help="pause between latency samples (the reader is parked in read())")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--read-repeat", type=int, default=1,
                    help="log reads to time (the fastest counts; files are direct_io)")
    ap.add_argument("--only", choices=["all", "ingest"], default="all",
                    help="ingest: only the three cats (topic, plain file, passthrough)")
    ap.add_argument("--ingest-repeat", type=int, default=1,
                    help="ingests to time, each into a new topic (all are printed; the "
                         "median counts)")
    ap.add_argument("--broker-conf", metavar="KEY=VALUE", action="append", default=[],
                    help="an extra broker setting (repeatable), e.g. commitLogWarmAhead=0")
    ap.add_argument("--keep-log", metavar="FILE",
                    help="copy the daemons' stderr (NameServer, broker, mqfs) to FILE")
    a = ap.parse_args()
    load_before = os.getloadavg()
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
            for kv in a.broker_conf:
                f.write(kv + "\n")
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
        pid_fs, pid_br = procs[2].pid, procs[1].pid
        runs = []
        for k in range(max(1, a.ingest_repeat)):
            c0 = (cpu_s(pid_fs), cpu_s(pid_br))
            t = timed("cat '%s' > '%s/topic/Bench%s'" % (src, mnt, str(k) if k else ""))
            c1 = (cpu_s(pid_fs), cpu_s(pid_br))
            runs.append((t, (c1[0] - c0[0]) * 1e6 / n, (c1[1] - c0[1]) * 1e6 / n))
            print("ingest %d: %.0f msgs/s, CPU per message: mqfs %.2f us, broker %.2f us" % (
                k + 1, n / t, runs[-1][1], runs[-1][2]))
        t_ingest, fs_us, br_us = sorted(runs)[len(runs) // 2]
        if a.only == "ingest":
            load_after = os.getloadavg()
            print("ingest (cat > topic/T)        %10.0f msgs/s  (%.3fx plain file, %.3fx FUSE "
                  "passthrough)" % (n / t_ingest, t_plain / t_ingest, t_pass / t_ingest))
            print("cat > plain file              %10.0f lines/s" % (n / t_plain))
            print("cat > FUSE passthrough        %10.0f lines/s" % (n / t_pass))
            print("load average before %.2f %.2f %.2f, after %.2f %.2f %.2f" % (
                load_before + load_after))
            print("RESULT ingest_mps=%.0f plain_mps=%.0f passthrough_mps=%.0f "
                  "mqfs_cpu_us=%.3f broker_cpu_us=%.3f" % (
                      n / t_ingest, n / t_plain, n / t_pass, fs_us, br_us))
            return 0
        t_read = min(timed("cat '%s/topic/Bench' > /dev/null" % mnt)
                     for _ in range(max(1, a.read_repeat)))
        os.mkdir(os.path.join(mnt, "group", "GB"))
        gl = min(a.group_lines, n)
        t_group = timed("head -n %d '%s/group/GB/Bench' > /dev/null" % (gl, mnt))
        os.mkdir(os.path.join(mnt, "group", "GBB"))
        t0 = time.monotonic()  # .bulk as recommended: a cat that drains everything
        got = subprocess.run(["bash", "-c", "cat '%s/group/GBB/Bench.bulk.now' | wc -l" % mnt],
                             check=True, capture_output=True).stdout
        t_bulk = time.monotonic() - t0
        if int(got) != n:
            raise SystemExit("group read .bulk: %s lines of %d" % (got.strip(), n))
        p50, p99 = latency(mnt, "GL", "Lat", "Lat", a.samples, a.gap_ms)
        bp50, bp99 = latency(mnt, "GLB", "LatB", "LatB.bulk", a.samples, a.gap_ms)
        wp50, wp99 = latency(mnt, "GLW", "LatW", "LatW", a.samples, a.gap_ms, reopen=False)
        load_after = os.getloadavg()
        r = {"ingest_mps": n / t_ingest, "plain_mps": n / t_plain, "passthrough_mps": n / t_pass,
             "log_read_lps": n / t_read, "group_exact_lps": gl / t_group,
             "group_bulk_lps": n / t_bulk}
        print("lines %d x 100 bytes" % n)
        print("ingest (cat > topic/T)        %10.0f msgs/s  (%.3fx plain file, %.3fx FUSE "
              "passthrough)" % (r["ingest_mps"], r["ingest_mps"] / r["plain_mps"],
                                r["ingest_mps"] / r["passthrough_mps"]))
        print("cat > plain file              %10.0f lines/s" % r["plain_mps"])
        print("cat > FUSE passthrough        %10.0f lines/s" % r["passthrough_mps"])
        print("log read (cat topic/T)        %10.0f lines/s" % r["log_read_lps"])
        print("group read, exact (head -n %d) %10.0f lines/s" % (gl, r["group_exact_lps"]))
        print("group read, .bulk (cat .bulk.now | wc -l, %d) %10.0f lines/s (%.1fx exact)" % (
            n, r["group_bulk_lps"], r["group_bulk_lps"] / r["group_exact_lps"]))
        print("echo -> blocked cat group/G/T       p50 %.2f ms, p99 %.2f ms (%d samples)" % (
            p50, p99, a.samples))
        print("echo -> blocked cat group/G/T.bulk  p50 %.2f ms, p99 %.2f ms (%d samples)" % (
            bp50, bp99, a.samples))
        print("write() on an open fd -> cat      p50 %.2f ms, p99 %.2f ms (%d samples)" % (
            wp50, wp99, a.samples))
        print("load average before %.2f %.2f %.2f, after %.2f %.2f %.2f" % (
            load_before + load_after))
        print("RESULT ingest_mps=%.0f plain_mps=%.0f passthrough_mps=%.0f ingest_vs_plain=%.4f "
              "ingest_vs_passthrough=%.4f log_read_lps=%.0f group_exact_lps=%.0f "
              "group_bulk_lps=%.0f lat_p50_ms=%.3f lat_p99_ms=%.3f lat_bulk_p50_ms=%.3f "
              "lat_bulk_p99_ms=%.3f lat_fd_p50_ms=%.3f lat_fd_p99_ms=%.3f" % (
                  r["ingest_mps"], r["plain_mps"], r["passthrough_mps"],
                  r["ingest_mps"] / r["plain_mps"], r["ingest_mps"] / r["passthrough_mps"],
                  r["log_read_lps"], r["group_exact_lps"], r["group_bulk_lps"], p50, p99,
                  bp50, bp99, wp50, wp99))
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
        if a.keep_log and os.path.exists(os.path.join(work, "daemons.log")):
            shutil.copyfile(os.path.join(work, "daemons.log"), a.keep_log)
        for m in mounts:
            if os.path.ismount(m):
                subprocess.run(["fusermount3", "-u", "-z", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

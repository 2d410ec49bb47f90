#!/usr/bin/env python3
"""broker_holds.py — what idle consumers cost the broker: opens N connections (default 10,000)
to a fresh mqbroker, parks one long-polling pull on each, and reports the broker's anonymous
memory (RssAnon) and threads before and after, and how fast one send wakes its held pull.

Usage: tools/bench/broker_holds.py [--conns N] [--bin build/bin]
Starts its own NameServer-less broker on a free 127.0.0.1 port in a temp dir and stops it.
The final line is `RESULT conns=... rss_anon_kib_before=... rss_anon_kib_after=...
per_hold_bytes=... threads_before=... threads_after=... wake_ms=...`.
"""

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import mqproto as mp  # noqa: E402


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pull_ext(topic, qid, offset, suspend_ms):
    return {"consumerGroup": "HG", "topic": topic, "queueId": str(qid),
            "queueOffset": str(offset), "maxMsgNums": "32", "sysFlag": "6",
            "commitOffset": "0", "suspendTimeoutMillis": str(suspend_ms),
            "subscription": "*", "subVersion": "0"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    args = ap.parse_args()
    need = args.conns + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    work = tempfile.mkdtemp(prefix="mq-holds-")
    port = free_port()
    conf = os.path.join(work, "broker.conf")
    with open(conf, "w") as f:
        f.write("listenPort=%d\nstorePathRootDir=%s/store\nmappedFileSizeCommitLog=%d\n"
                % (port, work, 64 << 20))
    err = open(os.path.join(work, "broker.stderr"), "wb")
    broker = subprocess.Popen([os.path.join(args.bin, "mqbroker"), "-c", conf], stderr=err,
                              stdout=err)
    socks = []
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        with mp.Client(port) as admin:
            admin.call(17, {"topic": "Holds", "readQueueNums": "8", "writeQueueNums": "8",
                            "perm": "6"})
        time.sleep(0.5)
        rss0, thr0 = status(broker.pid, "RssAnon"), status(broker.pid, "Threads")
        opaque = 1
        for i in range(args.conns):
            s = socket.create_connection(("127.0.0.1", port))
            cmd = mp.Command(11, pull_ext("Holds", i % 8, 0, 60000), opaque=opaque)
            opaque += 1
            s.sendall(mp.encode(cmd))
            socks.append(s)
        time.sleep(2.0)  # let the broker take them all in
        rss1, thr1 = status(broker.pid, "RssAnon"), status(broker.pid, "Threads")
        # One send wakes the pulls held on its queue.
        t0 = time.monotonic()
        with mp.Client(port) as p:
            p.call(310, {"a": "PG", "b": "Holds", "c": "TBW102", "d": "4", "e": "3", "f": "0",
                         "g": "0", "h": "0", "i": "WAIT\x01true\x02", "j": "0", "k": "false",
                         "m": "false"}, b"wake")
        woken = socks[3]
        woken.settimeout(10)
        resp = mp.read_frame(woken)
        wake_ms = (time.monotonic() - t0) * 1000
        assert resp.code == 0, resp
        per = (rss1 - rss0) * 1024 // max(args.conns, 1)
        print("connections: %d, broker RssAnon %d KiB -> %d KiB (%d bytes per held pull), "
              "threads %d -> %d, wake after send %.2f ms" % (args.conns, rss0, rss1, per, thr0,
                                                             thr1, wake_ms))
        print("RESULT conns=%d rss_anon_kib_before=%d rss_anon_kib_after=%d per_hold_bytes=%d "
              "threads_before=%d threads_after=%d wake_ms=%.2f"
              % (args.conns, rss0, rss1, per, thr0, thr1, wake_ms))
    finally:
        for s in socks:
            s.close()
        broker.terminate()
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
        err.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

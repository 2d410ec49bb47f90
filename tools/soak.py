#!/usr/bin/env python3
"""soak.py — a soak test of a whole cluster on this machine: one NameServer, two brokers and an
mqfs mount on 127.0.0.1 (free ports, a temporary directory), N producers and, per consumer
group, readers that mix mqfs group files (`cat group/<G>/Soak.json`) and libmqclient consumers
(example_consumer_pull), for a set time.

Every message carries a sequence number: producer k sends tag `p<k>`, bodies `sync-<i>`
(example_producer_sync). At the end, after the readers drained, for every group:
  missing    = messages a producer saw acknowledged that no member of the group received (must be 0)
  duplicates = deliveries beyond the first of a message within the group (must be 0 unless the
               group had a member killed with --crash-at: a crashed reader's uncommitted
               deliveries come again; the report then shows that member's deliveries of its
               last 2 s for comparison)
  foreign    = received messages no producer sent (must be 0; the one send in flight when a
               producer is stopped may be stored unacknowledged and is not foreign)
and for every daemon and reader process (sampled each second): anonymous RSS (RssAnon, the heap;
VmRSS also counts the mapped commitlog pages a broker writes) and open file descriptors, first
sample after the warm-up vs the last, and the maximum. Flat means: RssAnon grew by at most
16 MiB + 25 % and the descriptors by at most 4 between the two. Daemons must exit 0 on SIGTERM
and their stderr must show no sanitizer report.

  python3 tools/soak.py --duration 600 [--producers 3] [--groups 2] [--mqfs-readers 1]
                        [--client-readers 1] [--interval-ms 5] [--crash-at S]
                        [--bin-dir build/bin] [--report soak.json] [--keep]

Prints a report and a last line `RESULT ...`; exits 0 when every check holds, 1 otherwise.
Needs root or FUSE access (/dev/fuse, fusermount3).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "AddressSanitizer:DEADLYSIGNAL", "Segmentation fault")
TOPIC = "Soak"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Proc:
    """A child process whose stderr (and stdout unless piped) goes to <workdir>/<name>.log."""

    def __init__(self, name, argv, workdir, pipe=False):
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if pipe else self.log,
                                     stderr=self.log)
        self.pid = self.proc.pid

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "killed after %d s" % timeout
        return self.proc.returncode


def proc_sample(pid):
    """(RssAnon KiB, VmRSS KiB, open fds) of a live process, or None."""
    try:
        anon = rss = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return anon, rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, ValueError):
        return None


class Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.targets = {}  # name -> pid
        self.samples = {}  # name -> [(t, anon, rss, fds)]
        self.stopping = threading.Event()
        self.t0 = time.monotonic()

    def watch(self, name, pid):
        self.targets[name] = pid
        self.samples.setdefault(name, [])

    def run(self):
        while not self.stopping.wait(1.0):
            t = time.monotonic() - self.t0
            for name, pid in list(self.targets.items()):
                s = proc_sample(pid)
                if s:
                    self.samples[name].append((t,) + s)


class Reader:
    """One member of a group: an mqfs group file read with cat, or a libmqclient consumer."""

    def __init__(self, kind, name, argv, workdir):
        self.kind, self.group = kind, None
        self.p = Proc(name, argv, workdir, pipe=True)
        self.got = {}
        self.times = []  # arrival time of every delivery
        self.crashed_at = None
        self.bad = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _parse(self, line):
        if self.kind == "mqfs":
            o = json.loads(line)
            return o["tags"], int(o["body"].split("-")[1])
        f = line.split()
        if f[0] != b"MSG":
            return None
        return f[4].decode(), int(f[5].split(b"-")[1])

    def _drain(self):
        for line in iter(self.p.proc.stdout.readline, b""):
            try:
                key = self._parse(line)
            except (ValueError, KeyError, IndexError):
                self.bad.append(line[:200])
                continue
            if key is None:
                continue
            with self.lock:
                self.got[key] = self.got.get(key, 0) + 1
                self.times.append(time.monotonic())

    def count(self):
        with self.lock:
            return sum(self.got.values())


def start_daemon(name, argv, workdir, port, timeout=15):
    p = Proc(name, argv, workdir)
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if p.proc.poll() is not None or time.monotonic() > deadline:
            p.stop()
            raise RuntimeError("%s did not start:\n%s" % (name, p.text()[-3000:]))
        time.sleep(0.05)
    return p


def sanitized(path):
    """Whether a binary is an ASan build: its allocator quarantines freed memory (256 MiB by
    default) and keeps allocation stacks, so its RSS climbs for minutes without any leak."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def summarize(samples, warm_s, judge_rss=True):
    """Per process: first sample after the warm-up vs last, and the maximum."""
    out = {}
    for name, ss in samples.items():
        if not ss:
            continue
        # A process started late (a replacement reader) gets its own 5 s to open connections.
        start = max(warm_s, ss[0][0] + 5.0)
        warm = next((s for s in ss if s[0] >= start), ss[-1])
        last = ss[-1]
        out[name] = {
            "samples": len(ss),
            "anon_kib": [warm[1], last[1], max(s[1] for s in ss)],
            "rss_kib": [warm[2], last[2], max(s[2] for s in ss)],
            "fds": [warm[3], last[3], max(s[3] for s in ss)],
        }
        a0, a1 = warm[1], last[1]
        rss_flat = a1 - a0 <= 16 * 1024 + a0 // 4 or not judge_rss
        out[name]["flat"] = rss_flat and last[3] - warm[3] <= 4
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of producing")
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--mqfs-readers", type=int, default=1, help="mqfs group readers per group")
    ap.add_argument("--client-readers", type=int, default=1, help="libmqclient consumers per group")
    ap.add_argument("--interval-ms", type=int, default=5, help="pause between a producer's sends")
    ap.add_argument("--drain-timeout", type=float, default=60)
    ap.add_argument("--crash-at", type=float, default=0,
                    help="kill -9 a libmqclient member of the first group this many seconds in "
                    "and start a replacement; that group may then see duplicates, no loss")
    ap.add_argument("--bin-dir", default=os.environ.get("MQ_BIN_DIR") or
                    os.path.join(REPO, "build", "bin"))
    ap.add_argument("--workdir", help="default: a new temporary directory")
    ap.add_argument("--report", help="write the figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()

    b = lambda n: os.path.join(a.bin_dir, n)  # noqa: E731
    for n in ("mqnamesrv", "mqbroker", "mqfs", "mqadmin", "example_producer_sync",
              "example_consumer_pull"):
        if not os.access(b(n), os.X_OK):
            sys.exit("soak: %s not built in %s" % (n, a.bin_dir))
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        sys.exit("soak: needs /dev/fuse and fusermount3")
    asan = sanitized(b("mqbroker"))
    if asan:
        print("soak: ASan build: RSS is reported, not judged (the allocator's quarantine "
              "grows it); descriptors are judged", flush=True)
    work = a.workdir or tempfile.mkdtemp(prefix="mqsoak-")
    os.makedirs(work, exist_ok=True)
    t_start = time.monotonic()
    daemons, readers, producers = {}, [], []
    mnt = os.path.join(work, "mnt")
    mqfs = None
    sampler = Sampler()
    failures = []
    try:
        ns_port = free_port()
        with open(os.path.join(work, "namesrv.conf"), "w") as f:
            f.write("listenPort=%d\n" % ns_port)
        daemons["namesrv"] = start_daemon(
            "namesrv", [b("mqnamesrv"), "-c", os.path.join(work, "namesrv.conf")], work, ns_port)
        namesrv = "127.0.0.1:%d" % ns_port
        for name in ("broker-a", "broker-b"):
            port = free_port()
            conf = os.path.join(work, name + ".conf")
            with open(conf, "w") as f:
                f.write("brokerName=%s\nlistenPort=%d\nnamesrvAddr=%s\nstorePathRootDir=%s\n"
                        "mappedFileSizeCommitLog=%d\nregisterNameServerPeriod=2000\n"
                        "maxHashSlotNum=100000\nmaxIndexNum=400000\n" %
                        (name, port, namesrv, os.path.join(work, "store-" + name), 16 << 20))
            daemons[name] = start_daemon(name, [b("mqbroker"), "-c", conf], work, port)
        env_ns = ["-n", namesrv]
        for _ in range(100):  # both brokers registered
            r = subprocess.run([b("mqadmin"), "clusterList"] + env_ns, capture_output=True,
                               text=True, timeout=30)
            if "broker-a" in r.stdout and "broker-b" in r.stdout:
                break
            time.sleep(0.1)
        r = subprocess.run([b("mqadmin"), "updateTopic", "-c", "DefaultCluster", "-t", TOPIC,
                            "-r", "4", "-w", "4"] + env_ns, capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError("updateTopic: " + r.stdout + r.stderr)
        os.makedirs(mnt, exist_ok=True)
        mqfs = Proc("mqfs", [b("mqfs"), mnt, "-f", "-n", namesrv], work)
        deadline = time.monotonic() + 15
        while not os.path.ismount(mnt):
            if mqfs.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mqfs did not mount:\n" + mqfs.text()[-3000:])
            time.sleep(0.1)
        for name, d in daemons.items():
            sampler.watch(name, d.pid)
        sampler.watch("mqfs", mqfs.pid)
        sampler.start()

        # Readers first, so the groups are settled before the first send.
        groups = ["Soak%d" % g for g in range(a.groups)]
        for g in groups:
            os.mkdir(os.path.join(mnt, "group", g))
            for i in range(a.mqfs_readers):
                rd = Reader("mqfs", "%s-fs%d" % (g, i),
                            ["cat", os.path.join(mnt, "group", g, TOPIC + ".json")], work)
                rd.group = g
                readers.append(rd)
            for i in range(a.client_readers):
                rd = Reader("lib", "%s-lib%d" % (g, i),
                            [b("example_consumer_pull"), "-n", namesrv, "-t", TOPIC, "-g", g,
                             "-c", "0", "-r", "1000"], work)
                rd.group = g
                readers.append(rd)
                sampler.watch(rd.p.name, rd.p.pid)
        time.sleep(3.0)  # members join and rebalance (1 s periods)

        t_produce = time.monotonic()
        for k in range(a.producers):
            producers.append(Proc("producer%d" % k,
                                  [b("example_producer_sync"), "-n", namesrv, "-t", TOPIC,
                                   "-T", "p%d" % k, "-c", "1000000000", "-i", str(a.interval_ms),
                                   "-g", "SoakPG%d" % k], work, pipe=True))
        outs = [[] for _ in producers]
        drains = []
        for k, p in enumerate(producers):
            t = threading.Thread(target=lambda p=p, o=outs[k]: o.extend(
                iter(p.proc.stdout.readline, b"")), daemon=True)
            t.start()
            drains.append(t)
        next_print = time.monotonic() + 10
        crash_group = groups[0] if a.crash_at else None
        while time.monotonic() - t_produce < a.duration:
            time.sleep(0.5)
            if crash_group and time.monotonic() - t_produce >= a.crash_at:
                # kill -9 a libmqclient member of the first group, start a replacement.
                victim = next(r for r in readers if r.group == crash_group and r.kind == "lib")
                victim.p.stop(signal.SIGKILL)
                victim.crashed_at = time.monotonic()
                rd = Reader("lib", "%s-lib-new" % crash_group,
                            [b("example_consumer_pull"), "-n", namesrv, "-t", TOPIC, "-g",
                             crash_group, "-c", "0", "-r", "1000"], work)
                rd.group = crash_group
                readers.append(rd)
                sampler.targets.pop(victim.p.name, None)
                sampler.watch(rd.p.name, rd.p.pid)
                print("soak: %4.0f s  killed %s (SIGKILL), started %s" % (
                    time.monotonic() - t_produce, victim.p.name, rd.p.name), flush=True)
                crash_group = None
            if time.monotonic() >= next_print:
                next_print += 10
                print("soak: %4.0f s  sent %d  received %s" % (
                    time.monotonic() - t_produce, sum(len(o) for o in outs),
                    {g: sum(r.count() for r in readers if r.group == g) for g in groups}),
                    flush=True)
        for p in producers:
            p.stop(signal.SIGTERM)  # the producer dies; its last send may be in flight
        for t in drains:
            t.join(10)
        produce_s = time.monotonic() - t_produce

        ok, attempted, fails = set(), set(), []
        for k, o in enumerate(outs):
            tag = "p%d" % k
            last = -1
            for line in o:
                f = line.split()
                if not f:
                    continue
                i = int(f[1])
                last = max(last, i)
                if f[0] == b"OK":
                    ok.add((tag, i))
                else:
                    fails.append((tag, i, line.decode(errors="replace").strip()))
                attempted.add((tag, i))
            attempted.add((tag, last + 1))  # in flight when it was stopped

        # Drain: every group gets every acknowledged message.
        t_drain = time.monotonic()
        while time.monotonic() - t_drain < a.drain_timeout:
            done = True
            for g in groups:
                got = set()
                for r in readers:
                    if r.group == g:
                        with r.lock:
                            got.update(r.got)
                if not ok <= got:
                    done = False
            if done:
                break
            time.sleep(0.5)
        drain_s = time.monotonic() - t_drain
        time.sleep(1.5)  # a late duplicate would show now
        sampler.stopping.set()
        sampler.join(5)

        reader_rc = {}
        for r in readers:
            rc = r.p.stop(signal.SIGINT if r.kind == "mqfs" else signal.SIGTERM)
            r.thread.join(10)
            reader_rc[r.p.name] = rc
            if r.kind == "lib" and rc != 0 and r.crashed_at is None:
                failures.append("%s exited %s" % (r.p.name, rc))
            if r.bad:
                failures.append("%s printed unparsable lines: %r" % (r.p.name, r.bad[:3]))

        per_group = {}
        for g in groups:
            merged = {}
            members = {}
            for r in readers:
                if r.group != g:
                    continue
                members[r.p.name] = sum(r.got.values())
                for key, n in r.got.items():
                    merged[key] = merged.get(key, 0) + n
            missing = ok - set(merged)
            dups = sum(n - 1 for n in merged.values() if n > 1)
            foreign = set(merged) - attempted
            per_group[g] = {"received": len(merged), "missing": len(missing),
                            "duplicates": dups, "foreign": len(foreign), "members": members,
                            "missing_sample": sorted(missing)[:10]}
            crashed = [r for r in readers if r.group == g and r.crashed_at is not None]
            if crashed:
                # A killed member redelivers what it had not committed: its deliveries of the
                # last second or so (offsets are committed every 200 ms), and the queues moved
                # at the two rebalances may repeat what their owner had not committed yet.
                r = crashed[0]
                per_group[g]["crash"] = {
                    "member": r.p.name,
                    "its_deliveries_last_2s": sum(1 for t in r.times if t > r.crashed_at - 2)}
            if missing or foreign or (dups and not crashed):
                failures.append("group %s: %d missing, %d duplicates, %d foreign" %
                                (g, len(missing), dups, len(foreign)))

        procs = summarize(sampler.samples, warm_s=(t_produce - sampler.t0) +
                          min(max(5.0, 0.2 * a.duration), 120.0),
                          judge_rss=not asan)
        for name, s in procs.items():
            if not s["flat"]:
                failures.append("%s not flat: RssAnon %s KiB, fds %s" %
                                (name, s["anon_kib"], s["fds"]))
        if fails:
            failures.append("%d sends failed, e.g. %s" % (len(fails), fails[:3]))
        report = {"asan": asan, "duration_s": round(produce_s, 1), "drain_s": round(drain_s, 1),
                  "producers": a.producers, "interval_ms": a.interval_ms,
                  "sent_ok": len(ok), "send_failures": len(fails),
                  "rate_per_s": round(len(ok) / produce_s, 1), "groups": per_group,
                  "processes": procs, "reader_exit": reader_rc}
    except Exception as e:  # noqa: BLE001 - reported as a failure, cleanup below
        failures.append("error: %r" % e)
        report = {}
    finally:
        for p in producers:
            p.stop(signal.SIGKILL)
        for r in readers:
            r.p.stop(signal.SIGKILL)
        if mqfs is not None:
            deadline = time.monotonic() + 10
            while os.path.ismount(mnt) and time.monotonic() < deadline:
                if subprocess.run(["fusermount3", "-u", mnt], capture_output=True).returncode:
                    time.sleep(0.2)
            try:  # unmounted: it finishes its shutdown and exits by itself
                mqfs.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            rc = mqfs.stop()
            if rc != 0:
                failures.append("mqfs exited %s" % rc)
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", mnt], check=False)
        for name, d in list(daemons.items())[::-1]:
            rc = d.stop()
            if rc != 0:
                failures.append("%s exited %s on SIGTERM" % (name, rc))
        for p in (list(daemons.values()) + ([mqfs] if mqfs else []) + [r.p for r in readers] +
                  producers):
            text = p.text()
            for mark in SANITIZER_MARKS:
                if mark in text:
                    failures.append("%s log shows %r" % (p.name, mark))
    report["failures"] = failures
    report["wall_s"] = round(time.monotonic() - t_start, 1)
    print_report(report)
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1)
    if a.keep or failures:
        print("soak: work directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def print_report(r):
    if "sent_ok" in r:
        print("soak: produced %.0f s, %d producers: %d acknowledged (%.0f/s), %d failed; "
              "drained in %.1f s" % (r["duration_s"], r["producers"], r["sent_ok"],
                                     r["rate_per_s"], r["send_failures"], r["drain_s"]))
        for g, s in r["groups"].items():
            print("  group %s: received %d, missing %d, duplicates %d, foreign %d; members %s%s" %
                  (g, s["received"], s["missing"], s["duplicates"], s["foreign"], s["members"],
                   "; crash: %s" % s["crash"] if "crash" in s else ""))
        print("  %-14s %28s %28s %16s %s" % ("process", "RssAnon KiB first/last/max",
                                             "VmRSS KiB first/last/max", "fds f/l/max", "flat"))
        for name, s in r["processes"].items():
            print("  %-14s %28s %28s %16s %s" % (name, "/".join(map(str, s["anon_kib"])),
                                                 "/".join(map(str, s["rss_kib"])),
                                                 "/".join(map(str, s["fds"])), s["flat"]))
    for f in r["failures"]:
        print("FAIL: " + f)
    print("RESULT ok=%d sent=%s missing=%s duplicates=%s failures=%d wall_s=%s" % (
        0 if r["failures"] else 1, r.get("sent_ok", 0),
        sum(s["missing"] for s in r.get("groups", {}).values()),
        sum(s["duplicates"] for s in r.get("groups", {}).values()),
        len(r["failures"]), r["wall_s"]))


if __name__ == "__main__":
    sys.exit(main())

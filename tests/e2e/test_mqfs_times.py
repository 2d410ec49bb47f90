"""test_mqfs_times.py — the times a shell user sees on the mount (docs/FS.md "Attributes"): a
message view's st_mtime (and st_ctime) is the store time of the newest message it shows, so
`ls -lt` lists the busiest topics first, `find -newermt` finds what was written since, and
`stat -c %y` says when the last message arrived; an empty view shows when this mount created the
topic, else the mount time, as directories do. The time comes with the size in the broker's
answer (MQFS_READ's lastStoreTimestamp, docs/FORMATS.md Part 3), checked on the wire too; and
`tail -f` / `tail -F` still follow without "file truncated". Real NameServer, broker and mount."""

import os
import select
import subprocess
import time

import mqproto as mp
from brokers import MQFS_READ, MQFS_RENDER_INFO, create_topic, queue_records
from brokers import broker_factory  # noqa: F401
from brokers import mqfs_cluster as cluster  # noqa: F401
from test_mqfs_read import make_topic, sh



def mtime_ms(path):
    st = os.stat(path)
    assert st.st_ctime_ns == st.st_mtime_ns  # nothing but messages changes a view
    return st.st_mtime_ns // 1000000


def newest(records):
    return max((r.store_ts for r in records), default=None)


def write(path, lines):
    with open(path, "a") as f:
        for line in lines:  # one write() each: the producer spreads them over the queues
            f.write(line + "\n")
            f.flush()


def test_mtime_is_the_newest_store_time(cluster):
    m = cluster
    mount_ms = mtime_ms(m.p("topic"))  # directories: the mount time
    make_topic(m, "Tm", queues=4)  # made at the broker: its creation time is not known here
    assert mtime_ms(m.p("topic", "Tm")) == mount_ms  # empty: the mount time
    write(m.p("topic", "Tm"), ["m%d" % i for i in range(3)])
    recs = queue_records(m.broker.port, "Tm", 4)
    want = newest(r for q in recs.values() for r in q)
    assert want > mount_ms
    assert mtime_ms(m.p("topic", "Tm")) == want
    for q, rs in recs.items():  # each queue file: its own newest message, or the mount time
        got = mtime_ms(m.p("queue", "Tm", "broker-a-%d" % q))
        assert got == (newest(rs) if rs else mount_ms), (q, rs)
    assert any(not rs for rs in recs.values())  # an empty queue was checked too
    # The other views of the same messages: .json, a tag filter, group files (.now, .json).
    os.mkdir(m.p("group", "Gt"))
    for view in (("topic", "Tm.json"), ("topic", "Tm:Nope"), ("group", "Gt", "Tm"),
                 ("group", "Gt", "Tm.now.json")):
        assert mtime_ms(m.p(*view)) == want, view
    # stat(1) and date agree with the broker's store time, to the second.
    r = sh("stat -c %%Y '%s'" % m.p("topic", "Tm"))
    assert int(r.stdout) == want // 1000
    # A new message moves it; the directories stay at the mount time.
    time.sleep(0.01)
    write(m.p("topic", "Tm"), ["later"])
    recs = queue_records(m.broker.port, "Tm", 4)
    later = newest(r for q in recs.values() for r in q)
    assert later > want
    assert mtime_ms(m.p("topic", "Tm")) == later
    assert mtime_ms(m.p("group", "Gt", "Tm.json")) in (want, later)  # attributes cached 1 s
    time.sleep(1.1)
    assert mtime_ms(m.p("group", "Gt", "Tm.json")) == later
    assert mtime_ms(m.p("topic")) == mount_ms and mtime_ms(m.p("queue", "Tm")) == mount_ms


def test_ls_t_and_find_newer(cluster):
    m = cluster
    before = time.time()
    subprocess.run(["touch", m.p("topic", "Empty")], check=True)  # made here: creation time
    after = time.time()
    made = mtime_ms(m.p("topic", "Empty"))
    assert int(before * 1000) <= made <= int(after * 1000) + 1
    time.sleep(0.02)
    for name in ("Old", "Mid", "New"):
        write(m.p("topic", name), [name])
        time.sleep(0.02)
    write(m.p("topic", "Old"), ["old again"])  # Old becomes the busiest
    r = sh("ls -t '%s'" % m.p("topic"))
    assert r.stdout.decode().split() == ["Old", "New", "Mid", "Empty"]
    # find: what was written after Mid's last message.
    mid = mtime_ms(m.p("topic", "Mid"))
    r = sh("find '%s' -type f -newermt @%.3f | sort" % (m.p("topic"), mid / 1000 + 0.0005))
    assert [os.path.basename(p) for p in r.stdout.decode().split()] == ["New", "Old"]
    r = sh("find '%s' -type f -mmin -5 | sort" % m.p("topic"))
    assert [os.path.basename(p) for p in r.stdout.decode().split()] == [
        "Empty", "Mid", "New", "Old"]


def test_tail_f_and_F_follow_without_truncation(cluster):
    m = cluster
    make_topic(m, "Tf", queues=4)
    write(m.p("topic", "Tf"), ["first"])
    path = m.p("topic", "Tf")
    tails = [subprocess.Popen(["tail", opt, "-n", "+1", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for opt in ("-f", "-F")]
    got = [b"", b""]

    def read_until(n, timeout=15):
        deadline = time.monotonic() + timeout
        while min(g.count(b"\n") for g in got) < n and time.monotonic() < deadline:
            for i, t in enumerate(tails):
                if select.select([t.stdout], [], [], 0.1)[0]:
                    got[i] += os.read(t.stdout.fileno(), 65536)

    try:
        read_until(1)
        want = ["first"]
        for i in range(5):  # messages spaced over several of tail's one-second polls
            write(path, ["next%d" % i])
            want.append("next%d" % i)
            read_until(len(want))
            time.sleep(0.3)
        for g in got:
            assert g.decode().splitlines() == want
    finally:
        for t in tails:
            t.kill()
            _, err = t.communicate()
            assert b"truncated" not in err, err


def test_last_store_timestamp_on_the_wire(cluster):
    """MQFS_READ and MQFS_RENDER_INFO answer lastStoreTimestamp: the newest message's store time
    of the view (-1 when empty), for a queue and for the topic view (queueId -1)."""
    m = cluster
    with mp.Client(m.broker.port) as cli:
        create_topic(cli, "Wt", queues=2)
        r = cli.call(MQFS_READ, {"topic": "Wt", "queueId": "-1", "fileOffset": "0",
                                 "maxBytes": "0"})
        assert r.code == mp.SUCCESS and r.ext["lastStoreTimestamp"] == "-1", r
    write(m.p("topic", "Wt"), ["a", "b", "c"])
    recs = queue_records(m.broker.port, "Wt", 2)
    with mp.Client(m.broker.port) as cli:
        r = cli.call(MQFS_READ, {"topic": "Wt", "queueId": "-1", "fileOffset": "0",
                                 "maxBytes": "0"})
        assert r.code == mp.SUCCESS, r
        assert int(r.ext["lastStoreTimestamp"]) == newest(x for q in recs.values() for x in q)
        for q in range(2):
            for code, ext in ((MQFS_READ, {"fileOffset": "0", "maxBytes": "1"}),
                              (MQFS_RENDER_INFO, {})):
                ext.update({"topic": "Wt", "queueId": str(q)})
                r = cli.call(code, ext)
                assert r.code == mp.SUCCESS, r
                assert int(r.ext["lastStoreTimestamp"]) == (newest(recs[q]) or -1), (code, q)

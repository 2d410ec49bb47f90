"""test_faults_disk.py — a broker whose store fills its filesystem (docs/RELIABILITY.md "Disk
full"): the test mounts a small tmpfs, starts a broker on it, stores messages, then fills the
filesystem with a filler file so that the store's next allocation fails with a real ENOSPC from
the kernel (the ratio check, diskMaxUsedSpaceRatio / 90 % refusal, is kept out of the way with a
long cleanResourceInterval; test_disk_ratio_refusal covers that path). Sends must then fail with
SERVICE_NOT_AVAILABLE (14) and a "disk full" remark — and through mqfs with ENOSPC — while reads
keep working, everything acknowledged comes back byte-exact, and sends work again once the
filler is deleted."""

import errno
import os
import shutil
import subprocess
import time

import pytest

import mqproto as mp
from brokers import SERVICE_NOT_AVAILABLE, broker_factory, create_topic, pull, send  # noqa: F401
from mqfs_mount import Mount

TOPIC = "DiskFull"
QUEUES = 1


@pytest.fixture
def small_fs(tmp_path):
    """A 16 MiB tmpfs under tmp_path, unmounted (lazily if still busy) at the end. Listed first
    in a test's arguments so that it is torn down after the daemons."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "smallfs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
    try:
        yield d
    finally:
        if subprocess.run(["umount", str(d)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(path, chunk=1 << 16):
    """Writes a filler file until the filesystem refuses; returns its size."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        block = b"\xa5" * chunk
        while True:
            try:
                n += f.write(block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                if chunk == 512:
                    break
                chunk //= 2
                block = block[:chunk]
    return n


def body(i, size):
    head = b"msg-%06d-" % i
    return (head + bytes((i * 7 + k) & 0xFF for k in range(size)))[:size]


def send_acked(cli, acked, i, size, queue_id=0, **kw):
    """Sends body(i, size), which must be accepted, and records it in acked (by its first 11
    bytes, as pull_all keys what it reads)."""
    r = send(cli, TOPIC, body(i, size), queue_id=queue_id, **kw)
    assert r.code == mp.SUCCESS, r
    acked[body(i, size)[:11]] = body(i, size)


def pull_all(port, topic, queues):
    got = {}
    with mp.Client(port) as cli:
        for q in range(queues):
            off = 0
            while True:
                p = pull(cli, topic, q, off, max_nums=32)
                if p.code != mp.SUCCESS or not p.records:
                    break
                for r in p.records:
                    got[r.body[:11]] = r.body  # decode_records checked magic, size and CRC
                off = p.records[-1].queue_offset + 1
    return got


def small_broker(broker_factory, namesrv, store, **extra):  # noqa: F811
    conf = dict(store=str(store), mappedFileSizeCommitLog=1 << 20,
                mappedFileSizeConsumeQueue=20 * 1024, maxHashSlotNum=512, maxIndexNum=2048,
                cleanResourceInterval=3600000, flushDiskType="SYNC_FLUSH")
    conf.update(extra)
    return broker_factory(namesrv=namesrv, **conf)


def test_disk_full_real_enospc(small_fs, namesrv, broker_factory, tmp_path):  # noqa: F811
    b = small_broker(broker_factory, namesrv, small_fs / "store")
    size = 4096
    acked = {}
    with mp.Client(b.port) as cli:
        create_topic(cli, TOPIC, QUEUES)
        # 190 records of 4 KiB: most of the first 1 MiB commitlog file, and consume-queue
        # entries just short of the end of its first page (204 entries of 20 bytes), so that
        # the messages accepted after the filesystem is full need new consume-queue pages.
        for i in range(190):
            send_acked(cli, acked, i, size, queue_id=i % QUEUES, keys="k%d" % i)
        filler = small_fs / "filler"
        fill(str(filler))
        # Keep sending: the current commitlog file takes records until it must roll, and the
        # roll needs space the filesystem no longer has. Smaller and smaller messages use up
        # the rest of the file, until not even an 11-byte body goes in.
        refused, i = None, 190
        for sz in (size, 2048, 256, 11):
            refused = None
            for _ in range(400):
                i += 1
                r = send(cli, TOPIC, body(i, sz), queue_id=i % QUEUES, keys="k%d" % i)
                if r.code != mp.SUCCESS:
                    refused = r
                    break
                acked[body(i, sz)[:11]] = body(i, sz)
            assert refused is not None, "the broker accepted 400 more messages on a full disk"
            assert refused.code == SERVICE_NOT_AVAILABLE, refused
            assert "disk full" in (refused.remark or ""), refused
        # still refused, and the broker still answers everything else
        r = send(cli, TOPIC, b"again", queue_id=0)
        assert r.code == SERVICE_NOT_AVAILABLE and "disk full" in r.remark, r
    assert b.alive(), b.stderr()[-3000:]
    # Reads keep working and nothing acknowledged is damaged. Records whose consume-queue
    # entry found no space yet are in the commitlog but not visible until there is space.
    got = pull_all(b.port, TOPIC, QUEUES)
    assert len(got) >= 190
    assert all(acked.get(k) == v for k, v in got.items())

    # through mqfs: echo fails with ENOSPC
    os.makedirs(tmp_path / "fs", exist_ok=True)
    m = Mount(tmp_path / "fs", "127.0.0.1:%d" % namesrv.port).start()
    try:
        r = subprocess.run(["bash", "-c", "echo x > %s" % m.p("topic", TOPIC)], capture_output=True,
                           timeout=60)
        assert r.returncode != 0
        assert "No space left on device" in r.stderr.decode(), r.stderr
        # space comes back: sends work again, without restarting anything
        os.unlink(str(filler))
        deadline = time.monotonic() + 10
        while True:
            r = subprocess.run(["bash", "-c", "echo after-free > %s" % m.p("topic", TOPIC)],
                               capture_output=True, timeout=60)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.returncode == 0, r.stderr
    finally:
        m.stop()
    with mp.Client(b.port) as cli:
        send_acked(cli, acked, 999, size)
    got = pull_all(b.port, TOPIC, QUEUES)
    assert b"after-free" in got or any(v == b"after-free" for v in got.values())
    got = {k: v for k, v in got.items() if v != b"after-free"}
    assert got == acked


def test_disk_ratio_refusal(small_fs, namesrv, broker_factory):  # noqa: F811
    """The other path: the retention thread sees the disk past 90 % (diskSpaceWarningLevelRatio)
    and refuses writes before the filesystem itself does — even messages that would still fit
    in the current commitlog file — with the same response; sends resume at the next check after
    space is freed. Everything here sits in one commitlog file, which retention never deletes
    (the newest file is kept), so the forced clean above 85 % has nothing to take."""
    b = small_broker(broker_factory, namesrv, small_fs / "store", cleanResourceInterval=100)
    acked = {}
    with mp.Client(b.port) as cli:
        create_topic(cli, TOPIC, QUEUES)
        for i in range(40):
            send_acked(cli, acked, i, 4096)
        filler = small_fs / "filler"
        fill(str(filler))
        os.truncate(str(filler), os.path.getsize(str(filler)) - (512 << 10))  # 97 % used
        deadline = time.monotonic() + 5
        while True:
            r = send(cli, TOPIC, body(100, 11), queue_id=0)
            if r.code != mp.SUCCESS:
                break
            acked[body(100, 11)[:11]] = body(100, 11)
            assert time.monotonic() < deadline, "writes never refused at 97 % disk usage"
            time.sleep(0.05)
        assert r.code == SERVICE_NOT_AVAILABLE and "disk full" in r.remark, r
        assert pull_all(b.port, TOPIC, QUEUES) == acked
        os.unlink(str(filler))
        deadline = time.monotonic() + 5
        while send(cli, TOPIC, body(200, 11), queue_id=0).code != mp.SUCCESS:
            assert time.monotonic() < deadline, "writes still refused after space was freed"
            time.sleep(0.05)
        acked[body(200, 11)[:11]] = body(200, 11)
    assert pull_all(b.port, TOPIC, QUEUES) == acked



@pytest.mark.parametrize("how", ["sigterm", "sigkill", "undispatched"])
def test_restart_on_full_disk(small_fs, namesrv, broker_factory, daemons, how):  # noqa: F811
    """A broker stopped (or killed) and started again on a filesystem that is full by then: it
    starts, as RocketMQ's does, serves every stored message, refuses sends with 14 "disk full",
    and accepts them again once space is freed — no restart needed. "undispatched": killed
    before the dispatcher had created queue 1's consume-queue file (the test deletes it), so
    recovery itself needs space it does not have: the broker still starts, queue 1 becomes
    readable once there is space, and new sends continue its offsets."""
    from brokers import restart
    b = small_broker(broker_factory, namesrv, small_fs / "store", cleanResourceInterval=100,
                     flushIntervalConsumeQueue=60000)
    acked = {}
    with mp.Client(b.port) as cli:
        create_topic(cli, TOPIC, 2)
        for i in range(100):
            send_acked(cli, acked, i, 2048, queue_id=i % 2)
    if how == "sigterm":
        assert b.stop() == 0
    else:
        b.kill()
    if how == "undispatched":
        shutil.rmtree(str(small_fs / "store" / "consumequeue" / TOPIC / "1"))
    filler = small_fs / "filler"
    fill(str(filler))
    b = restart(daemons, b)
    even = {k: v for k, v in acked.items() if int(k[4:10]) % 2 == 0}
    assert pull_all(b.port, TOPIC, 2) == (even if how == "undispatched" else acked)
    with mp.Client(b.port) as cli:
        r = send(cli, TOPIC, body(500, 11), queue_id=0)
        assert r.code == SERVICE_NOT_AVAILABLE and "disk full" in r.remark, r
        os.unlink(str(filler))
        deadline = time.monotonic() + 5
        while True:
            r = send(cli, TOPIC, body(501, 2048), queue_id=1)
            if r.code == mp.SUCCESS:
                break
            assert r.code == SERVICE_NOT_AVAILABLE, r
            assert time.monotonic() < deadline, "writes still refused after space was freed"
            time.sleep(0.05)
        assert int(r.ext["queueOffset"]) == 50  # after the 50 messages queue 1 had
        acked[body(501, 2048)[:11]] = body(501, 2048)
    assert pull_all(b.port, TOPIC, 2) == acked
    assert b.alive()


def test_restart_keeps_commitlog_reserved(small_fs, namesrv, broker_factory, daemons):  # noqa: F811
    """Recovery cuts the commitlog after its last valid record; the rest of the file must keep
    its reserved blocks. (It used to drop them — truncate and extend — so after a restart the
    next appends wrote through the mapping into holes, and once something else had taken the
    space the broker died of SIGBUS.) Here the disk has room at the restart, then fills up; the
    appends that fit in the current commitlog file must still succeed, the broker must live."""
    from brokers import restart
    b = small_broker(broker_factory, namesrv, small_fs / "store")
    acked = {}
    with mp.Client(b.port) as cli:
        create_topic(cli, TOPIC, QUEUES)
        for i in range(20):
            send_acked(cli, acked, i, 2048)
    assert b.stop() == 0
    filler = small_fs / "filler"
    fill(str(filler))
    os.truncate(str(filler), os.path.getsize(str(filler)) - (4 << 20))  # 4 MiB free
    b = restart(daemons, b)  # the retention check at start sees ~75 %: writes accepted
    fill(str(small_fs / "filler2"))
    with mp.Client(b.port) as cli:
        for i in range(20, 320):  # 600 KiB more: still inside the first commitlog file
            r = send(cli, TOPIC, body(i, 2048), queue_id=0)
            assert r.code == mp.SUCCESS, (r, b.stderr()[-2000:])
            acked[body(i, 2048)[:11]] = body(i, 2048)
    assert b.alive(), b.stderr()[-3000:]
    assert pull_all(b.port, TOPIC, QUEUES) == acked

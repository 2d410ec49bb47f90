"""test_faults_input.py — sends whose bytes are legal frames but hostile content (docs/RELIABILITY.md
"Bad input"): properties that crash recovery would reject, and compressed bodies that claim or
inflate to huge sizes. Each is either refused with a clear answer or stored and served, and a
SIGKILL and restart afterwards loses no acknowledged message and serves the same views."""

import struct
import time
import zlib

import mqproto as mp
import mqrecord as mr
from brokers import MQFS_READ, MQFS_RENDER_INFO, SEND_BATCH_MESSAGE, SEND_MESSAGE_V2
from brokers import broker_factory, create_topic, queue_records, restart, send  # noqa: F401

MESSAGE_ILLEGAL = 13


def send_raw(cli, topic, body, props, sysflag=0):
    ext = {"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": str(sysflag),
           "g": str(int(time.time() * 1000)), "h": "0", "i": props, "j": "0", "k": "false"}
    return cli.call(SEND_MESSAGE_V2, ext, body)


def send_batch(cli, topic, entries):
    ext = {"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0",
           "g": str(int(time.time() * 1000)), "h": "0", "i": mr.props(WAIT="true"), "j": "0",
           "k": "false", "m": "true"}
    return cli.call(SEND_BATCH_MESSAGE, ext, mr.batch_body(entries))


def test_malformed_properties_refused_nothing_lost(broker_factory, daemons):  # noqa: F811
    """Properties crash recovery would reject (no 0x01, an empty name, a NUL byte) were once
    acknowledged, and the next restart cut the commitlog there with every later message. A
    pair with an empty name in an otherwise well-formed string (ali-ons resends one) is
    dropped rather than refused, as RocketMQ's parser drops it."""
    b = broker_factory()
    acked = []
    with mp.Client(b.port) as cli:
        create_topic(cli, "PropsA", queues=1)
        create_topic(cli, "PropsB", queues=1)
        for i in range(20):
            assert send(cli, "PropsB", b"before-%d" % i).code == mp.SUCCESS
            acked.append(b"before-%d" % i)
        for bad in ("noseparators", "\x02" * 100, "K\x01v\x02NOVALUE"):
            r = send_raw(cli, "PropsA", b"bad", bad)
            assert r.code == MESSAGE_ILLEGAL, (bad, r)
            assert "malformed message properties" in r.remark
        r = send_batch(cli, "PropsA", [(b"ok", "K\x01v\x02"), (b"nul", "K\x01v\x00v\x02")])
        assert r.code == MESSAGE_ILLEGAL, r  # a batch is one message: nothing of it is stored
        r = send_raw(cli, "PropsA", b"tolerated", "TAGS\x01t\x02KEYS\x01k")  # no final 0x02
        assert r.code == mp.SUCCESS, r
        for empty_name in ("\x01v\x02", "A\x01b\x02\x01c\x02"):
            assert send_raw(cli, "PropsB", b"after-e", empty_name).code == mp.SUCCESS
            acked.append(b"after-e")
        for i in range(20):
            assert send(cli, "PropsB", b"after-%d" % i).code == mp.SUCCESS
            acked.append(b"after-%d" % i)
        assert [r.body for r in queue_records(b.port, "PropsA", 1)[0]] == [b"tolerated"]
    b.kill()
    b = restart(daemons, b)
    recs = queue_records(b.port, "PropsB", 1)[0]
    assert [r.body for r in recs] == acked
    assert [r.props for r in recs if r.body == b"after-e"] == [{}, {"A": "b"}]
    assert [r.body for r in queue_records(b.port, "PropsA", 1)[0]] == [b"tolerated"]


def zstd_raw(data, claim=None):
    """A zstd frame holding data in one raw block, stating `claim` (default len(data)) as its
    content size in an 8-byte field."""
    claim = len(data) if claim is None else claim
    return (struct.pack("<I", 0xFD2FB528) + bytes([0xE0]) + struct.pack("<Q", claim) +
            struct.pack("<I", 1 | (len(data) << 3))[:3] + data)


def rendered(port, topic):
    with mp.Client(port) as cli:
        info = cli.call(MQFS_RENDER_INFO, {"topic": topic, "queueId": "0"})
        assert info.code == mp.SUCCESS, info
        r = cli.call(MQFS_READ, {"topic": topic, "queueId": "0", "fileOffset": "0",
                                 "maxBytes": str(8 << 20)})
        assert r.code == mp.SUCCESS, r
        assert int(info.ext["size"]) == len(r.body), "index and bytes disagree"
        return r.body


def test_compressed_bodies_claiming_huge_sizes(broker_factory, daemons):  # noqa: F811
    """A zstd frame that claims 2^63-1 bytes once crashed the dispatcher (and every restart);
    claims and zlib bombs past STORE_RENDER_MAX (16 MiB) are shown as stored, within it as
    uncompressed, and counting never costs more than that."""
    zstd, zlib_flag = mr.SYSFLAG_COMPRESSED | mr.SYSFLAG_COMPRESS_ZSTD, mr.SYSFLAG_COMPRESSED
    bomb = zlib.compress(bytes(64 << 20), 9)  # 64 MiB of zeros in ~64 KB
    cases = [  # (body, sysflag, rendering)
        (b"plain", 0, b"plain"),
        (zstd_raw(b"hello zstd"), zstd, b"hello zstd"),
        (zstd_raw(b"", 0x7FFFFFFFFFFFFFFF), zstd, None),  # as stored
        (zstd_raw(b"", 1 << 62), zstd, None),
        (zstd_raw(b"", 1 << 62), zstd, None),  # two: their sum once overflowed
        (zstd_raw(b"", 1 << 30), zstd, None),
        (zstd_raw(b"short", 1000), zstd, bytes(1000)),  # sized, undecodable: zeros, size kept
        (zlib.compress(b"hello zlib"), zlib_flag, b"hello zlib"),
        (zlib.compress(bytes(1 << 20)), zlib_flag, bytes(1 << 20)),
        (bomb, zlib_flag, None),
        (b"after", 0, b"after"),
    ]
    b = broker_factory()
    with mp.Client(b.port, timeout=10) as cli:
        create_topic(cli, "Zc", queues=1)
        for body, flag, _ in cases:
            t0 = time.monotonic()
            r = send_raw(cli, "Zc", body, mr.props(WAIT="true"), sysflag=flag)
            assert r.code == mp.SUCCESS, r
            assert time.monotonic() - t0 < 5, "a send answered only after %.1f s" % (
                time.monotonic() - t0)
    view = b"".join((body if out is None else out) + b"\n" for body, _, out in cases)
    assert rendered(b.port, "Zc") == view
    b.kill()
    b = restart(daemons, b)  # recovery dispatches them all again
    assert rendered(b.port, "Zc") == view
    assert [r.raw_body for r in queue_records(b.port, "Zc", 1)[0]] == [c[0] for c in cases]

"""mqrecord.py — RocketMQ message bytes in Python, written from the format (docs/FORMATS.md
§1.1, MessageDecoder.java), independently of our C code: decoding commitlog records (what pull
and query responses carry), encoding SEND_BATCH_MESSAGE bodies and message properties."""

import struct
import zlib

MAGIC = 0xDAA320A7
SYSFLAG_COMPRESSED = 0x1
SYSFLAG_BORNHOST_V6 = 0x10
SYSFLAG_STOREHOST_V6 = 0x20
SYSFLAG_COMPRESS_MASK = 0x700
SYSFLAG_COMPRESS_ZSTD = 0x200
SYSFLAG_COMPRESS_ZLIB = 0x300


def props(**kv):
    """name\\x01value\\x02 ... as the properties string of a header or record."""
    return "".join("%s\x01%s\x02" % (k, v) for k, v in kv.items())


def parse_props(s):
    out = {}
    for pair in s.split("\x02"):
        if pair:
            k, _, v = pair.partition("\x01")
            out[k] = v
    return out


class Record:
    def __repr__(self):
        return "Record(%s q%d@%d phys %d %r)" % (self.topic, self.queue_id, self.queue_offset,
                                                  self.phys_offset, self.body[:40])


def decode_records(data):
    """All records of a pull/query body, checking magic, CRC and TOTALSIZE."""
    out = []
    pos = 0
    while pos < len(data):
        total, magic, crc, qid, flag, qoff, phys, sysflag, born_ts = struct.unpack_from(
            ">iIIiiqqiq", data, pos)
        assert magic == MAGIC, "bad magic %x at %d" % (magic, pos)
        p = pos + 48
        born_len = 16 if sysflag & SYSFLAG_BORNHOST_V6 else 4
        born_host = data[p:p + born_len]
        (born_port,) = struct.unpack_from(">i", data, p + born_len)
        p += born_len + 4
        (store_ts,) = struct.unpack_from(">q", data, p)
        p += 8
        store_len = 16 if sysflag & SYSFLAG_STOREHOST_V6 else 4
        store_host = data[p:p + store_len]
        (store_port,) = struct.unpack_from(">i", data, p + store_len)
        p += store_len + 4
        reconsume, prepared, blen = struct.unpack_from(">iqi", data, p)
        p += 16
        body = data[p:p + blen]
        p += blen
        tlen = data[p]
        topic = data[p + 1:p + 1 + tlen].decode()
        p += 1 + tlen
        (plen,) = struct.unpack_from(">h", data, p)
        properties = data[p + 2:p + 2 + plen].decode()
        p += 2 + plen
        assert p - pos == total, "TOTALSIZE %d but the fields span %d" % (total, p - pos)
        assert zlib.crc32(body) & 0x7FFFFFFF == crc, "body CRC mismatch"
        r = Record()
        r.queue_id, r.flag, r.queue_offset, r.phys_offset = qid, flag, qoff, phys
        r.sysflag, r.born_ts, r.store_ts, r.reconsume_times = sysflag, born_ts, store_ts, reconsume
        r.prepared_tx_offset = prepared
        r.born_host, r.born_port, r.store_host, r.store_port = born_host, born_port, store_host, store_port
        r.topic, r.props = topic, parse_props(properties)
        # 4.x: COMPRESSED means zlib; 5.x adds the type in bits 8-10 (ZLIB 0x300, ZSTD 0x200,
        # LZ4 0x100). Bodies we cannot inflate here stay as stored (r.raw_body either way).
        r.raw_body = body
        ctype = sysflag & SYSFLAG_COMPRESS_MASK
        if sysflag & SYSFLAG_COMPRESSED and ctype in (0, SYSFLAG_COMPRESS_ZLIB):
            r.body = zlib.decompress(body)
        else:
            r.body = body
        r.msg_id = (store_host + struct.pack(">iq", store_port, phys)).hex().upper()
        out.append(r)
        pos += total
    return out


def batch_body(messages):
    """SEND_BATCH_MESSAGE body from [(body bytes, properties str)]."""
    out = b""
    for body, prop in messages:
        pb = prop.encode()
        total = 22 + len(body) + len(pb)
        out += struct.pack(">iiiii", total, 0, 0, 0, len(body)) + body + struct.pack(">h", len(pb)) + pb
    return out

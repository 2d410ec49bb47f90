"""mqproto.py — an independent encoder/decoder of RocketMQ remoting frames, written from the
protocol description (RemotingCommand.java, RocketMQSerializable.java; docs/FORMATS.md Part 2),
not from our C code, plus a tiny synchronous client. Used by the end-to-end tests the way
mosquitto's test suite uses mosq_test.py.

Frame: int32 length (= 4 + headerLen + bodyLen) | int32 (serializeType << 24 | headerLen) |
header | body, big-endian. serializeType 0 = JSON header, 1 = ROCKETMQ binary header.
"""

import itertools
import json
import re
import socket
import struct

JSON = 0
ROCKETMQ = 1

FLAG_RESPONSE = 1
FLAG_ONEWAY = 2

LANGUAGES = ["JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP",
             "GO", "PHP", "OMS"]

# RequestCode.java
PUT_KV_CONFIG = 100
GET_KV_CONFIG = 101
DELETE_KV_CONFIG = 102
REGISTER_BROKER = 103
UNREGISTER_BROKER = 104
GET_ROUTEINFO_BY_TOPIC = 105
GET_BROKER_CLUSTER_INFO = 106
GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206
DELETE_TOPIC_IN_NAMESRV = 216
GET_KV_CONFIG_BY_VALUE = 217
GET_KVLIST_BY_NAMESPACE = 219
GET_TOPICS_BY_CLUSTER = 224
QUERY_DATA_VERSION = 322

# ResponseCode.java / RemotingSysResponseCode.java
SUCCESS = 0
SYSTEM_ERROR = 1
REQUEST_CODE_NOT_SUPPORTED = 3
TOPIC_NOT_EXIST = 17
QUERY_NOT_FOUND = 22


class Command:
    """A RemotingCommand: header fields, extFields (str -> str) and a body (bytes)."""

    def __init__(self, code=0, ext=None, body=b"", opaque=0, flag=0, remark=None,
                 language="JAVA", version=399):
        self.code = code
        self.ext = dict(ext or {})
        self.body = body or b""
        self.opaque = opaque
        self.flag = flag
        self.remark = remark
        self.language = language
        self.version = version
        self.serialize = None  # set by decode

    @property
    def is_response(self):
        return bool(self.flag & FLAG_RESPONSE)

    def json_body(self):
        return loads_fastjson(self.body)

    def __repr__(self):
        return "Command(code=%r, opaque=%r, flag=%r, remark=%r, ext=%r, body=%d bytes)" % (
            self.code, self.opaque, self.flag, self.remark, self.ext, len(self.body))


def _json_header(cmd):
    h = {"code": cmd.code, "language": cmd.language, "version": cmd.version,
         "opaque": cmd.opaque, "flag": cmd.flag, "serializeTypeCurrentRPC": "JSON"}
    if cmd.remark is not None:
        h["remark"] = cmd.remark
    if cmd.ext:
        h["extFields"] = {str(k): str(v) for k, v in cmd.ext.items()}
    return json.dumps(h, separators=(",", ":")).encode()


def _binary_header(cmd):
    lang = LANGUAGES.index(cmd.language) if cmd.language in LANGUAGES else 7
    remark = cmd.remark.encode() if cmd.remark is not None else b""
    ext = b""
    for k, v in cmd.ext.items():
        kb, vb = str(k).encode(), str(v).encode()
        ext += struct.pack(">h", len(kb)) + kb + struct.pack(">i", len(vb)) + vb
    return (struct.pack(">hbhii", cmd.code, lang, cmd.version, cmd.opaque, cmd.flag)
            + struct.pack(">i", len(remark)) + remark + struct.pack(">i", len(ext)) + ext)


def encode(cmd, serialize=JSON):
    """Encodes a whole frame."""
    header = _json_header(cmd) if serialize == JSON else _binary_header(cmd)
    return (struct.pack(">ii", 4 + len(header) + len(cmd.body), serialize << 24 | len(header))
            + header + cmd.body)


class ProtocolError(Exception):
    pass


def _decode_binary_header(h):
    if len(h) < 17:
        raise ProtocolError("binary header too short")
    code, lang, version, opaque, flag, rlen = struct.unpack(">hbhiii", h[:17])
    pos = 17
    if rlen < 0 or rlen > len(h) - pos:
        raise ProtocolError("bad remark length")
    remark = h[pos:pos + rlen].decode() if rlen else None
    pos += rlen
    (elen,) = struct.unpack(">i", h[pos:pos + 4])
    pos += 4
    end = pos + elen
    if elen < 0 or end > len(h):
        raise ProtocolError("bad extFields length")
    ext = {}
    while pos < end:
        (kl,) = struct.unpack(">h", h[pos:pos + 2])
        k = h[pos + 2:pos + 2 + kl].decode()
        pos += 2 + kl
        (vl,) = struct.unpack(">i", h[pos:pos + 4])
        ext[k] = h[pos + 4:pos + 4 + vl].decode()
        pos += 4 + vl
    cmd = Command(code, ext, opaque=opaque, flag=flag, remark=remark,
                  language=LANGUAGES[lang] if 0 <= lang < len(LANGUAGES) else "OTHER",
                  version=version)
    return cmd


def _decode_json_header(h):
    d = json.loads(h.decode())
    cmd = Command(d.get("code", 0), {k: str(v) for k, v in (d.get("extFields") or {}).items()},
                  opaque=d.get("opaque", 0), flag=d.get("flag", 0), remark=d.get("remark"),
                  language=d.get("language", "JAVA"), version=d.get("version", 0))
    return cmd


def decode(frame):
    """Decodes one whole frame (length field included)."""
    if len(frame) < 8:
        raise ProtocolError("frame too short")
    length, x = struct.unpack(">ii", frame[:8])
    if length != len(frame) - 4:
        raise ProtocolError("length field %d, frame %d" % (length, len(frame)))
    ser, hlen = (x >> 24) & 0xFF, x & 0xFFFFFF
    if hlen > length - 4:
        raise ProtocolError("header longer than frame")
    header = frame[8:8 + hlen]
    if ser == JSON:
        cmd = _decode_json_header(header)
    elif ser == ROCKETMQ:
        cmd = _decode_binary_header(header)
    else:
        raise ProtocolError("serialize type %d" % ser)
    cmd.serialize = ser
    cmd.body = frame[8 + hlen:]
    return cmd


_BARE_KEY = re.compile(r'([{,]\s*)(-?\d+)(\s*:)')


def loads_fastjson(data):
    """Parses a JSON body as fastjson may write it (integer map keys without quotes)."""
    text = data.decode() if isinstance(data, (bytes, bytearray)) else data
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(_BARE_KEY.sub(r'\1"\2"\3', text))


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(sock):
    head = recv_exact(sock, 4)
    (length,) = struct.unpack(">i", head)
    return decode(head + recv_exact(sock, length))


class Client:
    """A tiny synchronous client: one socket, one call at a time."""

    _opaque = itertools.count(1)

    def __init__(self, port, host="127.0.0.1", serialize=JSON, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.serialize = serialize

    def call(self, code, ext=None, body=b"", serialize=None):
        cmd = Command(code, ext, body, opaque=next(self._opaque))
        self.sock.sendall(encode(cmd, self.serialize if serialize is None else serialize))
        while True:
            resp = read_frame(self.sock)
            if resp.is_response and resp.opaque == cmd.opaque:
                return resp

    def oneway(self, code, ext=None, body=b""):
        cmd = Command(code, ext, body, opaque=next(self._opaque), flag=FLAG_ONEWAY)
        self.sock.sendall(encode(cmd, self.serialize))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def register_body(topics, counter=1, timestamp=1700000000000):
    """RegisterBrokerBody JSON: {topic: (read, write, perm)} -> bytes."""
    table = {t: {"topicName": t, "readQueueNums": r, "writeQueueNums": w, "perm": p,
                 "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0, "order": False}
             for t, (r, w, p) in topics.items()}
    body = {"topicConfigSerializeWrapper": {"topicConfigTable": table,
                                            "dataVersion": {"timestamp": timestamp,
                                                            "counter": counter}},
            "filterServerList": []}
    return json.dumps(body).encode()

"""fake_cluster.py — a stand-in NameServer + broker on one port, written independently of the C
code from RocketMQ's remoting format (docs/FORMATS.md Part 2), so mqfs's send path can be tested
end to end before the real broker stores messages.

It answers GET_ROUTEINFO_BY_TOPIC (105: every topic has 4 queues on broker-a at this port),
GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206), GET_BROKER_CLUSTER_INFO (106), SEND_MESSAGE_V2 (310)
and SEND_BATCH_MESSAGE (320), records every message it accepts, and can be told to refuse sends
(`fail_with = (code, remark)`).

Frames: int32 length, int32 (serialize type << 24 | header length), header, body. Requests may
carry a JSON header (type 0: {"code", "opaque", "extFields", ...}); responses go out binary
("ROCKETMQ", type 1): code i16, language u8, version i16, opaque i32, flag i32, remark (i32 length
+ bytes), extFields (i32 length + entries of u16 key length, key, i32 value length, value).
"""

import json
import socket
import struct
import threading
import time


def decode_header(h):
    code, lang, version, opaque, flag, rlen = struct.unpack_from(">hBhiii", h, 0)
    pos = 17
    remark = h[pos:pos + rlen].decode()
    pos += rlen
    (elen,) = struct.unpack_from(">i", h, pos)
    pos += 4
    end = pos + elen
    ext = {}
    while pos < end:
        (kl,) = struct.unpack_from(">H", h, pos)
        k = h[pos + 2:pos + 2 + kl].decode()
        pos += 2 + kl
        (vl,) = struct.unpack_from(">i", h, pos)
        ext[k] = h[pos + 4:pos + 4 + vl].decode("utf-8", "surrogateescape")
        pos += 4 + vl
    return {"code": code, "opaque": opaque, "flag": flag, "remark": remark, "ext": ext}


def encode_response(opaque, code, ext=None, body=b"", remark=""):
    e = b""
    for k, v in (ext or {}).items():
        kb, vb = k.encode(), str(v).encode()
        e += struct.pack(">H", len(kb)) + kb + struct.pack(">i", len(vb)) + vb
    rb = remark.encode()
    h = struct.pack(">hBhiii", code, 0, 399, opaque, 1, len(rb)) + rb + struct.pack(">i", len(e)) + e
    return struct.pack(">ii", 4 + len(h) + len(body), (1 << 24) | len(h)) + h + body


def parse_props(s):
    """"name\\x01value\\x02..." -> dict"""
    out = {}
    for item in s.split("\x02"):
        if item:
            k, _, v = item.partition("\x01")
            out[k] = v
    return out


def decode_batch(body):
    """SEND_BATCH_MESSAGE body -> [(body bytes, properties dict)]"""
    out, pos = [], 0
    while pos < len(body):
        total, _magic, _crc, _flag, blen = struct.unpack_from(">iiiii", body, pos)
        b = body[pos + 20:pos + 20 + blen]
        (plen,) = struct.unpack_from(">h", body, pos + 20 + blen)
        props = body[pos + 22 + blen:pos + 22 + blen + plen].decode("utf-8", "surrogateescape")
        out.append((b, parse_props(props)))
        pos += total
    return out


class FakeCluster:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.messages = []  # (topic, body bytes, properties dict, request code)
        self.requests = []  # (code, number of messages)
        self.topics = ["TBW102", "C", "broker-a"]
        self.fail_with = None  # (code, remark) for sends
        self.send_delay = 0.0  # seconds a send waits before it is accepted
        self.sends_started = 0
        self._stop = False
        self._conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _recv(self, c, n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, c):
        try:
            while True:
                (length,) = struct.unpack(">i", self._recv(c, 4))
                frame = self._recv(c, length)
                (st,) = struct.unpack_from(">i", frame, 0)
                ser, hlen = st >> 24, st & 0xFFFFFF
                if ser == 0:  # JSON header
                    h = json.loads(frame[4:4 + hlen])
                    req = {"code": h["code"], "opaque": h.get("opaque", 0),
                           "flag": h.get("flag", 0), "remark": h.get("remark", ""),
                           "ext": h.get("extFields") or {}}
                else:
                    req = decode_header(frame[4:4 + hlen])
                body = frame[4 + hlen:]
                c.sendall(self._handle(req, body))
        except (EOFError, OSError):
            pass

    def _handle(self, req, body):
        code, op, ext = req["code"], req["opaque"], req["ext"]
        if code == 105:
            route = {"queueDatas": [{"brokerName": "broker-a", "readQueueNums": 4,
                                     "writeQueueNums": 4, "perm": 6, "topicSysFlag": 0}],
                     "brokerDatas": [{"cluster": "C", "brokerName": "broker-a",
                                      "brokerAddrs": {"0": self.addr}}]}
            return encode_response(op, 0, body=json.dumps(route).encode())
        if code == 206:
            return encode_response(op, 0, body=json.dumps({"topicList": self.topics}).encode())
        if code == 106:
            info = {"brokerAddrTable": {"broker-a": {"cluster": "C", "brokerName": "broker-a",
                                                     "brokerAddrs": {"0": self.addr}}},
                    "clusterAddrTable": {"C": ["broker-a"]}}
            return encode_response(op, 0, body=json.dumps(info).encode())
        if code in (310, 320):
            self.sends_started += 1
            if self.send_delay:
                time.sleep(self.send_delay)
            with self.lock:
                if self.fail_with:
                    return encode_response(op, self.fail_with[0], remark=self.fail_with[1])
                topic = ext["b"]
                if code == 320:
                    msgs = decode_batch(body)
                else:
                    msgs = [(body, parse_props(ext.get("i", "")))]
                for b, props in msgs:
                    self.messages.append((topic, b, props, code))
                self.requests.append((code, len(msgs)))
                if topic not in self.topics:
                    self.topics.append(topic)
            return encode_response(op, 0, ext={"msgId": "0" * 32, "queueId": ext.get("e", 0),
                                               "queueOffset": len(self.messages)})
        return encode_response(op, 3, remark="code %d not supported" % code)

    def bodies(self, topic=None):
        with self.lock:
            return [b for t, b, _, _ in self.messages if topic is None or t == topic]

    def close(self):
        self._stop = True
        self._thread.join()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.sock.close()

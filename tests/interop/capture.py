#!/usr/bin/env python3
"""capture.py: a tiny in-memory stand-in for a RocketMQ NameServer + broker that LOGS every frame.

Purpose: observe exactly what a stock client (ali-ons, see produce.js / consume.js) puts on the
wire, and check that the responses documented in docs/INTEROP.md are enough to drive it through
a whole producer and push-consumer life (route, heartbeat, rebalance, send, pull, offsets,
send-back/retry, unregister). It is a test tool, not a broker: one broker, memory only, no
delay levels (send-back goes straight to %RETRY%<group>), no persistence.

It binds 127.0.0.1 only and exits by itself after --duration seconds (default 120).

Output: one JSON object per line (to --log, default stdout), for every frame in both directions:
  {"t": ms since start, "srv": "namesrv"|"broker", "dir": "in"|"out", "peer": "ip:port",
   "code": 105, "name": "GET_ROUTEINFO_BY_TOPIC", "flag": 0, "opaque": 3, "language": "JAVA",
   "version": 121, "serialize": "JSON", "remark": ..., "extFields": {...}, "bodyLen": n,
   "body": <parsed JSON, or a short hex/text preview>}
plus {"event": ...} lines for listen/start/stop.

Usage:
  python3 capture.py [--namesrv-port 9876] [--broker-port 10911] [--topic T ...]
                     [--queues 4] [--duration 120] [--log FILE] [--fastjson-keys]
  --topic may be repeated; those topics exist from the start (the NameServer answers
  TOPIC_NOT_EXIST (17) for any other topic, like RocketMQ does). %RETRY%<group> is created, with
  one queue, when a consumer group first heartbeats (as RocketMQ's broker does).
  --fastjson-keys writes brokerAddrs with unquoted integer keys ({0:"..."}) as Java's fastjson does.
  --refuse CODE answers REQUEST_CODE_NOT_SUPPORTED (3) to that request code, to watch fallbacks.
  --query-not-found, --retry-delay-ms: see --help.
"""
import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import time
import zlib

CODES = {
    10: "SEND_MESSAGE", 11: "PULL_MESSAGE", 12: "QUERY_MESSAGE", 14: "QUERY_CONSUMER_OFFSET",
    15: "UPDATE_CONSUMER_OFFSET", 17: "UPDATE_AND_CREATE_TOPIC", 29: "SEARCH_OFFSET_BY_TIMESTAMP",
    30: "GET_MAX_OFFSET", 31: "GET_MIN_OFFSET", 33: "VIEW_MESSAGE_BY_ID", 34: "HEART_BEAT",
    35: "UNREGISTER_CLIENT", 36: "CONSUMER_SEND_MSG_BACK", 38: "GET_CONSUMER_LIST_BY_GROUP",
    40: "NOTIFY_CONSUMER_IDS_CHANGED", 41: "LOCK_BATCH_MQ", 42: "UNLOCK_BATCH_MQ",
    101: "GET_KV_CONFIG", 103: "REGISTER_BROKER", 105: "GET_ROUTEINFO_BY_TOPIC",
    106: "GET_BROKER_CLUSTER_INFO", 217: "GET_KV_CONFIG_BY_VALUE", 310: "SEND_MESSAGE_V2",
    320: "SEND_BATCH_MESSAGE",
}
SUCCESS, SYSTEM_ERROR, NOT_SUPPORTED = 0, 1, 3
TOPIC_NOT_EXIST, PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY = 17, 19, 20
PULL_OFFSET_MOVED, QUERY_NOT_FOUND = 21, 22
MAGIC = 0xDAA320A7
BROKER_NAME = "broker-a"
CLUSTER = "DefaultCluster"

T0 = time.monotonic()
LOG = sys.stdout


def log(obj):
    obj = dict(t=int((time.monotonic() - T0) * 1000), **obj)
    LOG.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
    LOG.flush()


def preview_body(body):
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except Exception:
        pass
    try:
        text = body.decode("utf-8")
        if text.isprintable():
            return text[:200]
    except UnicodeDecodeError:
        pass
    return "hex:" + body[:64].hex()


def decode_frame(data):
    """data = everything after the 4-byte total length."""
    word = struct.unpack(">I", data[:4])[0]
    stype, hlen = word >> 24, word & 0xFFFFFF
    header = data[4:4 + hlen]
    body = data[4 + hlen:]
    if stype != 0:
        raise ValueError("serialize type %d (binary ROCKETMQ headers) not handled" % stype)
    return json.loads(header.decode("utf-8")), body


def encode_frame(header, body=b""):
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack(">II", 4 + len(h) + len(body), len(h)) + h + body


def ext_str(ext, key, default=None):
    v = ext.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def ext_int(ext, key, default=0):
    v = ext.get(key)
    if v is None or v == "":
        return default
    return int(v)


def parse_props(s):
    out = {}
    for item in s.split("\x02"):
        if "\x01" in item:
            k, v = item.split("\x01", 1)
            out[k] = v
    return out


def props_str(props):
    return "".join("%s\x01%s\x02" % (k, v) for k, v in props.items())


def ip4(hostport):
    host, port = hostport
    try:
        b = socket.inet_aton(host)
    except OSError:
        b = socket.inet_aton("127.0.0.1")
    return b + struct.pack(">i", port)


class Store:
    """commitlog (list of (phys offset, record bytes, meta)) + consume queues in memory."""

    def __init__(self, store_host):
        self.store_host = store_host
        self.phys = 0
        self.records = {}            # phys offset -> (bytes, meta)
        self.cq = {}                 # (topic, qid) -> [phys offsets]
        self.offsets = {}            # (group, topic, qid) -> committed offset
        self.cond = asyncio.Condition()

    def put(self, topic, qid, body, props, flag, sysflag, born_ts, born_host, reconsume):
        q = self.cq.setdefault((topic, qid), [])
        qoff = len(q)
        pb = props_str(props).encode("utf-8")
        tb = topic.encode("utf-8")
        fixed = struct.pack(">iIiii", 0, MAGIC, zlib.crc32(body) & 0x7FFFFFFF, qid, flag)
        fixed += struct.pack(">qqiq", qoff, self.phys, sysflag, born_ts)
        fixed += ip4(born_host) + struct.pack(">q", int(time.time() * 1000)) + ip4(self.store_host)
        fixed += struct.pack(">iq", reconsume, 0)
        rec = fixed + struct.pack(">i", len(body)) + body + struct.pack(">B", len(tb)) + tb
        rec += struct.pack(">h", len(pb)) + pb
        rec = struct.pack(">i", len(rec)) + rec[4:]
        meta = dict(topic=topic, qid=qid, qoff=qoff, body=body, props=props, flag=flag,
                    sysflag=sysflag, reconsume=reconsume, phys=self.phys)
        self.records[self.phys] = (rec, meta)
        q.append(self.phys)
        msg_id = (ip4(self.store_host) + struct.pack(">q", self.phys)).hex().upper()
        self.phys += len(rec)
        return msg_id, qoff


class Server:
    def __init__(self, args):
        self.args = args
        self.broker_addr = "127.0.0.1:%d" % args.broker_port
        self.topics = {t: args.queues for t in args.topic}
        self.groups = {}             # group -> {clientID: last heartbeat}
        self.store = None

    # ---------------------------------------------------------------- plumbing
    async def serve(self, reader, writer, srv):
        peer = writer.get_extra_info("peername")
        peer_s = "%s:%d" % (peer[0], peer[1])
        tasks = set()
        try:
            while True:
                raw = await reader.readexactly(4)
                n = struct.unpack(">i", raw)[0]
                data = await reader.readexactly(n)
                try:
                    hdr, body = decode_frame(data)
                except Exception as e:  # noqa: BLE001
                    log(dict(srv=srv, dir="in", peer=peer_s, error=str(e), hex=data[:64].hex()))
                    continue
                log(dict(srv=srv, dir="in", peer=peer_s, code=hdr.get("code"),
                         name=CODES.get(hdr.get("code"), "?"), flag=hdr.get("flag"),
                         opaque=hdr.get("opaque"), language=hdr.get("language"),
                         version=hdr.get("version"), serialize="JSON",
                         remark=hdr.get("remark"), extFields=hdr.get("extFields"),
                         headerKeys=sorted(hdr.keys()), bodyLen=len(body),
                         body=preview_body(body) if hdr.get("code") not in (310, 10) else
                         body[:200].decode("utf-8", "replace")))
                t = asyncio.ensure_future(self.handle(hdr, body, writer, srv, peer, peer_s))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            log(dict(event="disconnect", srv=srv, peer=peer_s))
            for t in tasks:
                t.cancel()
            writer.close()

    async def handle(self, hdr, body, writer, srv, peer, peer_s):
        code, ext = hdr.get("code"), hdr.get("extFields") or {}
        oneway = bool(hdr.get("flag", 0) & 2)
        fn = getattr(self, "%s_%d" % (srv, code), None)
        if fn is None or code in self.args.refuse:
            rcode, rext, rbody, remark = NOT_SUPPORTED, {}, b"", "request code %s not supported" % code
        else:
            rcode, rext, rbody, remark = await fn(ext, body, peer)
        if oneway:
            return
        resp = {"code": rcode, "extFields": {k: str(v) for k, v in rext.items()},
                "flag": 1, "language": "JAVA", "opaque": hdr.get("opaque"),
                "serializeTypeCurrentRPC": "JSON", "version": 399}
        if remark is not None:
            resp["remark"] = remark
        log(dict(srv=srv, dir="out", peer=peer_s, code=rcode, opaque=hdr.get("opaque"),
                 re=CODES.get(code, code), remark=remark, extFields=resp["extFields"],
                 bodyLen=len(rbody), body=preview_body(rbody) if code != 11 else
                 "%d bytes of commitlog records" % len(rbody)))
        if not writer.is_closing():
            writer.write(encode_frame(resp, rbody))

    # ---------------------------------------------------------------- NameServer
    async def namesrv_105(self, ext, body, peer):  # GET_ROUTEINFO_BY_TOPIC
        topic = ext_str(ext, "topic")
        if topic not in self.topics:
            return TOPIC_NOT_EXIST, {}, b"", "No topic route info in name server for the topic: %s" % topic
        n = self.topics[topic]
        route = ('{"brokerDatas":[{"brokerAddrs":{%s:"%s"},"brokerName":"%s","cluster":"%s"}],'
                 '"filterServerTable":{},"queueDatas":[{"brokerName":"%s","perm":6,'
                 '"readQueueNums":%d,"topicSysFlag":0,"writeQueueNums":%d}]}') % (
            "0" if self.args.fastjson_keys else '"0"', self.broker_addr, BROKER_NAME, CLUSTER,
            BROKER_NAME, n, n)
        return SUCCESS, {}, route.encode(), None

    async def namesrv_101(self, ext, body, peer):  # GET_KV_CONFIG
        return QUERY_NOT_FOUND, {}, b"", "No config item, Namespace: %s Key: %s" % (
            ext_str(ext, "namespace"), ext_str(ext, "key"))

    # ---------------------------------------------------------------- broker
    async def broker_34(self, ext, body, peer):  # HEART_BEAT
        hb = json.loads(body.decode("utf-8"))
        for cd in hb.get("consumerDataSet", []):
            g = cd["groupName"]
            self.groups.setdefault(g, {})[hb["clientID"]] = time.time()
            self.topics.setdefault("%RETRY%" + g, 1)
        return SUCCESS, {}, b"", None

    async def broker_35(self, ext, body, peer):  # UNREGISTER_CLIENT
        g = ext_str(ext, "consumerGroup")
        if g and g in self.groups:
            self.groups[g].pop(ext_str(ext, "clientID"), None)
        return SUCCESS, {}, b"", None

    async def broker_38(self, ext, body, peer):  # GET_CONSUMER_LIST_BY_GROUP
        g = ext_str(ext, "consumerGroup")
        ids = sorted(self.groups.get(g, {}))
        if not ids:
            return SYSTEM_ERROR, {}, b"", "no consumer for this group, %s" % g
        return SUCCESS, {}, json.dumps({"consumerIdList": ids}).encode(), None

    async def _send(self, topic, qid, body, props, flag, sysflag, born_ts, peer, reconsume):
        if topic not in self.topics:
            return TOPIC_NOT_EXIST, {}, b"", "topic[%s] not exist" % topic
        qid = qid % self.topics[topic]
        msg_id, qoff = self.store.put(topic, qid, body, props, flag, sysflag, born_ts, peer, reconsume)
        async with self.store.cond:
            self.store.cond.notify_all()
        return SUCCESS, {"msgId": msg_id, "queueId": qid, "queueOffset": qoff}, b"", None

    async def broker_310(self, ext, body, peer):  # SEND_MESSAGE_V2 (short keys)
        return await self._send(ext_str(ext, "b"), ext_int(ext, "e"), body,
                                parse_props(ext_str(ext, "i", "")), ext_int(ext, "h"),
                                ext_int(ext, "f"), ext_int(ext, "g"), peer, ext_int(ext, "j"))

    async def broker_10(self, ext, body, peer):  # SEND_MESSAGE (long keys)
        return await self._send(ext_str(ext, "topic"), ext_int(ext, "queueId"), body,
                                parse_props(ext_str(ext, "properties", "")), ext_int(ext, "flag"),
                                ext_int(ext, "sysFlag"), ext_int(ext, "bornTimestamp"), peer,
                                ext_int(ext, "reconsumeTimes"))

    def _minmax(self, topic, qid):
        return 0, len(self.store.cq.get((topic, qid), []))

    async def broker_30(self, ext, body, peer):  # GET_MAX_OFFSET
        return SUCCESS, {"offset": self._minmax(ext_str(ext, "topic"), ext_int(ext, "queueId"))[1]}, b"", None

    async def broker_31(self, ext, body, peer):  # GET_MIN_OFFSET
        return SUCCESS, {"offset": 0}, b"", None

    async def broker_29(self, ext, body, peer):  # SEARCH_OFFSET_BY_TIMESTAMP
        return SUCCESS, {"offset": 0}, b"", None

    async def broker_14(self, ext, body, peer):  # QUERY_CONSUMER_OFFSET (RocketMQ semantics)
        key = (ext_str(ext, "consumerGroup"), ext_str(ext, "topic"), ext_int(ext, "queueId"))
        if key in self.store.offsets:
            return SUCCESS, {"offset": self.store.offsets[key]}, b"", None
        # RocketMQ: no committed offset and the queue still starts at 0 -> offset 0
        if self.args.query_not_found:
            return QUERY_NOT_FOUND, {}, b"", "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first"
        return SUCCESS, {"offset": 0}, b"", None

    async def broker_15(self, ext, body, peer):  # UPDATE_CONSUMER_OFFSET (oneway)
        key = (ext_str(ext, "consumerGroup"), ext_str(ext, "topic"), ext_int(ext, "queueId"))
        self.store.offsets[key] = ext_int(ext, "commitOffset")
        return SUCCESS, {}, b"", None

    async def broker_11(self, ext, body, peer):  # PULL_MESSAGE
        group, topic = ext_str(ext, "consumerGroup"), ext_str(ext, "topic")
        qid, off = ext_int(ext, "queueId"), ext_int(ext, "queueOffset")
        maxn, sysflag = ext_int(ext, "maxMsgNums", 32), ext_int(ext, "sysFlag")
        suspend = ext_int(ext, "suspendTimeoutMillis", 15000) / 1000.0
        sub = ext_str(ext, "subscription") or "*"
        tags = None if sub.strip() in ("*", "") else {t.strip() for t in sub.split("||") if t.strip()}
        if sysflag & 1:
            self.store.offsets[(group, topic, qid)] = ext_int(ext, "commitOffset")
        if topic not in self.topics:
            return TOPIC_NOT_EXIST, {}, b"", "topic[%s] not exist" % topic
        deadline = time.monotonic() + (suspend if sysflag & 2 else 0)
        while True:
            lo, hi = self._minmax(topic, qid)
            hdr = {"suggestWhichBrokerId": 0, "minOffset": lo, "maxOffset": hi}
            if off > hi or off < lo:
                hdr["nextBeginOffset"] = hi if off > hi else lo
                return PULL_OFFSET_MOVED, hdr, b"", "OFFSET_OVERFLOW_BADLY"
            if off < hi:
                q = self.store.cq[(topic, qid)]
                out, nxt = [], off
                for i in range(off, hi):
                    nxt = i + 1
                    rec, meta = self.store.records[q[i]]
                    if tags is None or meta["props"].get("TAGS") in tags:
                        out.append(rec)
                        if len(out) >= maxn:
                            break
                hdr["nextBeginOffset"] = nxt
                if out:
                    return SUCCESS, hdr, b"".join(out), "FOUND"
                return PULL_RETRY_IMMEDIATELY, hdr, b"", "NO_MATCHED_MESSAGE"
            left = deadline - time.monotonic()
            if left <= 0:
                hdr["nextBeginOffset"] = off
                return PULL_NOT_FOUND, hdr, b"", "OFFSET_OVERFLOW_ONE"
            try:
                async with self.store.cond:
                    await asyncio.wait_for(self.store.cond.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def broker_36(self, ext, body, peer):  # CONSUMER_SEND_MSG_BACK
        phys, group = ext_int(ext, "offset"), ext_str(ext, "group")
        if phys not in self.store.records:
            return SYSTEM_ERROR, {}, b"", "look message by offset failed, %d" % phys
        _, m = self.store.records[phys]
        props = dict(m["props"])
        props.setdefault("RETRY_TOPIC", m["topic"])
        props.setdefault("ORIGIN_MESSAGE_ID", ext_str(ext, "originMsgId") or "")
        reconsume = m["reconsume"] + 1
        maxr = ext_int(ext, "maxReconsumeTimes", 16)
        topic = ("%DLQ%" if reconsume > maxr else "%RETRY%") + group
        self.topics.setdefault(topic, 1)
        if self.args.retry_delay_ms:
            await asyncio.sleep(self.args.retry_delay_ms / 1000.0)
        rc, _, _, remark = await self._send(topic, 0, m["body"], props, m["flag"], m["sysflag"],
                                            int(time.time() * 1000), peer, reconsume)
        return rc, {}, b"", remark


async def main():
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--namesrv-port", type=int, default=9876)
    ap.add_argument("--broker-port", type=int, default=10911)
    ap.add_argument("--topic", action="append", default=[])
    ap.add_argument("--queues", type=int, default=4)
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--log")
    ap.add_argument("--fastjson-keys", action="store_true")
    ap.add_argument("--query-not-found", action="store_true",
                    help="answer QUERY_NOT_FOUND (22) for groups without a committed offset")
    ap.add_argument("--refuse", type=int, action="append", default=[], metavar="CODE",
                    help="answer REQUEST_CODE_NOT_SUPPORTED (3) to this request code (repeatable)")
    ap.add_argument("--retry-delay-ms", type=int, default=0,
                    help="wait this long before storing a sent-back message in %%RETRY%%")
    args = ap.parse_args()
    if args.log:
        LOG = open(args.log, "w", encoding="utf-8")
    srv = Server(args)
    srv.store = Store(("127.0.0.1", args.broker_port))
    ns = await asyncio.start_server(lambda r, w: srv.serve(r, w, "namesrv"), "127.0.0.1", args.namesrv_port)
    br = await asyncio.start_server(lambda r, w: srv.serve(r, w, "broker"), "127.0.0.1", args.broker_port)
    log(dict(event="listening", namesrv=args.namesrv_port, broker=args.broker_port, pid=os.getpid()))
    try:
        await asyncio.sleep(args.duration)
    finally:
        ns.close()
        br.close()
        log(dict(event="stop"))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

"""make_corpus.py — regenerates the seed corpus of fuzz_remoting from the independent Python
codec (tests/e2e/mqproto.py). Usage: python3 tests/fuzz/make_corpus.py"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import mqproto as mp  # noqa: E402

out = os.path.join(HERE, "corpus", "fuzz_remoting")
os.makedirs(out, exist_ok=True)
route = mp.Command(105, {"topic": "TopicTest"}, opaque=3)
reg = mp.Command(103, {"brokerName": "b", "brokerAddr": "127.0.0.1:10911", "clusterName": "C",
                       "brokerId": "0", "compressed": "false"},
                 mp.register_body({"T": (4, 4, 6)}), opaque=4)
resp = mp.Command(0, {"haServerAddr": "x"}, b'{"brokerAddrs":{0:"127.0.0.1:10911"}}', opaque=4,
                  flag=1, remark="ok")
seeds = {
    "json_route": mp.encode(route, mp.JSON),
    "bin_route": mp.encode(route, mp.ROCKETMQ),
    "json_register": mp.encode(reg, mp.JSON),
    "bin_register": mp.encode(reg, mp.ROCKETMQ),
    "json_response": mp.encode(resp, mp.JSON),
    "bin_response_oneway": mp.encode(mp.Command(34, {}, b"", flag=2), mp.ROCKETMQ),
    "two_frames": mp.encode(route, mp.JSON) + mp.encode(resp, mp.ROCKETMQ),
    "java_header": (b'{"code":105,"extFields":{"topic":"T","queueId":3,"b":true},"flag":0,'
                    b'"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON",'
                    b'"version":373}'),
    "fastjson_body": b'{"brokerDatas":[{"brokerAddrs":{0:"a",1:"b"}}],"x":[1,{2:[3]}]}',
    "bad_length": struct.pack(">ii", 0x7FFFFFFF, 1 << 24 | 5) + b"\0" * 5,
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

# fuzz_namesrv_body: first byte 0 = JSON body, 1 = 4.9 compressed body
import zlib  # noqa: E402

out = os.path.join(HERE, "corpus", "fuzz_namesrv_body")
os.makedirs(out, exist_ok=True)
dv = b'{"counter":5,"timestamp":1700000000000}'
raw = struct.pack(">i", len(dv)) + dv + struct.pack(">i", 2)
for t in (b"Zipped 3 3 6 SINGLE_TAG", b"Other 1 1 2 MULTI_TAG"):
    raw += struct.pack(">i", len(t)) + t
raw += struct.pack(">i", 2) + b"[]"
bodies = {
    "json": b"\0" + mp.register_body({"A": (4, 4, 6), "B": (1, 1, 2)}),
    "json_bare_keys": b"\0" + b'{"topicConfigTable":{"T":{"perm":6}},"x":{0:"a"}}',
    "compressed": b"\1" + zlib.compress(raw, 9),
    "compressed_raw_tail": b"\1" + zlib.compress(raw[:20], 1),
}
for name, data in bodies.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

# fuzz_batch: SEND_BATCH_MESSAGE bodies (mqrecord.batch_body)
import mqrecord as mr  # noqa: E402

out = os.path.join(HERE, "corpus", "fuzz_batch")
os.makedirs(out, exist_ok=True)
one = mr.batch_body([(b"hello", mr.props(KEYS="k1", WAIT="true"))])
three = mr.batch_body([(b"a", ""), (b"", mr.props(TAGS="t")), (b"x" * 300, mr.props(UNIQ_KEY="u"))])
bodies = {
    "one": one,
    "three": three,
    "truncated": three[:-3],
    "bad_total": struct.pack(">i", 0x7FFFFFFF) + one[4:],
    "body_len_past_end": one[:16] + struct.pack(">i", 1 << 30) + one[20:],
}
for name, data in bodies.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


# fuzz_record: commitlog bytes (docs/FORMATS.md 1.1), written here from the format
def record(body, topic=b"TopicTest", props=b"", qid=0, qoff=0, phys=0, v6=False):
    sysflag = 0x30 if v6 else 0
    host = (b"\0" * 15 + b"\1") if v6 else b"\x7f\0\0\1"
    fields = (struct.pack(">iiqqiq", qid, 0, qoff, phys, sysflag, 1700000000000) +
              host + struct.pack(">i", 10911) + struct.pack(">q", 1700000000001) +
              host + struct.pack(">i", 10911) + struct.pack(">iqi", 0, 0, len(body)) + body +
              struct.pack(">B", len(topic)) + topic + struct.pack(">h", len(props)) + props)
    total = 12 + len(fields)
    return struct.pack(">iIi", total, 0xDAA320A7, zlib.crc32(body) & 0x7FFFFFFF) + fields


r1 = record(b"hello", props=b"KEYS\x01k\x02WAIT\x01true\x02")
r2 = record(b"", topic=b"T2", qid=3, qoff=7, phys=len(r1))
r3 = record(b"v6 body", v6=True)
blank = struct.pack(">iI", 64, 0xCBD43194) + b"\0" * 56
out = os.path.join(HERE, "corpus", "fuzz_record")
os.makedirs(out, exist_ok=True)
bodies = {
    "one": r1,
    "two_then_zeros": r1 + r2 + b"\0" * 16,
    "v6": r3,
    "blank_tail": r1 + blank,
    "torn": r1 + r2[: len(r2) // 2],
    "bad_crc": r1[:8] + b"\0\0\0\1" + r1[12:],
}
for name, data in bodies.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)

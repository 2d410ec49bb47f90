/* test_remoting.c — unit tests for remoting/'s codec: both header serializations, round trips,
 * every class of malformed input, fastjson bodies, command helpers. The loopback server/client
 * tests are in test_remoting_net.c.
 */
#include <errno.h>
#include <stdio.h>

#include "common/mq_bytes.h"
#include "remoting/remoting.h"
#include "tests/unit/mq_test.h"

static struct rpc_cmd *sample_cmd(void)
{
    struct rpc_cmd *c = rpc_cmd_new(105);
    c->opaque = 42;
    c->flag = 0;
    rpc_cmd_set_remark(c, "hello \"remark\"\n");
    rpc_cmd_ext_set(c, "topic", "TopicTest");
    rpc_cmd_ext_set_int64(c, "queueOffset", -1234567890123LL);
    rpc_cmd_ext_set_bool(c, "compressed", 1);
    rpc_cmd_set_body_copy(c, "body\0bytes", 10);
    return c;
}

static int roundtrip(int ser)
{
    struct rpc_cmd *c = sample_cmd(), *d = NULL;
    struct mq_buf b;
    size_t flen = 0;
    int ok = 0;
    int64_t off;
    int bv;
    mq_buf_init(&b);
    if (rpc_cmd_encode(c, ser, &b) || rpc_frame_check(b.data, b.len, 1 << 20, &flen) ||
        flen != b.len || rpc_frame_decode(b.data, b.len, NULL, &d))
        goto out;
    ok = d->code == 105 && d->opaque == 42 && d->language == RPC_LANG_CPP &&
         d->version == RPC_VERSION_DEFAULT && d->serialize == ser &&
         strcmp(rpc_cmd_remark(d), "hello \"remark\"\n") == 0 && d->ext_n == 3 &&
         strcmp(rpc_cmd_ext_get(d, "topic"), "TopicTest") == 0 &&
         rpc_cmd_ext_get_int64(d, "queueOffset", &off) == 0 && off == -1234567890123LL &&
         rpc_cmd_ext_get_bool(d, "compressed", &bv) == 0 && bv == 1 && d->body_len == 10 &&
         memcmp(d->body, "body\0bytes", 10) == 0 && !rpc_cmd_is_response(d);
out:
    rpc_cmd_free(c);
    rpc_cmd_free(d);
    mq_buf_destroy(&b);
    return ok;
}

TEST(test_roundtrip_binary)
{
    ASSERT(roundtrip(RPC_SER_ROCKETMQ));
}

TEST(test_roundtrip_json)
{
    ASSERT(roundtrip(RPC_SER_JSON));
}

/* Builds a frame around a header: length, type << 24 | headerLen, header, body. */
static size_t frame(uint8_t *out, int ser, const void *hdr, size_t hlen, const void *body,
                    size_t blen)
{
    mq_put_be32(out, (uint32_t)(4 + hlen + blen));
    mq_put_be32(out + 4, (uint32_t)ser << 24 | (uint32_t)hlen);
    memcpy(out + 8, hdr, hlen);
    if (blen)
        memcpy(out + 8 + hlen, body, blen);
    return 8 + hlen + blen;
}

TEST(test_json_from_java)
{
    /* As RemotingSerializable (fastjson) writes it, extFields values as strings and numbers. */
    const char *h = "{\"code\":105,\"extFields\":{\"topic\":\"TopicTest\",\"queueId\":3,"
                    "\"sysFlag\":true,\"n\":null},\"flag\":0,\"language\":\"JAVA\","
                    "\"opaque\":7,\"serializeTypeCurrentRPC\":\"JSON\",\"version\":373}";
    uint8_t buf[512];
    size_t n = frame(buf, 0, h, strlen(h), "xy", 2);
    struct rpc_cmd *d;
    ASSERT_OK(rpc_frame_decode(buf, n, NULL, &d));
    ASSERT_EQ(d->code, 105);
    ASSERT_EQ(d->opaque, 7);
    ASSERT_EQ(d->version, 373);
    ASSERT_EQ(d->language, RPC_LANG_JAVA);
    ASSERT_EQ(d->serialize, RPC_SER_JSON);
    ASSERT(rpc_cmd_remark(d) == NULL);
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "topic"), "TopicTest");
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "queueId"), "3");
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "sysFlag"), "true");
    ASSERT(rpc_cmd_ext_get(d, "n") == NULL);
    ASSERT_EQ(d->body_len, 2);
    int32_t q;
    ASSERT_OK(rpc_cmd_ext_get_int32(d, "queueId", &q));
    ASSERT_EQ(q, 3);
    ASSERT_EQ(rpc_cmd_ext_get_int32(d, "topic", &q), -EINVAL);
    ASSERT_EQ(rpc_cmd_ext_get_int32(d, "none", &q), -ENOENT);
    rpc_cmd_free(d);
    /* unknown language names are tolerated */
    h = "{\"code\":1,\"language\":\"NODE\",\"flag\":1}";
    n = frame(buf, 0, h, strlen(h), NULL, 0);
    ASSERT_OK(rpc_frame_decode(buf, n, NULL, &d));
    ASSERT_EQ(d->language, RPC_LANG_OTHER);
    ASSERT(rpc_cmd_is_response(d));
    ASSERT(d->body == NULL);
    rpc_cmd_free(d);
}

TEST(test_binary_golden)
{
    /* code 105, lang JAVA, version 1, opaque 9, flag 2 (oneway), remark "r",
     * ext {"k": "vv"} */
    static const uint8_t h[] = {0, 105, 0, 0, 1, 0, 0, 0, 9,   0, 0, 0, 2, 0,   0,  0,
                                1, 'r', 0, 0, 0, 9, 0, 1, 'k', 0, 0, 0, 2, 'v', 'v'};
    uint8_t buf[128];
    size_t n = frame(buf, 1, h, sizeof(h), NULL, 0);
    struct rpc_cmd *d;
    ASSERT_OK(rpc_frame_decode(buf, n, NULL, &d));
    ASSERT_EQ(d->code, 105);
    ASSERT_EQ(d->version, 1);
    ASSERT_EQ(d->opaque, 9);
    ASSERT(rpc_cmd_is_oneway(d));
    ASSERT_STR_EQ(rpc_cmd_remark(d), "r");
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "k"), "vv");
    /* and our encoder writes exactly those bytes */
    struct mq_buf b;
    mq_buf_init(&b);
    d->language = RPC_LANG_JAVA;
    ASSERT_OK(rpc_cmd_encode(d, RPC_SER_ROCKETMQ, &b));
    ASSERT_EQ(b.len, n);
    ASSERT_MEM_EQ(b.data, buf, n);
    mq_buf_destroy(&b);
    rpc_cmd_free(d);
}

static int decode_err(int ser, const void *h, size_t hlen)
{
    uint8_t buf[1024];
    size_t n = frame(buf, ser, h, hlen, NULL, 0);
    struct rpc_cmd *d = NULL;
    int rc = rpc_frame_decode(buf, n, NULL, &d);
    rpc_cmd_free(d);
    return rc;
}

TEST(test_malformed_frames)
{
    uint8_t buf[64] = {0};
    size_t flen;
    struct rpc_cmd *d;
    /* short: fewer than 4 bytes, or fewer than the length says */
    ASSERT_EQ(rpc_frame_check(buf, 3, 1 << 20, &flen), -EAGAIN);
    mq_put_be32(buf, 20);
    ASSERT_EQ(rpc_frame_check(buf, 10, 1 << 20, &flen), -EAGAIN);
    /* below the minimum, above the maximum, negative */
    mq_put_be32(buf, 3);
    ASSERT_EQ(rpc_frame_check(buf, 8, 1 << 20, &flen), -EBADMSG);
    mq_put_be32(buf, (1 << 20) + 1);
    ASSERT_EQ(rpc_frame_check(buf, 8, 1 << 20, &flen), -EMSGSIZE);
    mq_put_be32(buf, 0x80000000u);
    ASSERT_EQ(rpc_frame_check(buf, 8, SIZE_MAX, &flen), -EMSGSIZE);
    /* frame shorter than the prefix */
    mq_put_be32(buf, 2);
    ASSERT_EQ(rpc_frame_decode(buf, 6, NULL, &d), -EBADMSG);
    /* length field disagrees with the frame size */
    mq_put_be32(buf, 30);
    mq_put_be32(buf + 4, 1u << 24);
    ASSERT_EQ(rpc_frame_decode(buf, 20, NULL, &d), -EBADMSG);
    /* header length beyond the frame */
    mq_put_be32(buf, 12);
    mq_put_be32(buf + 4, 1u << 24 | 100);
    ASSERT_EQ(rpc_frame_decode(buf, 16, NULL, &d), -EBADMSG);
    /* bad serialize type */
    ASSERT_EQ(decode_err(2, "{}", 2), -EBADMSG);
    ASSERT_EQ(decode_err(0xFF, "{}", 2), -EBADMSG);
}

TEST(test_malformed_binary_headers)
{
    uint8_t h[64] = {0};
    /* too short for the fixed part */
    ASSERT_EQ(decode_err(1, h, 10), -EBADMSG);
    /* remark length beyond the header */
    mq_put_be32(h + 13, 100);
    ASSERT_EQ(decode_err(1, h, 21), -EBADMSG);
    /* remark length negative */
    mq_put_be32(h + 13, 0xFFFFFFFFu);
    ASSERT_EQ(decode_err(1, h, 21), -EBADMSG);
    /* no room for the extFields length */
    mq_put_be32(h + 13, 0);
    ASSERT_EQ(decode_err(1, h, 19), -EBADMSG);
    /* huge extFields length */
    mq_put_be32(h + 17, 0x7FFFFFFFu);
    ASSERT_EQ(decode_err(1, h, 21), -EBADMSG);
    /* truncated key: key length 10, 3 bytes present */
    mq_put_be32(h + 17, 5);
    mq_put_be16(h + 21, 10);
    ASSERT_EQ(decode_err(1, h, 26), -EBADMSG);
    /* negative key length */
    mq_put_be16(h + 21, 0xFFFF);
    ASSERT_EQ(decode_err(1, h, 26), -EBADMSG);
    /* truncated value: key "a", value length 50 */
    mq_put_be32(h + 17, 9);
    mq_put_be16(h + 21, 1);
    h[23] = 'a';
    mq_put_be32(h + 24, 50);
    ASSERT_EQ(decode_err(1, h, 30), -EBADMSG);
    /* value length field cut by the extFields length */
    mq_put_be32(h + 17, 5);
    ASSERT_EQ(decode_err(1, h, 26), -EBADMSG);
    /* trailing bytes after extFields */
    mq_put_be32(h + 17, 0);
    ASSERT_EQ(decode_err(1, h, 22), -EBADMSG);
    ASSERT_EQ(decode_err(1, h, 21), 0);
}

TEST(test_malformed_json_headers)
{
    const char *bad[] = {
        "",
        "{",
        "[]",
        "\"x\"",
        "{\"code\":\"105\"}",
        "{\"code\":1e3}",
        "{\"code\":99999999999}",
        "{\"version\":70000}",
        "{\"code\":1,\"extFields\":[1,2]}",
        "{\"code\":1,\"remark\":5}",
        "{\"code\":1}garbage",
        "{\"code\":1,\"extFields\":{\"a\":\"\\ud800\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (decode_err(0, bad[i], strlen(bad[i])) != -EBADMSG)
            MQ_TEST_FAIL_("accepted bad JSON header #%zu: %s", i, bad[i]);
    /* deep nesting is refused without recursion trouble */
    char deep[600];
    memset(deep, '[', sizeof(deep));
    ASSERT_EQ(decode_err(0, deep, sizeof(deep)), -EBADMSG);
}

TEST(test_json_bare_keys)
{
    const char *s = "{\"brokerAddrs\":{0:\"127.0.0.1:10911\", 1 :\"b\"},\"a\":[1,2,{3:[4]}],"
                    "\"s\":\"{5:6}\"}";
    json_t *v = rpc_json_loads(s, strlen(s));
    ASSERT(v != NULL);
    json_t *addrs = json_object_get(v, "brokerAddrs");
    ASSERT_STR_EQ(json_string_value(json_object_get(addrs, "0")), "127.0.0.1:10911");
    ASSERT_STR_EQ(json_string_value(json_object_get(addrs, "1")), "b");
    json_t *a = json_object_get(v, "a");
    ASSERT_EQ(json_integer_value(json_array_get(a, 1)), 2);
    ASSERT(json_is_array(json_object_get(json_array_get(a, 2), "3")));
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "s")), "{5:6}");
    json_decref(v);
    ASSERT(rpc_json_loads("{0:", 3) == NULL);
    /* standard JSON out */
    struct rpc_cmd *c = rpc_cmd_new(0);
    json_t *o = json_pack("{s:{s:s}}", "brokerAddrs", "0", "x");
    ASSERT_OK(rpc_cmd_set_body_json(c, o));
    ASSERT_EQ(c->body_len, strlen("{\"brokerAddrs\":{\"0\":\"x\"}}"));
    ASSERT_MEM_EQ(c->body, "{\"brokerAddrs\":{\"0\":\"x\"}}", c->body_len);
    json_decref(o);
    rpc_cmd_free(c);
}

TEST(test_cmd_helpers)
{
    struct rpc_cmd *c = rpc_cmd_new(10);
    ASSERT_OK(rpc_cmd_ext_set(c, "a", "1"));
    ASSERT_OK(rpc_cmd_ext_set(c, "a", "2"));
    ASSERT_EQ(c->ext_n, 1);
    ASSERT_STR_EQ(rpc_cmd_ext_get(c, "a"), "2");
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i);
        ASSERT_OK(rpc_cmd_ext_set_int64(c, k, i));
    }
    int64_t v;
    ASSERT_OK(rpc_cmd_ext_get_int64(c, "key77", &v));
    ASSERT_EQ(v, 77);
    struct rpc_cmd *d = rpc_cmd_clone(c);
    ASSERT_STR_EQ(rpc_cmd_ext_get(d, "key99"), "99");
    struct rpc_cmd *r = rpc_cmd_new_response(d, 17, "no topic");
    ASSERT(rpc_cmd_is_response(r));
    ASSERT_EQ(r->opaque, d->opaque);
    ASSERT_STR_EQ(rpc_cmd_remark(r), "no topic");
    ASSERT_STR_EQ(rpc_code_name(105), "GET_ROUTEINFO_BY_TOPIC");
    ASSERT_STR_EQ(rpc_lang_name(9), "GO");
    ASSERT_EQ(rpc_lang_from_name("PHP", 3), 10);
    rpc_cmd_free(c);
    rpc_cmd_free(d);
    rpc_cmd_free(r);
    rpc_cmd_free(NULL);
}

/* Header integers parse as Java's Long.parseLong does: an optional sign, then digits only,
 * in range; rpc_i64_text writes what parses back. */
TEST(test_i64_parse)
{
    static const struct {
        const char *in;
        int64_t v;
    } ok[] = {{"0", 0},
              {"-0", 0},
              {"+5", 5},
              {"007", 7},
              {"-1234567890123", -1234567890123LL},
              {"9223372036854775807", INT64_MAX},
              {"-9223372036854775808", INT64_MIN}};
    static const char *const bad[] = {"",
                                      "-",
                                      "+",
                                      " 1",
                                      "1 ",
                                      "12a",
                                      "--1",
                                      "+-1",
                                      "0x10",
                                      "1e3",
                                      "9223372036854775808",
                                      "-9223372036854775809",
                                      "99999999999999999999"};
    int64_t v;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 1;
        ASSERT_OK(rpc_i64_parse(ok[i].in, &v));
        ASSERT_EQ(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        ASSERT_EQ(rpc_i64_parse(bad[i], &v), -EINVAL);
        ASSERT_EQ(v, 42);
    }
    uint64_t x = 88172645463325252ULL; /* xorshift over the whole range, and its edges */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t want = i < 2 ? (i ? INT64_MIN : INT64_MAX) : (int64_t)(x >> (i % 64));
        if (i % 3 == 0 && want != INT64_MIN)
            want = -want;
        char buf[24];
        ASSERT_OK(rpc_i64_parse(rpc_i64_text(want, buf), &v));
        ASSERT_EQ(v, want);
    }
}

TEST_MAIN(test_roundtrip_binary, test_roundtrip_json, test_json_from_java, test_binary_golden,
          test_malformed_frames, test_malformed_binary_headers, test_malformed_json_headers,
          test_json_bare_keys, test_cmd_helpers, test_i64_parse)

/* test_common.c — unit tests for common/: byte order, buffers, checksums, Java hashes, name
 * rules, config tables, error strings. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include "common/mq_batch.h"
#include "common/mq_bytes.h"
#include "common/mq_conf.h"
#include "common/mq_file.h"
#include "common/mq_map.h"
#include "common/mq_tags.h"
#include "common/mq_err.h"
#include "common/mq_msg.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"

TEST(test_be_roundtrip)
{
    uint8_t b[8];
    mq_put_be16(b, 0xA1B2);
    ASSERT_EQ(b[0], 0xA1);
    ASSERT_EQ(mq_get_be16(b), 0xA1B2);
    mq_put_be32(b, 0xDAA320A7u);
    ASSERT_EQ(b[0], 0xDA);
    ASSERT_EQ(b[3], 0xA7);
    ASSERT_EQ(mq_get_be32(b), 0xDAA320A7u);
    mq_put_be64(b, 0x0102030405060708ull);
    ASSERT_EQ(b[0], 1);
    ASSERT_EQ(b[7], 8);
    ASSERT(mq_get_be64(b) == 0x0102030405060708ull);
}

TEST(test_buf_growth)
{
    struct mq_buf b;
    mq_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(mq_buf_put_be32(&b, (uint32_t)i));
    ASSERT_EQ(b.len, 4000);
    ASSERT_EQ(mq_get_be32(b.data + 4 * 999), 999);
    ASSERT_OK(mq_buf_printf(&b, "x=%d", 42));
    ASSERT_EQ(b.len, 4004);
    ASSERT_MEM_EQ(b.data + 4000, "x=42", 4);
    size_t n;
    uint8_t *p = mq_buf_steal(&b, &n);
    ASSERT_EQ(n, 4004);
    ASSERT_EQ(b.len, 0);
    free(p);
    mq_buf_destroy(&b);
}

TEST(test_crc32_matches_rocketmq)
{
    /* zlib crc32("123456789") = 0xCBF43926; UtilAll.crc32 masks the sign bit. */
    ASSERT_EQ(mq_crc32("123456789", 9), 0xCBF43926u & 0x7FFFFFFFu);
    ASSERT_EQ(mq_crc32("", 0), 0);
}

TEST(test_crc32_equals_zlib)
{
    /* The folded (PCLMULQDQ) path against zlib itself: every length up to 3000 at several
     * alignments, and chained updates. */
    static uint8_t buf[4096];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 5) * 7 + 1);
    for (size_t n = 0; n <= 3000; n++) {
        for (size_t a = 0; a < 16; a += 5) {
            uint32_t want = (uint32_t)crc32(0, buf + a, (uInt)n);
            ASSERT_EQ(mq_crc32_update(0, buf + a, n), want);
            ASSERT_EQ(mq_crc32(buf + a, n), want & 0x7FFFFFFFu);
        }
        uint32_t part = mq_crc32_update(0, buf, n / 3);
        ASSERT_EQ(mq_crc32_update(part, buf + n / 3, n - n / 3), (uint32_t)crc32(0, buf, (uInt)n));
    }
}

TEST(test_java_hash)
{
    /* Values of Java's "...".hashCode(). */
    ASSERT_EQ(mq_java_hash("", 0), 0);
    ASSERT_EQ(mq_java_hash("TagA", 4), 2598919);
    ASSERT_EQ(mq_java_hash("hello", 5), 99162322);
    ASSERT_EQ(mq_java_hash("TopicTest#KEY1", 14), -1656969516);
    /* "é" is one UTF-16 unit 0xE9; "€" is 0x20AC; U+1F600 is the pair D83D DE00. */
    ASSERT_EQ(mq_java_hash("\xc3\xa9", 2), 0xE9);
    ASSERT_EQ(mq_java_hash("\xe2\x82\xac", 3), 0x20AC);
    ASSERT_EQ(mq_java_hash("\xf0\x9f\x98\x80", 4), 0xD83D * 31 + 0xDE00);
    /* long enough for the eight-byte steps, and non-ASCII inside and after them */
    static const char a[] = "Bench#7F0000010001B4AC1EAA3F7A2B4C0000000000A1";
    static const char b[] = "abcdefg\xc3\xa9hijklmnopqrstuvw\xf0\x9f\x98\x80xyz0123456789";
    ASSERT_EQ(mq_java_hash(a, sizeof(a) - 1), -485472904);
    ASSERT_EQ(mq_java_hash(b, sizeof(b) - 1), -1214458578);
    /* continued at every character boundary of b: the same hash */
    for (size_t cut = 0; cut < sizeof(b); cut++) {
        if (((unsigned char)b[cut] & 0xC0) == 0x80)
            continue;
        uint32_t h = mq_java_hash_more(mq_java_hash_more(0, b, cut), b + cut, sizeof(b) - 1 - cut);
        ASSERT_EQ((int32_t)h, -1214458578);
    }
}

TEST(test_topic_rules)
{
    ASSERT_OK(mq_check_topic("TopicA", 6));
    ASSERT_OK(mq_check_topic("%RETRY%G1", 9));
    ASSERT_OK(mq_check_topic("a|b_c-9", 7));
    ASSERT_EQ(mq_check_topic("", 0), -EINVAL);
    ASSERT_EQ(mq_check_topic("a b", 3), -EINVAL);
    ASSERT_EQ(mq_check_topic("a/b", 3), -EINVAL);
    ASSERT_EQ(mq_check_topic("a.b", 3), -EINVAL);
    char name[129];
    memset(name, 'x', sizeof(name));
    ASSERT_OK(mq_check_topic(name, 127));
    ASSERT_EQ(mq_check_topic(name, 128), -EINVAL);
}

struct demo_conf {
    int port;
    int64_t size;
    int flag;
    char path[16];
};

static const struct mq_conf_key demo_keys[] = {
    {"listenPort", MQ_CONF_INT, offsetof(struct demo_conf, port), 0, "10911", 1, 65535, "port"},
    {"mappedFileSizeCommitLog", MQ_CONF_INT64, offsetof(struct demo_conf, size), 0, "1073741824",
     4096, INT64_MAX, "size"},
    {"autoCreateTopicEnable", MQ_CONF_BOOL, offsetof(struct demo_conf, flag), 0, "true", 0, 1,
     "flag"},
    {"storePathRootDir", MQ_CONF_STR, offsetof(struct demo_conf, path),
     sizeof(((struct demo_conf *)0)->path), "/tmp/store", 0, 0, "dir"},
};
#define NKEYS (sizeof(demo_keys) / sizeof(demo_keys[0]))

TEST(test_conf_table)
{
    struct demo_conf c;
    char err[256];
    ASSERT_OK(mq_conf_defaults(demo_keys, NKEYS, &c));
    ASSERT_EQ(c.port, 10911);
    ASSERT(c.size == 1073741824);
    ASSERT_EQ(c.flag, 1);
    ASSERT_STR_EQ(c.path, "/tmp/store");
    ASSERT_OK(mq_conf_set(demo_keys, NKEYS, &c, "listenPort", "9876", err, sizeof(err)));
    ASSERT_EQ(c.port, 9876);
    ASSERT_EQ(mq_conf_set(demo_keys, NKEYS, &c, "listenPort", "70000", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(mq_conf_set(demo_keys, NKEYS, &c, "listenPort", "12x", err, sizeof(err)), -EINVAL);
    ASSERT_EQ(mq_conf_set(demo_keys, NKEYS, &c, "nope", "1", err, sizeof(err)), -ENOENT);
    ASSERT_EQ(mq_conf_set(demo_keys, NKEYS, &c, "autoCreateTopicEnable", "maybe", err, sizeof(err)),
              -EINVAL);
    ASSERT_EQ(mq_conf_set(demo_keys, NKEYS, &c, "storePathRootDir", "/a/very/long/path/x", err,
                          sizeof(err)),
              -EINVAL);
    ASSERT_EQ(c.port, 9876); /* failed sets change nothing */

    char path[] = "/tmp/mq_conf_testXXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n! also a comment\n\n  listenPort = 10000 \nunknownKey=1\n"
               "autoCreateTopicEnable=false\nstorePathRootDir=/s\n");
    fclose(f);
    ASSERT_OK(mq_conf_load(demo_keys, NKEYS, &c, path, err, sizeof(err)));
    ASSERT_EQ(c.port, 10000);
    ASSERT_EQ(c.flag, 0);
    ASSERT_STR_EQ(c.path, "/s");
    f = fopen(path, "w");
    fprintf(f, "listenPort=0\n");
    fclose(f);
    ASSERT_EQ(mq_conf_load(demo_keys, NKEYS, &c, path, err, sizeof(err)), -EINVAL);
    ASSERT(strstr(err, ":1:") != NULL);
    unlink(path);
    ASSERT_EQ(mq_conf_load(demo_keys, NKEYS, &c, path, err, sizeof(err)), -ENOENT);
}

static int quote(const char *in, char *out, size_t cap)
{
    struct mq_buf b;
    mq_buf_init(&b);
    int rc = mq_json_quote_int_keys(in, strlen(in), &b);
    if (rc == 0)
        snprintf(out, cap, "%.*s", (int)b.len, (const char *)b.data);
    mq_buf_destroy(&b);
    return rc;
}

TEST(test_json_quote_int_keys)
{
    char out[256];
    ASSERT_OK(quote("{0:\"a\", 12 : \"b\",\"x\":[1,2,{-3:4}]}", out, sizeof(out)));
    ASSERT_STR_EQ(out, "{\"0\":\"a\", \"12\" : \"b\",\"x\":[1,2,{\"-3\":4}]}");
    ASSERT_OK(quote("{\"s\":\"{0:1}\\\"\",\"n\":5}", out, sizeof(out))); /* strings untouched */
    ASSERT_STR_EQ(out, "{\"s\":\"{0:1}\\\"\",\"n\":5}");
    ASSERT_OK(quote("[0, 1]", out, sizeof(out)));
    ASSERT_STR_EQ(out, "[0, 1]");
    ASSERT_EQ(quote("{\"a\":\"open", out, sizeof(out)), -EBADMSG);
    ASSERT_EQ(quote("{[}]", out, sizeof(out)), -EBADMSG);
}

TEST(test_map)
{
    struct mq_map m;
    mq_map_init(&m);
    ASSERT(mq_map_get(&m, "x") == NULL);
    static int vals[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "topic-%d@group", i);
        ASSERT_OK(mq_map_put(&m, key, &vals[i], NULL));
    }
    ASSERT_EQ(m.len, 2000);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof(key), "topic-%d@group", i);
        ASSERT(mq_map_del(&m, key) == &vals[i]);
    }
    ASSERT_EQ(m.len, 1000);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "topic-%d@group", i);
        ASSERT(mq_map_get(&m, key) == (i % 2 ? &vals[i] : NULL));
    }
    void *old = NULL;
    ASSERT_OK(mq_map_put(&m, "topic-1@group", &vals[0], &old));
    ASSERT(old == &vals[1]);
    size_t it = 0, count = 0;
    const char *k;
    void *v;
    while (mq_map_next(&m, &it, &k, &v))
        count++;
    ASSERT_EQ(count, 1000);
    for (int round = 0; round < 50; round++) { /* churn: tombstones must not fill the table */
        ASSERT_OK(mq_map_put(&m, "churn", &vals[0], NULL));
        ASSERT(mq_map_del(&m, "churn") == &vals[0]);
    }
    ASSERT_EQ(m.len, 1000);
    mq_map_destroy(&m);
}

TEST(test_file_atomic)
{
    char dir[] = "/tmp/mq_file_testXXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    char sub[256], path[300];
    snprintf(sub, sizeof(sub), "%s/a/b/config", dir);
    ASSERT_OK(mq_mkdirs(sub, 0755));
    ASSERT_OK(mq_mkdirs(sub, 0755)); /* idempotent */
    snprintf(path, sizeof(path), "%s/topics.json", sub);
    char *data = NULL;
    size_t len = 0;
    ASSERT_EQ(mq_file_read_all(path, 1024, &data, &len), -ENOENT);
    ASSERT_OK(mq_file_write_atomic(path, "{\"a\":1}", 7));
    ASSERT_OK(mq_file_write_atomic(path, "{}", 2));
    ASSERT_OK(mq_file_read_all(path, 1024, &data, &len));
    ASSERT_EQ(len, 2);
    ASSERT_STR_EQ(data, "{}");
    free(data);
    ASSERT_EQ(mq_file_read_all(path, 1, &data, &len), -EFBIG);
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ASSERT_EQ(access(tmp, F_OK), -1); /* no temp file left behind */
    unlink(path);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_OK(system(cmd));
}

TEST(test_tags)
{
    struct mq_tags t;
    ASSERT_OK(mq_tags_parse("*", &t));
    ASSERT(t.all);
    ASSERT(mq_tags_match(&t, NULL, 0));
    mq_tags_destroy(&t);
    ASSERT_OK(mq_tags_parse("  ", &t));
    ASSERT(t.all);
    mq_tags_destroy(&t);
    ASSERT_OK(mq_tags_parse(" TagA || TagB||  ||TagC ", &t));
    ASSERT(!t.all);
    ASSERT_EQ(t.n, 3);
    ASSERT_STR_EQ(t.tags[1], "TagB");
    ASSERT_EQ(t.codes[0], 2598919); /* "TagA".hashCode() */
    ASSERT(mq_tags_match_code(&t, 2598919));
    ASSERT(!mq_tags_match_code(&t, 0));
    ASSERT(mq_tags_match(&t, "TagC", 4));
    ASSERT(!mq_tags_match(&t, "TagD", 4));
    ASSERT(!mq_tags_match(&t, "Tag", 3));
    ASSERT(!mq_tags_match(&t, NULL, 0));
    mq_tags_destroy(&t);
    ASSERT_EQ(mq_tags_code(NULL, 0), 0);
    ASSERT_EQ(mq_tags_code("TagA", 4), 2598919);
}

TEST(test_batch_codec)
{
    struct mq_buf b;
    mq_buf_init(&b);
    ASSERT_OK(mq_batch_append(&b, 7, "hello", 5, "KEYS\001k1\002", 8));
    ASSERT_OK(mq_batch_append(&b, 0, "", 0, "", 0));
    ASSERT_EQ(b.len, 22 + 5 + 8 + 22);
    ASSERT_EQ(mq_get_be32(b.data), 35); /* TOTALSIZE */
    size_t pos = 0;
    struct mq_batch_entry e;
    ASSERT_EQ(mq_batch_next(b.data, b.len, &pos, &e), 1);
    ASSERT_EQ(e.flag, 7);
    ASSERT_EQ(e.body_len, 5);
    ASSERT_MEM_EQ(e.body, "hello", 5);
    ASSERT_EQ(e.props_len, 8);
    ASSERT_EQ(mq_batch_next(b.data, b.len, &pos, &e), 1);
    ASSERT_EQ(e.body_len, 0);
    ASSERT_EQ(mq_batch_next(b.data, b.len, &pos, &e), 0);
    /* Every truncation of the first entry, and corrupted lengths, are rejected. */
    for (size_t cut = 1; cut < 35; cut++) {
        pos = 0;
        ASSERT_EQ(mq_batch_next(b.data, cut, &pos, &e), -EBADMSG);
    }
    mq_put_be32(b.data + 16, 100); /* body length past the entry */
    pos = 0;
    ASSERT_EQ(mq_batch_next(b.data, b.len, &pos, &e), -EBADMSG);
    mq_put_be32(b.data + 16, 5);
    mq_put_be32(b.data, 36); /* total disagrees with the parts */
    pos = 0;
    ASSERT_EQ(mq_batch_next(b.data, b.len, &pos, &e), -EBADMSG);
    mq_put_be32(b.data, 0xFFFFFFF0u);
    pos = 0;
    ASSERT_EQ(mq_batch_next(b.data, b.len, &pos, &e), -EBADMSG);
    char big[40000];
    memset(big, 'p', sizeof(big));
    ASSERT_EQ(mq_batch_append(&b, 0, "", 0, big, sizeof(big)), -EMSGSIZE);
    mq_buf_destroy(&b);
}

TEST(test_strerror)
{
    ASSERT_STR_EQ(mq_strerror(MQ_ECORRUPT), "corrupt data");
    ASSERT_STR_EQ(mq_strerror(-ENOSPC), "No space left on device");
    ASSERT_STR_EQ(mq_strerror(-999999), "unknown error");
}

/* ---- message record codec (common/mq_msg.h) ---- */

static const char golden_hex[] =
    "00000065DAA320A758932AAC0000000300000007000000000000002A000000000000100000000000000001"
    "8BCFE568007F00000100002A9F0000018BCFE5687B0A00000200002A9F00000001000000000000000000000002"
    "68690154000754414753016102";

static void unhex(const char *h, uint8_t *out, size_t *n)
{
    size_t k = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[k++] = (uint8_t)v;
    }
    *n = k;
}

static void golden_msg(struct mq_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->topic = "T";
    m->topic_len = 1;
    m->queue_id = 3;
    m->flag = 7;
    m->queue_offset = 42;
    m->phys_offset = 4096;
    m->born_ts = 1700000000000;
    m->born_host = (struct mq_host){0, {127, 0, 0, 1}, 10911};
    m->store_ts = 1700000000123;
    m->store_host = (struct mq_host){0, {10, 0, 0, 2}, 10911};
    m->reconsume_times = 1;
    m->body = (const uint8_t *)"hi";
    m->body_len = 2;
    m->props = "TAGS\x01"
               "a\x02";
    m->props_len = 7;
}

TEST(test_msg_golden)
{
    uint8_t want[256], got[256];
    size_t n;
    unhex(golden_hex, want, &n);
    struct mq_msg m, d;
    golden_msg(&m);
    ASSERT_EQ(mq_msg_record_size(&m), 101);
    ASSERT_EQ(n, 101);
    ASSERT_EQ(mq_msg_encode(&m, got, sizeof(got)), 101);
    ASSERT_MEM_EQ(got, want, 101);
    ASSERT_EQ(mq_msg_encode(&m, got, 100), -ENOSPC);
    ASSERT_EQ(mq_msg_decode(want, n, 0, MQ_MSG_CHECK_CRC, &d), 101);
    ASSERT_EQ(d.queue_id, 3);
    ASSERT_EQ(d.flag, 7);
    ASSERT_EQ(d.queue_offset, 42);
    ASSERT_EQ(d.phys_offset, 4096);
    ASSERT_EQ(d.born_ts, 1700000000000);
    ASSERT_EQ(d.store_ts, 1700000000123);
    ASSERT_EQ(d.store_host.addr[0], 10);
    ASSERT_EQ(d.store_host.port, 10911);
    ASSERT_EQ(d.born_host.addr[0], 127);
    ASSERT_EQ(d.reconsume_times, 1);
    ASSERT_EQ(d.body_len, 2);
    ASSERT_MEM_EQ(d.body, "hi", 2);
    ASSERT_EQ(d.topic_len, 1);
    ASSERT_EQ(d.props_len, 7);
    char id[57];
    ASSERT_EQ(mq_msgid_encode(&d.store_host, d.phys_offset, id), 32);
    ASSERT_STR_EQ(id, "0A00000200002A9F0000000000001000");
    memset(id, 'x', sizeof(id)); /* the same id in its two parts */
    ASSERT_EQ(mq_msgid_host(&d.store_host, id), 16);
    mq_msgid_offset(d.phys_offset, id + 16);
    ASSERT_MEM_EQ(id, "0A00000200002A9F0000000000001000x", 33);
    struct mq_host h;
    int64_t off;
    ASSERT_OK(mq_msgid_decode("0a00000200002a9f0000000000001000", 32, &h, &off));
    ASSERT_EQ(off, 4096);
    ASSERT_EQ(h.port, 10911);
    ASSERT_EQ(h.addr[3], 2);
    ASSERT_EQ(mq_msgid_decode("0A00", 4, &h, &off), -EINVAL);
    ASSERT_EQ(mq_msgid_decode("ZA00000200002A9F0000000000001000", 32, &h, &off), -EINVAL);
}

TEST(test_msg_ipv6_roundtrip)
{
    struct mq_msg m, d;
    golden_msg(&m);
    m.born_host.v6 = 1;
    m.store_host.v6 = 1;
    for (int i = 0; i < 16; i++)
        m.store_host.addr[i] = (uint8_t)(i + 1);
    m.sysflag = MQ_SYSFLAG_TX_COMMIT;
    uint8_t buf[256];
    int64_t n = mq_msg_encode(&m, buf, sizeof(buf));
    ASSERT_EQ(n, 101 + 24);
    ASSERT_EQ(mq_msg_decode(buf, (size_t)n, 0, MQ_MSG_CHECK_CRC, &d), n);
    ASSERT_EQ(d.sysflag, MQ_SYSFLAG_TX_COMMIT | MQ_SYSFLAG_BORNHOST_V6 | MQ_SYSFLAG_STOREHOST_V6);
    ASSERT_EQ(d.store_ts, 1700000000123);
    ASSERT_EQ(mq_get_be64(buf + mq_msg_store_ts_off(d.sysflag)), 1700000000123);
    ASSERT_EQ(d.store_host.addr[15], 16);
    ASSERT_MEM_EQ(d.body, "hi", 2);
    char id[57];
    ASSERT_EQ(mq_msgid_encode(&d.store_host, 5, id), 56);
    ASSERT_MEM_EQ(id, "0102030405060708090A0B0C0D0E0F10", 32);
    char host[40];
    ASSERT_EQ(mq_msgid_host(&d.store_host, host), 40);
    ASSERT_MEM_EQ(host, id, 40);
    struct mq_host h;
    int64_t off;
    ASSERT_OK(mq_msgid_decode(id, 56, &h, &off));
    ASSERT_EQ(h.v6, 1);
    ASSERT_EQ(off, 5);
}

TEST(test_msg_decode_untrusted)
{
    uint8_t rec[256], bad[256];
    size_t n;
    struct mq_msg d;
    unhex(golden_hex, rec, &n);
    /* every truncation is an error, never a crash */
    for (size_t k = 0; k < n; k++)
        ASSERT(mq_msg_decode(rec, k, 0, MQ_MSG_CHECK_CRC, &d) < 0);
    /* every single-byte flip in the checked fields is rejected */
    size_t checked[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 84, 87, 88, 89, 90, 92, 93};
    for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
        memcpy(bad, rec, n);
        bad[checked[i]] ^= 0x40;
        ASSERT(mq_msg_decode(bad, n, 0, MQ_MSG_CHECK_CRC, &d) < 0);
    }
    /* random garbage never crashes */
    uint32_t x = 12345;
    for (int it = 0; it < 20000; it++) {
        memcpy(bad, rec, n);
        for (int j = 0; j < 3; j++) {
            x = x * 1103515245 + 12345;
            bad[(x >> 8) % n] = (uint8_t)(x >> 16);
        }
        (void)mq_msg_decode(bad, n, 0, MQ_MSG_CHECK_CRC, &d);
    }
    ASSERT_EQ(mq_msg_decode(rec, n, 1, 0, &d), MQ_ECORRUPT); /* body over max */
    memset(bad, 0, 16);
    ASSERT_EQ(mq_msg_decode(bad, 16, 0, 0, &d), -ENODATA);
    mq_put_be32(bad, 4000);
    mq_put_be32(bad + 4, MQ_MSG_MAGIC_BLANK);
    ASSERT_EQ(mq_msg_decode(bad, 8, 0, 0, &d), 4000);
    ASSERT_EQ(d.magic, MQ_MSG_MAGIC_BLANK);
}

TEST(test_props)
{
    struct mq_buf b;
    mq_buf_init(&b);
    ASSERT_OK(mq_props_add(&b, "TAGS", "TagA"));
    ASSERT_OK(mq_props_add(&b, "KEYS", "k1 k2"));
    ASSERT_EQ(mq_props_add(&b, "X", "a\x01"), -EINVAL);
    const char *v;
    size_t vl;
    ASSERT_OK(mq_props_get((char *)b.data, b.len, "KEYS", &v, &vl));
    ASSERT_EQ(vl, 5);
    ASSERT_MEM_EQ(v, "k1 k2", 5);
    ASSERT_OK(mq_props_get((char *)b.data, b.len, "TAGS", &v, &vl));
    ASSERT_MEM_EQ(v, "TagA", 4);
    ASSERT_EQ(mq_props_get((char *)b.data, b.len, "TAG", &v, &vl), -ENOENT);
    ASSERT_EQ(mq_props_get("abc", 3, "TAGS", &v, &vl), MQ_ECORRUPT);
    ASSERT_OK(mq_props_get("A\x01"
                           "b",
                           3, "A", &v, &vl)); /* no final separator */
    ASSERT_EQ(vl, 1);
    mq_buf_destroy(&b);
}

/* The pairs of props by a plain byte loop: NAME up to the next 0x01, VALUE up to the next 0x02
 * or the end; written to out as "name=value;" (mq_props_check adds: no NUL, no empty name). */
static int props_ref(const char *p, size_t len, char *out)
{
    size_t pos = 0;
    while (pos < len) {
        size_t sep = pos, end;
        while (sep < len && p[sep] != 1)
            sep++;
        if (sep == len)
            return -EBADMSG;
        for (end = sep + 1; end < len && p[end] != 2; end++)
            ;
        out += sprintf(out, "%.*s=%.*s;", (int)(sep - pos), p + pos, (int)(end - sep - 1),
                       p + sep + 1);
        pos = end < len ? end + 1 : len;
    }
    return 0;
}

static int props_collect(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    char **out = arg;
    *out += sprintf(*out, "%.*s=%.*s;", (int)nlen, name, (int)vlen, val);
    return 0;
}

/* mq_props_check and mq_props_foreach (which scan eight bytes at a time) agree with a byte loop
 * on every string of up to 7 bytes over {NUL, 0x01, 0x02, a, b} and on random longer ones. */
TEST(test_props_scan)
{
    static const char alpha[] = {0, 1, 2, 'a', 'b'};
    char buf[80], want[400], got[400];
    uint32_t seed = 12345;
    for (long k = 0; k < 200000; k++) {
        size_t len = 0;
        want[0] = got[0] = 0;
        if (k < 97656) { /* 5^0 + ... + 5^7: all the short ones */
            long x = k, first = 1;
            while (x >= first * 5 && len < 7)
                x -= first *= 5, len++;
            for (size_t i = 0; i < len; i++, x /= 5)
                buf[i] = alpha[x % 5];
        } else {
            seed = seed * 1103515245u + 12345u;
            len = 8 + (seed >> 16) % 64;
            for (size_t i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                uint32_t r = (seed >> 16) % 64;
                buf[i] = r < 3 ? alpha[r] : (r == 3 && k % 7 == 0) ? 0 : (char)('c' + r % 20);
            }
        }
        int ref = props_ref(buf, len, want);
        int has_nul = memchr(buf, 0, len) != NULL, empty_name = 0;
        if (ref == 0) /* an empty name: "=" at the start or after ";" */
            empty_name = want[0] == '=' || strstr(want, ";=") != NULL;
        int check = has_nul || empty_name ? -EBADMSG : ref;
        ASSERT_EQ(mq_props_check(buf, len), check);
        char *w = got;
        int rc = mq_props_foreach(buf, len, props_collect, &w);
        ASSERT_EQ(rc < 0, ref < 0);
        if (ref == 0 && !has_nul)
            ASSERT_STR_EQ(got, want);
    }
}

/* mq_str_copy: bounded by the destination and by max, always terminated. */
TEST(test_str_copy)
{
    char d[6];
    ASSERT_EQ(mq_str_copy(d, sizeof(d), "abc", 100), 3);
    ASSERT_STR_EQ(d, "abc");
    ASSERT_EQ(mq_str_copy(d, sizeof(d), "abcdefgh", 100), 5);
    ASSERT_STR_EQ(d, "abcde");
    ASSERT_EQ(mq_str_copy(d, sizeof(d), "abcdefgh", 2), 2);
    ASSERT_STR_EQ(d, "ab");
    ASSERT_EQ(mq_str_copy(d, 1, "abc", 100), 0);
    ASSERT_STR_EQ(d, "");
}

TEST(test_delay_levels_and_props_copy)
{
    int64_t ms[MQ_DELAY_LEVELS_MAX];
    ASSERT_EQ(mq_delay_levels_parse(MQ_DELAY_LEVELS_DEFAULT, ms, MQ_DELAY_LEVELS_MAX), 18);
    ASSERT_EQ(ms[0], 1000);
    ASSERT_EQ(ms[2], 10000);
    ASSERT_EQ(ms[4], 60000);
    ASSERT_EQ(ms[17], 7200000);
    ASSERT_EQ(mq_delay_levels_parse(" 2d  3s ", ms, 4), 2);
    ASSERT_EQ(ms[0], 2 * 86400000LL);
    const char *bad[] = {"", "  ", "5", "s", "1x", "1s2s", "-1s", "1.5s", "99999999999999s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(mq_delay_levels_parse(bad[i], ms, 4), -EINVAL);
    ASSERT_EQ(mq_delay_levels_parse("1s 1s 1s", ms, 2), -EINVAL); /* more levels than room */

    struct mq_buf b;
    mq_buf_init(&b);
    static const char in[] = "A\001a\002\001x\002DELAY\0013\002B\001b";
    const char *drop[] = {"DELAY"};
    ASSERT_OK(mq_props_copy_except(in, sizeof(in) - 1, drop, 1, &b));
    ASSERT_EQ(b.len, 8);
    ASSERT_MEM_EQ(b.data, "A\001a\002B\001b\002", 8); /* empty name dropped, end closed */
    ASSERT_EQ(mq_props_copy_except("noseparator", 11, NULL, 0, &b), -EBADMSG);
    mq_buf_destroy(&b);
}

TEST_MAIN(test_be_roundtrip, test_buf_growth, test_crc32_matches_rocketmq, test_crc32_equals_zlib,
          test_java_hash, test_topic_rules, test_conf_table, test_json_quote_int_keys, test_map,
          test_file_atomic, test_tags, test_batch_codec, test_strerror, test_msg_golden,
          test_msg_ipv6_roundtrip, test_msg_decode_untrusted, test_props, test_props_scan,
          test_str_copy, test_delay_levels_and_props_copy)

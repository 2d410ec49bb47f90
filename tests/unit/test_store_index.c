/* test_store_index.c — the store's key index (index/, RocketMQ IndexService): keys hashed from
 * the last topic's and key prefix's hashes found by queries that hash them whole, forced hash
 * collisions in a 3-slot table, rolls to new index files, no duplicates after a restart's
 * re-dispatch, and one dispatch span with more keys than it writes under one lock. */
#include <errno.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"
#include "tests/unit/store_test_util.h"

static void tiny_index(struct store_config *c)
{
    c->max_hash_slot_num = 3;
    c->max_index_num = 20; /* rolls to new index files */
}

/* The dispatcher hashes a key from the last topic's and the last key prefix's hashes; every
 * key must still be found by a query, which hashes "topic#key" whole: keys sharing all but
 * their last four bytes across two topics in turn, a non-ASCII prefix, a multi-byte character
 * across the last four bytes, keys of four bytes and fewer, and longer than the kept prefix. */
TEST(test_index_key_hashes)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    static const char *const keys[] = {
        "7F0000010001B4AC1EAA3F7A2B4C0001",
        "7F0000010001B4AC1EAA3F7A2B4C0002",
        "7F0000010001B4AC1EAA3F7A2B4C0003",
        "7F0000010001B4AC1EAA3F7A2B4C0004",
        "\xc3\xa9t\xc3\xa9-order-1",
        "\xc3\xa9t\xc3\xa9-order-2",
        "order-\xe2\x82\xac"
        "12",
        "order-1\xe2\x82\xac",
        "ab\xe2\x82\xac"
        "de", /* the last four bytes start inside the character */
        "abc",
        "abcd",
        "abcde",
        "a-key-longer-than-the-prefix-kept-for-it-which-is-sixty-bytes-at-most-0001",
        "a-key-longer-than-the-prefix-kept-for-it-which-is-sixty-bytes-at-most-0002"};
    const size_t nk = sizeof(keys) / sizeof(keys[0]);
    int64_t want[2][16];
    char props[160];
    for (size_t i = 0; i < nk; i++)
        for (int t = 0; t < 2; t++) {
            snprintf(props, sizeof(props), "UNIQ_KEY\x01%s\x02", keys[i]);
            struct mq_msg m = tu_msg(t ? "TopicB" : "TopicA", 0, "b", 1, props);
            struct store_put_result r;
            ASSERT_OK(store_put(s, &m, &r));
            want[t][i] = r.phys_offset;
        }
    ASSERT_OK(store_dispatch_wait(s));
    int64_t phys[4];
    for (size_t i = 0; i < nk; i++)
        for (int t = 0; t < 2; t++) {
            ASSERT_EQ(store_query_by_key(s, t ? "TopicB" : "TopicA", 6, keys[i], strlen(keys[i]), 0,
                                         INT64_MAX, phys, 4),
                      1);
            ASSERT_EQ(phys[0], want[t][i]);
        }
    tu_close(s, dir);
}

/* Find two keys whose hashes share a slot of a 3-slot table. */
TEST(test_index_collisions)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, tiny_index, &c, &s, &dir));
    struct store_put_result r;
    int64_t want[30];
    char props[64], key[16];
    for (int i = 0; i < 30; i++) {
        snprintf(props, sizeof(props), "KEYS\x01key%d common\x02", i);
        struct mq_msg m = tu_msg("I", 0, "b", 1, props);
        ASSERT_OK(store_put(s, &m, &r));
        want[i] = r.phys_offset;
    }
    ASSERT_OK(store_dispatch_wait(s));
    int64_t phys[64];
    for (int i = 0; i < 30; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);
        int got = store_query_by_key(s, "I", 1, key, (size_t)n, 0, INT64_MAX, phys, 64);
        ASSERT_EQ(got, 1);
        ASSERT_EQ(phys[0], want[i]);
    }
    int got = store_query_by_key(s, "I", 1, "common", 6, 0, INT64_MAX, phys, 64);
    ASSERT_EQ(got, 30);
    ASSERT_EQ(phys[0], want[29]); /* newest first */
    ASSERT_EQ(store_query_by_key(s, "I", 1, "common", 6, 0, INT64_MAX, phys, 7), 7);
    ASSERT_EQ(store_query_by_key(s, "J", 1, "common", 6, 0, INT64_MAX, phys, 64), 0);
    ASSERT_EQ(store_query_by_key(s, "I", 1, "common", 6, 0, 1000, phys, 64), 0);
    store_close(s);
    /* no duplicates after the restart re-dispatch */
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_query_by_key(s, "I", 1, "common", 6, 0, INT64_MAX, phys, 64), 30);
    tu_close(s, dir);
}

/* One batch of 10,000 messages with two keys each: more keys than one dispatch span writes
 * under one lock hold, queued ahead of their slot writes, across five index files. Every key
 * is found once, at its record; a restart indexes nothing twice. */
TEST(test_index_large_span)
{
    char *dir = tu_tmpdir();
    struct store_config c;
    struct store *s;
    tu_config(&c, dir, 4 << 20); /* 1,000 slots, 4,000 entries per index file */
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    enum { N = 10000 };
    static struct mq_msg msgs[N];
    static struct store_put_result res[N];
    static char props[N][40];
    for (int i = 0; i < N; i++) {
        snprintf(props[i], sizeof(props[i]), "KEYS\x01k%d all\x02", i);
        msgs[i] = tu_msg("Span", 0, "b", 1, props[i]);
    }
    int64_t end;
    ASSERT_EQ(store_put_batch(s, msgs, N, res, &end), N);
    ASSERT_OK(store_dispatch_wait(s));
    int64_t phys[64];
    char key[16];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i += 7) {
            int n = snprintf(key, sizeof(key), "k%d", i);
            ASSERT_EQ(store_query_by_key(s, "Span", 4, key, (size_t)n, 0, INT64_MAX, phys, 64), 1);
            ASSERT_EQ(phys[0], res[i].phys_offset);
        }
        ASSERT_EQ(store_query_by_key(s, "Span", 4, "all", 3, 0, INT64_MAX, phys, 64), 64);
        ASSERT_EQ(phys[0], res[N - 1].phys_offset); /* newest first */
        store_close(s);
        ASSERT_OK(store_open(&c, NULL, NULL, &s));
    }
    store_close(s);
    tu_rmrf(dir);
}

TEST_MAIN(test_index_key_hashes, test_index_collisions, test_index_large_span)

/* test_store_view.c — unit tests for the store's side of the merged multi-broker topic view
 * (store/view.c): store times never decrease in commitlog order (even when the last record
 * carries a time ahead of the clock), the watermark's promise (records stored before it are
 * readable; later ones are stored at or after it), the topic view by time, and the retention
 * horizon. */
#include <errno.h>
#include <stdint.h>

#include "common/mq_err.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"
#include "tests/unit/store_test_util.h"

static int64_t stored_at(struct store *s, int64_t phys)
{
    struct store_get_result *g = NULL;
    struct mq_msg m;
    if (store_get_by_phys(s, phys, &g) ||
        mq_msg_decode(g->msgs[0].data, g->msgs[0].len, 0, 0, &m) <= 0)
        m.store_ts = -1;
    store_release(s, g);
    return m.store_ts;
}

/* Every record stored before a watermark is readable at once, while dispatch runs behind. */
TEST(test_watermark_covers_dispatch)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(256 * 1024, NULL, &c, &s, &dir));
    int64_t prev_ts = 0, prev_w = 0;
    for (int i = 0; i < 3000; i++) {
        struct mq_msg m = tu_msg("W", i % 3, "abcdefgh", 8, NULL);
        struct store_put_result r;
        ASSERT_OK(store_put(s, &m, &r));
        int64_t ts = stored_at(s, r.phys_offset), w = store_watermark(s);
        ASSERT_GE(ts, prev_ts); /* commitlog order is store-time order */
        ASSERT_GE(ts, prev_w);  /* stored after the last watermark: not below it */
        ASSERT_GE(w, prev_w);
        if (ts < w) /* the promise: dispatched, so readable */
            ASSERT_GT(store_max_offset(s, "W", 1, i % 3), r.queue_offset);
        prev_ts = ts;
        prev_w = w;
    }
    ASSERT_OK(store_dispatch_wait(s));
    /* All dispatched: W is the clock + 1 or the floor — the last record's time, when it was
     * stamped ahead of the clock by an earlier watermark in the same millisecond. */
    ASSERT_GE(store_watermark(s), prev_ts);
    tu_close(s, dir);
}

/* A record stored "in the future" (a clock that stepped back since): later records and the
 * watermark do not go below it, also after a restart. */
TEST(test_store_time_floor)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    struct mq_msg m = tu_msg("F", 0, "x", 1, NULL);
    struct store_put_result r;
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_OK(store_dispatch_wait(s));
    store_close(s);
    /* Move the record's STORETIMESTAMP (FORMATS.md 1.1, offset 56; not under the body CRC) one
     * hour ahead, as if the clock had gone back an hour since. */
    int64_t future = mq_now_ms() + 3600 * 1000;
    char path[600];
    snprintf(path, sizeof(path), "%s/commitlog/%020d", dir, 0);
    FILE *f = fopen(path, "r+b");
    ASSERT(f != NULL);
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)future >> (56 - 8 * i));
    ASSERT_OK(fseek(f, 56, SEEK_SET));
    ASSERT_EQ(fwrite(be, 1, 8, f), 8);
    ASSERT_OK(fclose(f));
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(stored_at(s, 0), future);
    ASSERT_GE(store_watermark(s), future);
    m = tu_msg("F", 1, "y", 1, NULL);
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_GE(stored_at(s, r.phys_offset), future);
    tu_close(s, dir);
}

/* The topic view by time: offsets are the rendered bytes stored before t, summed over queues. */
TEST(test_topic_at_time)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    int64_t off, next;
    ASSERT_OK(store_topic_at_time(s, "T", 1, 2, 0, &off, &next, NULL));
    ASSERT_EQ(off, 0);
    ASSERT_EQ(next, -1);
    ASSERT_EQ(store_newest_time(s, "T", 1, 0, INT64_MAX), -1);
    int64_t ts[30], ends[30], phys[30], total = 0;
    for (int i = 0; i < 30; i++) {
        struct mq_msg m = tu_msg("T", i % 2, "0123456789", (uint32_t)(i % 10), NULL);
        struct store_put_result r;
        ASSERT_OK(store_put(s, &m, &r));
        ts[i] = stored_at(s, r.phys_offset);
        phys[i] = r.phys_offset;
        total += i % 10 + 1;
        ends[i] = total;
        if (i % 5 == 4)
            usleep(3000); /* groups of five share a millisecond or not: both cases occur */
    }
    ASSERT_OK(store_dispatch_wait(s));
    for (int i = 0; i < 30; i++) {
        /* bytes of the records stored before ts[i]: those with a smaller time */
        int64_t want = 0;
        for (int j = 0; j < 30; j++)
            if (ts[j] < ts[i])
                want = ends[j];
        int64_t prev, want_prev = -1;
        for (int j = 0; j < 30; j++)
            if (ts[j] < ts[i] && ts[j] > want_prev)
                want_prev = ts[j];
        ASSERT_OK(store_topic_at_time(s, "T", 1, 2, ts[i], &off, &next, &prev));
        ASSERT_EQ(off, want);
        ASSERT_EQ(next, ts[i]);
        ASSERT_EQ(prev, want_prev); /* the newest message stored before ts[i] */
        /* The newest of queue i % 2 before record i: record i - 2 (the queues alternate). */
        ASSERT_EQ(store_newest_time(s, "T", 1, i % 2, phys[i]), i >= 2 ? ts[i - 2] : -1);
    }
    ASSERT_EQ(store_newest_time(s, "T", 1, 0, INT64_MAX), ts[28]);
    ASSERT_EQ(store_newest_time(s, "T", 1, 1, INT64_MAX), ts[29]);
    ASSERT_EQ(store_newest_time(s, "T", 1, 2, INT64_MAX), -1); /* no such queue */
    /* The listing: each distinct time once, with the offset of its first message. */
    int64_t times[64], offs[64], end;
    int n = store_topic_times(s, "T", 1, 2, 0, ts[29] + 1, 64, times, offs, &end);
    ASSERT_GT(n, 5);
    ASSERT_EQ(times[0], ts[0]);
    ASSERT_EQ(offs[0], 0);
    ASSERT_EQ(times[n - 1], ts[29]);
    ASSERT_EQ(end, total);
    for (int k = 0; k < n; k++) {
        ASSERT_OK(store_topic_at_time(s, "T", 1, 2, times[k], &off, &next, NULL));
        ASSERT_EQ(offs[k], off);
        ASSERT_EQ(next, times[k]);
        if (k)
            ASSERT_GT(times[k], times[k - 1]);
    }
    /* from the middle, at most 2, below a bound */
    ASSERT_EQ(store_topic_times(s, "T", 1, 2, times[1], INT64_MAX, 2, times, offs, &end), 2);
    ASSERT_OK(store_topic_at_time(s, "T", 1, 2, times[1] + 1, &off, &next, NULL));
    ASSERT_EQ(end, off);
    ASSERT_EQ(store_topic_times(s, "T", 1, 2, 0, ts[0], 64, times, offs, &end), 0);
    ASSERT_EQ(end, 0);
    ASSERT_OK(store_topic_at_time(s, "T", 1, 2, ts[29] + 1, &off, &next, NULL));
    ASSERT_EQ(off, total);
    ASSERT_EQ(next, -1);
    ASSERT_OK(store_topic_at_time(s, "T", 1, 1, ts[29] + 1, &off, &next, NULL)); /* queue 0 only */
    ASSERT_LT(off, total);
    ASSERT_EQ(store_retained_since(s), 0);
    tu_close(s, dir);
}

/* The retention horizon: 0 until the commitlog loses a file, then the store time of the first
 * retained record, at or after every deleted one. */
TEST(test_retained_since)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(4096, NULL, &c, &s, &dir));
    static char body[500];
    memset(body, 'b', sizeof(body));
    int64_t last_ts = 0;
    for (int i = 0; i < 40; i++) {
        struct mq_msg m = tu_msg("H", 0, body, sizeof(body), NULL);
        struct store_put_result r;
        ASSERT_OK(store_put(s, &m, &r));
        last_ts = stored_at(s, r.phys_offset);
    }
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_retained_since(s), 0);
    ASSERT_GT(store_clean_now(s, 1), 0);
    int64_t min = store_clog_min_offset(s), since = store_retained_since(s);
    ASSERT_GT(min, 0);
    ASSERT_EQ(since, stored_at(s, min));
    ASSERT_LE(since, last_ts);
    int64_t base, size, off, next;
    ASSERT_OK(store_rendered_size(s, "H", 1, 0, &base, &size));
    ASSERT_OK(store_topic_at_time(s, "H", 1, 1, since, &off, &next, NULL));
    ASSERT_GE(off, base); /* the retained part only */
    tu_close(s, dir);
}

TEST_MAIN(test_watermark_covers_dispatch, test_store_time_floor, test_topic_at_time,
          test_retained_since)

/* test_store.c — unit tests for store/: put/get round trips, file roll at the boundary, many
 * queues, consume-queue lookups, the rendered-bytes index (incl. compressed bodies), dispatch
 * after restart, the arrival listener and flush notifications. The key index:
 * test_store_index.c; recovery, retention and fault injection: test_store_recovery.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <zlib.h>
#include <zstd.h>

#include "common/mq_err.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"
#include "tests/unit/store_test_util.h"

TEST(test_put_get_roundtrip)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    const char *props = "TAGS\x01TagA\x02KEYS\x01k1 k2\x02";
    struct mq_msg m = tu_msg("TopicA", 2, "hello", 5, props);
    m.flag = 9;
    m.sysflag = MQ_SYSFLAG_TX_NOT;
    m.reconsume_times = 3;
    m.prepared_tx_offset = 77;
    struct store_put_result r;
    int64_t t0 = mq_now_ms();
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.phys_offset, 0);
    ASSERT_EQ(r.queue_offset, 0);
    ASSERT_EQ(r.wrote_bytes, mq_msg_record_size(&m));
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 1);
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "TopicA", 6, 2), 2);
    ASSERT_EQ(store_min_offset(s, "TopicA", 6, 2), 0);

    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "TopicA", 6, 2, 0, 32, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_FOUND);
    ASSERT_EQ(g->count, 2);
    ASSERT_EQ(g->next_offset, 2);
    struct mq_msg d;
    ASSERT_EQ(mq_msg_decode(g->msgs[1].data, g->msgs[1].len, 0, MQ_MSG_CHECK_CRC, &d),
              g->msgs[1].len);
    ASSERT_EQ(d.queue_id, 2);
    ASSERT_EQ(d.flag, 9);
    ASSERT_EQ(d.queue_offset, 1);
    ASSERT_EQ(d.phys_offset, g->msgs[1].phys_offset);
    ASSERT_EQ(d.born_ts, 1700000000000);
    ASSERT_EQ(d.born_host.port, 5555);
    ASSERT_GE(d.store_ts, t0);
    ASSERT_EQ(d.store_host.port, 10911);
    ASSERT_EQ(d.reconsume_times, 3);
    ASSERT_EQ(d.prepared_tx_offset, 77);
    ASSERT_MEM_EQ(d.body, "hello", 5);
    ASSERT_EQ(d.topic_len, 6);
    ASSERT_EQ(d.props_len, strlen(props));
    store_release(s, g);

    /* statuses */
    ASSERT_OK(store_get_messages(s, "TopicA", 6, 2, 2, 32, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_OFFSET_OVERFLOW_ONE);
    ASSERT_EQ(g->next_offset, 2);
    store_release(s, g);
    ASSERT_OK(store_get_messages(s, "TopicA", 6, 2, 9, 32, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_OFFSET_OVERFLOW_BADLY);
    store_release(s, g);
    ASSERT_OK(store_get_messages(s, "Nope", 4, 0, 0, 32, 1 << 20, NULL, 0, &g));
    ASSERT_EQ(g->status, STORE_NO_MATCHED_LOGIC_QUEUE);
    store_release(s, g);
    /* tag filter */
    int64_t tb = mq_java_hash("TagB", 4), ta = mq_java_hash("TagA", 4);
    ASSERT_OK(store_get_messages(s, "TopicA", 6, 2, 0, 32, 1 << 20, &tb, 1, &g));
    ASSERT_EQ(g->status, STORE_NO_MATCHED_MESSAGE);
    ASSERT_EQ(g->next_offset, 2);
    store_release(s, g);
    ASSERT_OK(store_get_messages(s, "TopicA", 6, 2, 0, 32, 1 << 20, &ta, 1, &g));
    ASSERT_EQ(g->count, 2);
    store_release(s, g);
    /* by physical offset, and the byte limit (always at least one) */
    ASSERT_OK(store_get_by_phys(s, r.phys_offset, &g));
    ASSERT_EQ(g->msgs[0].len, r.wrote_bytes);
    store_release(s, g);
    ASSERT_EQ(store_get_by_phys(s, 1 << 20, &g), MQ_ENOTFOUND);
    ASSERT_OK(store_get_messages(s, "TopicA", 6, 2, 0, 32, 10, NULL, 0, &g));
    ASSERT_EQ(g->count, 1);
    ASSERT_EQ(g->next_offset, 1);
    store_release(s, g);
    /* key index */
    int64_t phys[8];
    ASSERT_EQ(store_query_by_key(s, "TopicA", 6, "k2", 2, 0, INT64_MAX, phys, 8), 2);
    ASSERT_EQ(phys[0], r.phys_offset);
    ASSERT_EQ(phys[1], 0);
    ASSERT_EQ(store_query_by_key(s, "TopicA", 6, "k3", 2, 0, INT64_MAX, phys, 8), 0);
    /* invalid messages */
    struct mq_msg bad = tu_msg("T", 0, "x", 1, NULL);
    bad.topic_len = 0;
    ASSERT_EQ(store_put(s, &bad, &r), -EINVAL);
    bad = tu_msg("../x", 0, "x", 1, NULL);
    ASSERT_EQ(store_put(s, &bad, &r), -EINVAL);
    static uint8_t big[70 * 1024];
    bad = tu_msg("T", 0, big, sizeof(big), NULL);
    ASSERT_EQ(store_put(s, &bad, &r), -EMSGSIZE);
    tu_close(s, dir);
}

/* A record that leaves exactly 8 bytes fits; one byte more rolls with a blank record. */
TEST(test_roll_at_boundary)
{
    struct store_config c;
    struct store *s;
    char *dir;
    const int64_t fsize = 4096;
    ASSERT_OK(tu_open(fsize, NULL, &c, &s, &dir));
    static uint8_t body[4096];
    struct mq_msg m = tu_msg("T", 0, body, 0, NULL);
    int64_t fixed = mq_msg_record_size(&m); /* 92 */
    struct store_put_result r;
    m.body_len = (uint32_t)(fsize - 8 - fixed);
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.phys_offset, 0);
    ASSERT_EQ(r.wrote_bytes, fsize - 8);
    m.body_len = 0;
    ASSERT_OK(store_put(s, &m, &r)); /* 92 bytes, only 8 left: next file */
    ASSERT_EQ(r.phys_offset, fsize);
    m.body_len = (uint32_t)(fsize - 8 - fixed - fixed + 1); /* leaves 7: does not fit */
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.phys_offset, 2 * fsize);
    int64_t third_end = r.phys_offset + r.wrote_bytes;
    m.body_len = (uint32_t)(fsize - 8 - fixed + 1); /* too big for any file */
    ASSERT_EQ(store_put(s, &m, &r), -EMSGSIZE);
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "T", 1, 0), 3);
    struct store_get_result *g;
    ASSERT_OK(store_get_messages(s, "T", 1, 0, 0, 32, 1 << 30, NULL, 0, &g));
    ASSERT_EQ(g->count, 3);
    ASSERT_EQ(g->msgs[1].phys_offset, fsize);
    ASSERT_EQ(g->msgs[2].phys_offset, 2 * fsize);
    store_release(s, g);
    store_close(s);
    /* the blank records survive a restart and reads cross them */
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_clog_max_offset(s), third_end);
    ASSERT_OK(store_put(s, &m, &r) == -EMSGSIZE ? 0 : -1);
    m.body_len = 10;
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 3);
    tu_close(s, dir);
}

struct arrivals {
    atomic_int calls;
    atomic_llong last_max;
};

static void on_arrival(void *arg, const char *topic, size_t tlen, int qid, int64_t max)
{
    struct arrivals *a = arg;
    (void)topic;
    (void)tlen;
    (void)qid;
    atomic_fetch_add(&a->calls, 1);
    atomic_store(&a->last_max, max);
}

TEST(test_many_queues_batch)
{
    char *dir = tu_tmpdir();
    struct store_config c;
    struct store *s;
    struct arrivals a = {0};
    tu_config(&c, dir, 256 * 1024);
    ASSERT_OK(store_open(&c, on_arrival, &a, &s));
    enum { NT = 5, NQ = 8, PER = 60 };
    char topics[NT][16];
    for (int t = 0; t < NT; t++)
        snprintf(topics[t], sizeof(topics[t]), "topic-%d", t);
    static struct mq_msg msgs[NT * NQ];
    static struct store_put_result res[NT * NQ];
    static char bodies[NT * NQ][32];
    for (int round = 0; round < PER; round++) {
        for (int t = 0; t < NT; t++)
            for (int q = 0; q < NQ; q++) {
                int k = t * NQ + q;
                int n = snprintf(bodies[k], sizeof(bodies[k]), "%s/%d/%d", topics[t], q, round);
                msgs[k] = tu_msg(topics[t], q, bodies[k], (uint32_t)n, NULL);
            }
        int64_t end;
        ASSERT_EQ(store_put_batch(s, msgs, NT * NQ, res, &end), NT * NQ);
        for (int k = 0; k < NT * NQ; k++)
            ASSERT_EQ(res[k].queue_offset, round);
    }
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_GE(atomic_load(&a.calls), NT * NQ);
    for (int t = 0; t < NT; t++)
        for (int q = 0; q < NQ; q++) {
            ASSERT_EQ(store_max_offset(s, topics[t], strlen(topics[t]), q), PER);
            struct store_get_result *g;
            ASSERT_OK(store_get_messages(s, topics[t], strlen(topics[t]), q, 17, 5, 1 << 20, NULL,
                                         0, &g));
            ASSERT_EQ(g->count, 5);
            struct mq_msg d;
            ASSERT(mq_msg_decode(g->msgs[0].data, g->msgs[0].len, 0, 1, &d) > 0);
            char want[32];
            int n = snprintf(want, sizeof(want), "%s/%d/17", topics[t], q);
            ASSERT_EQ(d.body_len, n);
            ASSERT_MEM_EQ(d.body, want, (size_t)n);
            store_release(s, g);
        }
    struct store_stats st;
    store_get_stats(s, &st);
    ASSERT_EQ(st.puts, NT * NQ * PER);
    ASSERT_EQ(st.queues, NT * NQ);
    ASSERT_EQ(st.dispatch_lag, 0);
    tu_close(s, dir);
}

TEST(test_large_batch_and_inline_dispatch)
{
    /* A batch of ~0.9 MiB of records is written and published in parts (the dispatcher may
     * start on it before the put returns): every message lands once, in order. Then a small put
     * made under store_dispatch_defer is visible when store_dispatch_now returns. */
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(4 << 20, NULL, &c, &s, &dir));
    enum { N = 3000 };
    static struct mq_msg msgs[N];
    static struct store_put_result res[N];
    static char bodies[N][200];
    for (int i = 0; i < N; i++) {
        memset(bodies[i], 'a' + i % 26, sizeof(bodies[i]));
        snprintf(bodies[i], sizeof(bodies[i]), "m%d.", i);
        msgs[i] = tu_msg("Big", 1, bodies[i], sizeof(bodies[i]), NULL);
    }
    int64_t end;
    ASSERT_EQ(store_put_batch(s, msgs, N, res, &end), N);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(res[i].queue_offset, i);
        ASSERT_EQ(res[i].phys_offset + res[i].wrote_bytes,
                  i + 1 < N ? res[i + 1].phys_offset : end);
    }
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Big", 3, 1), N);
    for (int i = 0; i < N; i += 1499) {
        struct store_get_result *g;
        struct mq_msg d;
        ASSERT_OK(store_get_messages(s, "Big", 3, 1, i, 1, 1 << 20, NULL, 0, &g));
        ASSERT_EQ(g->count, 1);
        ASSERT(mq_msg_decode(g->msgs[0].data, g->msgs[0].len, 0, MQ_MSG_CHECK_CRC, &d) > 0);
        ASSERT_EQ(d.body_len, sizeof(bodies[i]));
        ASSERT_MEM_EQ(d.body, bodies[i], sizeof(bodies[i]));
        store_release(s, g);
    }
    struct mq_msg one = tu_msg("Big", 1, "tail", 4, NULL);
    store_dispatch_defer(s);
    ASSERT_EQ(store_put_batch(s, &one, 1, res, &end), 1);
    ASSERT_OK(store_dispatch_now(s));
    ASSERT_EQ(store_max_offset(s, "Big", 3, 1), N + 1);
    ASSERT_EQ(store_dispatched_offset(s), end);
    tu_close(s, dir);
}

static void cq_files_of_50(struct store_config *c)
{
    c->mapped_file_size_consume_queue = 20 * 50; /* 50 entries per file */
}

TEST(test_cq_files_and_time_lookup)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, cq_files_of_50, &c, &s, &dir));
    struct store_put_result r;
    int64_t ts_mid = 0;
    for (int i = 0; i < 230; i++) {
        struct mq_msg m = tu_msg("Q", 1, "0123456789", 10, NULL);
        if (i == 120) {
            usleep(20000);
            ts_mid = mq_now_ms();
        }
        ASSERT_OK(store_put(s, &m, &r));
    }
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Q", 1, 1), 230);
    int64_t o = store_offset_by_time(s, "Q", 1, 1, ts_mid);
    ASSERT_EQ(o, 120);
    ASSERT_EQ(store_offset_by_time(s, "Q", 1, 1, 0), 0);
    ASSERT_EQ(store_offset_by_time(s, "Q", 1, 1, INT64_MAX), 230);
    ASSERT_GT(store_earliest_time(s, "Q", 1, 1), 0);
    struct store_get_result *g; /* across CQ file boundaries */
    ASSERT_OK(store_get_messages(s, "Q", 1, 1, 45, 100, 1 << 30, NULL, 0, &g));
    ASSERT_EQ(g->count, 100);
    ASSERT_EQ(g->msgs[99].queue_offset, 144);
    store_release(s, g);
    store_close(s);
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    ASSERT_EQ(store_max_offset(s, "Q", 1, 1), 230);
    ASSERT_OK(store_put(s, &(struct mq_msg){0}, &r) == -EINVAL ? 0 : -1);
    struct mq_msg m = tu_msg("Q", 1, "x", 1, NULL);
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 230);
    tu_close(s, dir);
}

static void cq_files_of_16(struct store_config *c)
{
    c->mapped_file_size_consume_queue = 20 * 16;
}

TEST(test_rendered_index)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, cq_files_of_16, &c, &s, &dir));
    /* plain bodies of length i % 7 */
    static char plain[64];
    memset(plain, 'a', sizeof(plain));
    int64_t ends[40], total = 0;
    struct store_put_result r;
    for (int i = 0; i < 40; i++) {
        struct mq_msg m = tu_msg("R", 0, plain, (uint32_t)(i % 7), NULL);
        ASSERT_OK(store_put(s, &m, &r));
        total += i % 7 + 1;
        ends[i] = total;
    }
    /* a zstd body and a zlib body count at their uncompressed size */
    static char text[3000];
    memset(text, 'z', sizeof(text));
    static uint8_t zs[4096], zl[4096];
    size_t zsn = ZSTD_compress(zs, sizeof(zs), text, sizeof(text), 1);
    uLongf zln = sizeof(zl);
    ASSERT_OK(compress(zl, &zln, (const Bytef *)text, sizeof(text)));
    struct mq_msg m = tu_msg("R", 0, zs, (uint32_t)zsn, NULL);
    m.sysflag = MQ_SYSFLAG_COMPRESSED | MQ_SYSFLAG_COMPRESS_ZSTD;
    ASSERT_OK(store_put(s, &m, &r));
    m = tu_msg("R", 0, zl, (uint32_t)zln, NULL);
    m.sysflag = MQ_SYSFLAG_COMPRESSED; /* 4.x: zlib */
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_OK(store_dispatch_wait(s));
    int64_t base, size;
    ASSERT_OK(store_rendered_size(s, "R", 1, 0, &base, &size));
    ASSERT_EQ(base, 0);
    ASSERT_EQ(size, total + 2 * 3001);
    int64_t qo, within, fo;
    for (int i = 0; i < 40; i++) {
        int64_t start = i ? ends[i - 1] : 0;
        ASSERT_OK(store_render_offset(s, "R", 1, 0, i, &fo));
        ASSERT_EQ(fo, start);
        for (int64_t b = start; b < ends[i]; b++) {
            ASSERT_OK(store_render_find(s, "R", 1, 0, b, &qo, &within));
            ASSERT_EQ(qo, i);
            ASSERT_EQ(within, b - start);
        }
    }
    ASSERT_OK(store_render_find(s, "R", 1, 0, total + 3001 + 5, &qo, &within));
    ASSERT_EQ(qo, 41);
    ASSERT_EQ(within, 5);
    ASSERT_EQ(store_render_find(s, "R", 1, 0, size, &qo, &within), -ENXIO);
    ASSERT_OK(store_render_offset(s, "R", 1, 0, 42, &fo));
    ASSERT_EQ(fo, size);
    store_close(s);
    /* survives a restart */
    ASSERT_OK(store_open(&c, NULL, NULL, &s));
    int64_t size2;
    ASSERT_OK(store_rendered_size(s, "R", 1, 0, &base, &size2));
    ASSERT_EQ(size2, size);
    tu_close(s, dir);
}

static void on_flushed(void *arg, int64_t offset, int status)
{
    (void)offset;
    atomic_store((atomic_int *)arg, status == 0 ? 1 : status);
}

TEST(test_sync_flush_and_callbacks)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, tu_sync_flush, &c, &s, &dir));
    struct mq_msg m = tu_msg("F", 0, "x", 1, NULL);
    struct store_put_result r;
    int64_t end;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    ASSERT_OK(store_wait_flushed(s, end));
    ASSERT_EQ(store_when_flushed(s, end, on_flushed, NULL), 1);
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, &end), 1);
    atomic_int flag = 0;
    int rc = store_when_flushed(s, end, on_flushed, &flag);
    ASSERT(rc == 0 || rc == 1);
    for (int i = 0; rc == 0 && i < 500 && !atomic_load(&flag); i++)
        usleep(2000);
    ASSERT(rc == 1 || atomic_load(&flag) == 1);
    tu_close(s, dir);
}

/* SYNC_FLUSH with many appenders at once, each waiting for its own message or asking for a
 * callback: group commits run on several threads; every wait returns durable, every callback
 * fires once with success, and nothing waits past the durable end. */
struct sync_worker {
    struct store *s;
    int fails;
    atomic_int callbacks;
};

static void count_flushed(void *arg, int64_t offset, int status)
{
    struct sync_worker *w = arg;
    (void)offset;
    if (status == 0)
        atomic_fetch_add(&w->callbacks, 1);
}

static void *sync_appender(void *arg)
{
    struct sync_worker *w = arg;
    struct mq_msg m = tu_msg("G", 0, "payload", 7, NULL);
    for (int i = 0; i < 100; i++) {
        struct store_put_result r;
        int64_t end;
        if (store_put_batch(w->s, &m, 1, &r, &end) != 1) {
            w->fails++;
            continue;
        }
        if (i % 2) {
            int rc = store_when_flushed(w->s, end, count_flushed, w);
            if (rc == 1)
                atomic_fetch_add(&w->callbacks, 1);
            else if (rc != 0)
                w->fails++;
        } else {
            struct store_stats st;
            int rc = store_wait_flushed(w->s, end);
            store_get_stats(w->s, &st);
            w->fails += rc != 0 || st.flushed < end;
        }
    }
    return NULL;
}

TEST(test_sync_flush_many_appenders)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(1 << 20, tu_sync_flush, &c, &s, &dir));
    enum { N = 16 };
    struct sync_worker w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i].s = s;
        w[i].fails = 0;
        atomic_init(&w[i].callbacks, 0);
        ASSERT_EQ(pthread_create(&t[i], NULL, sync_appender, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(w[i].fails, 0);
        for (int k = 0; k < 500 && atomic_load(&w[i].callbacks) < 50; k++)
            usleep(2000);
        ASSERT_EQ(atomic_load(&w[i].callbacks), 50);
    }
    struct store_stats st;
    store_get_stats(s, &st);
    ASSERT_EQ(st.puts, N * 100);
    ASSERT(st.flushed >= st.clog_max);
    tu_close(s, dir);
}

/* Pages [from, to) of the store's first commitlog file, as the page cache holds them: polls
 * until all are resident (the warm thread brings them in) or 5 s pass. */
static int clog_resident(const char *dir, size_t size, size_t from, size_t to)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/commitlog/%020d", dir, 0);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return 0;
    size_t npages = (to - from) / 4096;
    unsigned char *vec = malloc(npages);
    int all = 0;
    for (int i = 0; i < 500 && !all; i++) {
        if (i)
            usleep(10000);
        if (mincore(map + from, to - from, vec) < 0)
            break;
        all = 1;
        for (size_t k = 0; k < npages && all; k++)
            all = vec[k] & 1;
    }
    free(vec);
    munmap(map, size);
    return all;
}

/* commitLogWarmAhead: the bytes past the write position are in memory before the writer gets
 * there, in both flush modes (asserted on pages no read-ahead of one record reaches). */
static void warm_12m(struct store_config *c)
{
    c->commit_log_warm_ahead = 12 << 20;
}

static void warm_12m_sync(struct store_config *c)
{
    warm_12m(c);
    tu_sync_flush(c);
}

TEST(test_warm_ahead)
{
    for (int sync = 0; sync < 2; sync++) {
        struct store_config c;
        struct store *s;
        char *dir;
        ASSERT_OK(tu_open(32 << 20, sync ? warm_12m_sync : warm_12m, &c, &s, &dir));
        struct mq_msg m = tu_msg("W", 0, "x", 1, NULL);
        struct store_put_result r;
        ASSERT_EQ(store_put_batch(s, &m, 1, &r, NULL), 1);
        ASSERT(clog_resident(dir, 32 << 20, 8 << 20, 12 << 20));
        tu_close(s, dir);
    }
    /* the default (-1) warms 16 MiB with SYNC_FLUSH */
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(32 << 20, tu_sync_flush, &c, &s, &dir));
    ASSERT_EQ(c.commit_log_warm_ahead, -1);
    struct mq_msg m = tu_msg("W", 0, "x", 1, NULL);
    struct store_put_result r;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, NULL), 1);
    ASSERT(clog_resident(dir, 32 << 20, 12 << 20, 16 << 20));
    tu_close(s, dir);
}

/* commitLogWarmIdle: with the writer quiet, the pages from a quarter of the reserve past the
 * write position to its end are read in by the idle thread. */
static void warm_idle_24m(struct store_config *c)
{
    c->commit_log_warm_idle = 24 << 20;
}

TEST(test_warm_idle)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(32 << 20, warm_idle_24m, &c, &s, &dir));
    struct mq_msg m = tu_msg("W", 0, "x", 1, NULL);
    struct store_put_result r;
    ASSERT_EQ(store_put_batch(s, &m, 1, &r, NULL), 1);        /* makes the first file */
    ASSERT(clog_resident(dir, 32 << 20, 12 << 20, 24 << 20)); /* past what one append reads */
    tu_close(s, dir);
}

TEST(test_delete_topic)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, NULL, &c, &s, &dir));
    struct store_put_result r;
    struct mq_msg m = tu_msg("Del", 0, "x", 1, NULL);
    for (int i = 0; i < 5; i++)
        ASSERT_OK(store_put(s, &m, &r));
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Del", 3, 0), 5);
    ASSERT_OK(store_delete_topic(s, "Del", 3));
    ASSERT_EQ(store_max_offset(s, "Del", 3, 0), 0);
    ASSERT_EQ(store_delete_topic(s, "Del", 3), MQ_ENOTFOUND);
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 0);
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Del", 3, 0), 1);
    tu_close(s, dir);
}

static void bad_flush_type(struct store_config *c)
{
    snprintf(c->flush_disk_type, sizeof(c->flush_disk_type), "SOMETIMES");
}

TEST(test_config_table)
{
    struct store_config c;
    char err[256];
    store_config_defaults(&c);
    ASSERT(c.mapped_file_size_commit_log == 1073741824);
    ASSERT_EQ(c.mapped_file_size_consume_queue, 6000000);
    ASSERT_STR_EQ(c.flush_disk_type, "ASYNC_FLUSH");
    ASSERT_EQ(c.flush_interval_commit_log, 500);
    ASSERT_EQ(c.flush_commit_log_least_pages, 4);
    ASSERT_EQ(c.sync_flush_timeout, 5000);
    ASSERT_EQ(c.file_reserved_time, 72);
    ASSERT_STR_EQ(c.delete_when, "04");
    ASSERT_EQ(c.disk_max_used_space_ratio, 75);
    ASSERT_EQ(c.max_message_size, 4194304);
    ASSERT_EQ(c.max_hash_slot_num, 5000000);
    ASSERT_EQ(c.max_index_num, 20000000);
    ASSERT_OK(mq_conf_set(store_conf_keys, store_conf_nkeys, &c, "flushDiskType", "SYNC_FLUSH", err,
                          sizeof(err)));
    ASSERT_STR_EQ(c.flush_disk_type, "SYNC_FLUSH");
    ASSERT_OK(mq_conf_set(store_conf_keys, store_conf_nkeys, &c, "mappedFileSizeCommitLog", "65536",
                          err, sizeof(err)));
    ASSERT_EQ(c.mapped_file_size_commit_log, 65536);
    ASSERT_OK(store_config_set(&c, "fileReservedTime", "48", err, sizeof(err)));
    ASSERT_EQ(c.file_reserved_time, 48);
    ASSERT_EQ(store_config_set(&c, "listenPort", "1", err, sizeof(err)), -ENOENT);
    ASSERT_EQ(mq_conf_set(store_conf_keys, store_conf_nkeys, &c, "diskMaxUsedSpaceRatio", "99", err,
                          sizeof(err)),
              -EINVAL);
    /* a bad flush type is refused at open */
    struct store *s;
    char *dir;
    ASSERT_EQ(tu_open(4096, bad_flush_type, &c, &s, &dir), -EINVAL);
    tu_rmrf(dir);
}

static void ipv6_store_host(struct store_config *c)
{
    c->store_host.v6 = 1;
    c->store_host.addr[15] = 1;
}

/* PREPARED and ROLLBACK records take no queue offset and get no consume-queue entry; an IPv6
 * store host is recorded as one. */
TEST(test_transactions_and_ipv6)
{
    struct store_config c;
    struct store *s;
    char *dir;
    ASSERT_OK(tu_open(64 * 1024, ipv6_store_host, &c, &s, &dir));
    struct store_put_result r;
    struct mq_msg m = tu_msg("Tx", 0, "half", 4, NULL);
    m.sysflag = MQ_SYSFLAG_TX_PREPARED;
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 0);
    int64_t prepared = r.phys_offset;
    m.sysflag = MQ_SYSFLAG_TX_ROLLBACK;
    ASSERT_OK(store_put(s, &m, &r));
    m.sysflag = MQ_SYSFLAG_TX_COMMIT;
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 0);
    m.sysflag = 0;
    ASSERT_OK(store_put(s, &m, &r));
    ASSERT_EQ(r.queue_offset, 1);
    ASSERT_OK(store_dispatch_wait(s));
    ASSERT_EQ(store_max_offset(s, "Tx", 2, 0), 2);
    struct store_get_result *g;
    ASSERT_OK(store_get_by_phys(s, prepared, &g)); /* still readable by offset */
    struct mq_msg d;
    ASSERT(mq_msg_decode(g->msgs[0].data, g->msgs[0].len, 0, MQ_MSG_CHECK_CRC, &d) > 0);
    ASSERT_EQ(d.sysflag & MQ_SYSFLAG_TX_MASK, MQ_SYSFLAG_TX_PREPARED);
    ASSERT_EQ(d.store_host.v6, 1);
    ASSERT_EQ(d.store_host.addr[15], 1);
    store_release(s, g);
    store_close(s);
    ASSERT_OK(store_open(&c, NULL, NULL, &s)); /* and after recovery */
    ASSERT_EQ(store_max_offset(s, "Tx", 2, 0), 2);
    tu_close(s, dir);
}

TEST_MAIN(test_config_table, test_transactions_and_ipv6, test_put_get_roundtrip,
          test_roll_at_boundary, test_many_queues_batch, test_cq_files_and_time_lookup,
          test_rendered_index, test_sync_flush_and_callbacks, test_delete_topic,
          test_large_batch_and_inline_dispatch, test_warm_ahead, test_warm_idle,
          test_sync_flush_many_appenders)

/* test_broker.c — unit tests for the broker's persistent metadata: topic configs, subscription
 * groups and consumer offsets (RocketMQ's JSON files), including reload and fastjson input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker_int.h"
#include "broker/consumers.h"
#include "broker/filters.h"
#include "broker/hold.h"
#include "broker/meta.h"
#include "common/mq_bytes.h"
#include "common/mq_file.h"
#include "common/mq_sql.h"
#include "common/mq_util.h"
#include "tests/unit/mq_test.h"

#include <pthread.h>

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char path[256];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/mq_broker_testXXXXXX");
        if (!mkdtemp(tmpdir))
            abort();
    }
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static struct brk_topic topic(const char *name, int r, int w)
{
    struct brk_topic t;
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", name);
    t.read_queues = r;
    t.write_queues = w;
    t.perm = BRK_PERM_READ | BRK_PERM_WRITE;
    return t;
}

TEST(test_topics_persist)
{
    const char *path = tmp_path("topics.json");
    struct brk_topics *t = NULL;
    ASSERT_OK(brk_topics_open(path, &t));
    struct brk_data_version v0 = brk_topics_version(t);
    struct brk_topic a = topic("TopicA", 4, 4), b = topic("TBW102", 8, 8), got;
    b.perm = 7;
    ASSERT_OK(brk_topics_put(t, &a));
    ASSERT_OK(brk_topics_put(t, &b));
    struct brk_data_version v1 = brk_topics_version(t);
    ASSERT_EQ(v1.counter, v0.counter + 2);
    ASSERT_EQ(brk_topics_get(t, "nope", &got), -ENOENT);
    a.write_queues = 2;
    ASSERT_OK(brk_topics_put(t, &a));
    brk_topics_close(t);

    ASSERT_OK(brk_topics_open(path, &t));
    ASSERT_OK(brk_topics_get(t, "TopicA", &got));
    ASSERT_EQ(got.read_queues, 4);
    ASSERT_EQ(got.write_queues, 2);
    ASSERT_OK(brk_topics_get(t, "TBW102", &got));
    ASSERT_EQ(got.perm, 7);
    ASSERT_EQ(brk_topics_version(t).counter, v1.counter + 1); /* the version survives */
    struct brk_topic *list;
    size_t n;
    ASSERT_OK(brk_topics_list(t, &list, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(list[0].name, "TBW102"); /* sorted */
    free(list);
    struct mq_buf js;
    mq_buf_init(&js);
    ASSERT_OK(brk_topics_to_json(t, &js));
    ASSERT_OK(mq_buf_append(&js, "", 1));
    ASSERT(strstr((char *)js.data, "\"topicConfigTable\"") != NULL);
    ASSERT(strstr((char *)js.data, "\"writeQueueNums\":2") != NULL);
    ASSERT(strstr((char *)js.data, "\"dataVersion\"") != NULL);
    mq_buf_destroy(&js);
    ASSERT_OK(brk_topics_delete(t, "TopicA"));
    ASSERT_EQ(brk_topics_delete(t, "TopicA"), -ENOENT);
    brk_topics_close(t);
    ASSERT_OK(brk_topics_open(path, &t));
    ASSERT_EQ(brk_topics_get(t, "TopicA", &got), -ENOENT);
    brk_topics_close(t);
    unlink(path);
}

TEST(test_topics_bad_file)
{
    const char *path = tmp_path("bad-topics.json");
    ASSERT_OK(mq_file_write_atomic(path, "{\"topicConfigTable\":", 20));
    struct brk_topics *t = NULL;
    ASSERT_EQ(brk_topics_open(path, &t), -EBADMSG);
    /* A bad entry is skipped, good ones load. */
    const char *mixed = "{\"topicConfigTable\":{\"ok\":{\"readQueueNums\":1,\"writeQueueNums\":1},"
                        "\"bad name\":{\"readQueueNums\":1,\"writeQueueNums\":1},"
                        "\"neg\":{\"readQueueNums\":-4,\"writeQueueNums\":1}}}";
    ASSERT_OK(mq_file_write_atomic(path, mixed, strlen(mixed)));
    ASSERT_OK(brk_topics_open(path, &t));
    struct brk_topic got;
    ASSERT_OK(brk_topics_get(t, "ok", &got));
    ASSERT_EQ(brk_topics_get(t, "neg", &got), -ENOENT);
    ASSERT_EQ(brk_topics_get(t, "bad name", &got), -ENOENT);
    brk_topics_close(t);
    unlink(path);
}

TEST(test_queue_count_limit)
{
    /* Nothing over BRK_MAX_QUEUES is written; counts over it in older files are clamped. */
    const char *path = tmp_path("limit-topics.json");
    const char *old = "{\"topicConfigTable\":{\"big\":{\"readQueueNums\":2147483647,"
                      "\"writeQueueNums\":4294967296},\"max\":{\"readQueueNums\":1024,"
                      "\"writeQueueNums\":0}}}";
    ASSERT_OK(mq_file_write_atomic(path, old, strlen(old)));
    struct brk_topics *t = NULL;
    ASSERT_OK(brk_topics_open(path, &t));
    struct brk_topic got;
    ASSERT_OK(brk_topics_get(t, "big", &got));
    ASSERT_EQ(got.read_queues, BRK_MAX_QUEUES);
    ASSERT_EQ(got.write_queues, BRK_MAX_QUEUES);
    ASSERT_OK(brk_topics_get(t, "max", &got));
    ASSERT_EQ(got.read_queues, 1024);
    ASSERT_EQ(got.write_queues, 0);
    got.read_queues = BRK_MAX_QUEUES + 1;
    ASSERT_EQ(brk_topics_put(t, &got), -EINVAL);
    got.read_queues = 1;
    got.write_queues = -1;
    ASSERT_EQ(brk_topics_put(t, &got), -EINVAL);
    brk_topics_close(t);
    unlink(path);

    path = tmp_path("limit-groups.json");
    old = "{\"subscriptionGroupTable\":{\"big\":{\"retryQueueNums\":2147483647},"
          "\"neg\":{\"retryQueueNums\":-1}}}";
    ASSERT_OK(mq_file_write_atomic(path, old, strlen(old)));
    struct brk_groups *g = NULL;
    ASSERT_OK(brk_groups_open(path, &g));
    struct brk_group cfg;
    ASSERT_OK(brk_groups_get(g, "big", &cfg));
    ASSERT_EQ(cfg.retry_queue_nums, BRK_MAX_QUEUES);
    ASSERT_EQ(brk_groups_get(g, "neg", &cfg), -ENOENT);
    brk_group_defaults(&cfg, "G2");
    cfg.retry_queue_nums = BRK_MAX_QUEUES + 1;
    ASSERT_EQ(brk_groups_put(g, &cfg), -EINVAL);
    cfg.retry_queue_nums = BRK_MAX_QUEUES;
    ASSERT_OK(brk_groups_put(g, &cfg));
    brk_groups_close(g);
    unlink(path);
}

TEST(test_groups)
{
    const char *path = tmp_path("subscriptionGroup.json");
    struct brk_groups *g = NULL;
    ASSERT_OK(brk_groups_open(path, &g));
    struct brk_group cfg, got;
    brk_group_defaults(&cfg, "G1");
    ASSERT_EQ(cfg.retry_max_times, 16);
    cfg.retry_max_times = 3;
    ASSERT_OK(brk_groups_put(g, &cfg));
    brk_groups_close(g);
    ASSERT_OK(brk_groups_open(path, &g));
    ASSERT_OK(brk_groups_get(g, "G1", &got));
    ASSERT_EQ(got.retry_max_times, 3);
    ASSERT_EQ(got.consume_enable, 1);
    brk_groups_close(g);
    unlink(path);
}

TEST(test_offsets)
{
    const char *path = tmp_path("consumerOffset.json");
    struct brk_offsets *o = NULL;
    ASSERT_OK(brk_offsets_open(path, &o));
    ASSERT_EQ(brk_offsets_query(o, "G1", "T", 0), -1);
    ASSERT_OK(brk_offsets_commit(o, "G1", "T", 3, 42));
    ASSERT_OK(brk_offsets_commit(o, "G1", "T", 0, 7));
    ASSERT_OK(brk_offsets_commit(o, "G2", "T", 0, 9));
    ASSERT_OK(brk_offsets_commit(o, "G1", "U", 1, 5));
    ASSERT_EQ(brk_offsets_commit(o, "G1", "T", -1, 5), -EINVAL);
    ASSERT_EQ(brk_offsets_commit(o, "G1", "T", 70000, 5), -EINVAL);
    ASSERT_EQ(brk_offsets_commit(o, "G1", "T", 1, -5), -EINVAL);
    ASSERT_EQ(brk_offsets_query(o, "G1", "T", 3), 42);
    ASSERT_EQ(brk_offsets_query(o, "G1", "T", 1), -1);
    ASSERT_EQ(brk_offsets_query(o, "G1", "T", 99), -1);
    brk_offsets_close(o); /* persists */

    ASSERT_OK(brk_offsets_open(path, &o));
    ASSERT_EQ(brk_offsets_query(o, "G1", "T", 3), 42);
    ASSERT_EQ(brk_offsets_query(o, "G2", "T", 0), 9);
    brk_offsets_delete_topic(o, "T");
    ASSERT_EQ(brk_offsets_query(o, "G1", "T", 3), -1);
    ASSERT_EQ(brk_offsets_query(o, "G1", "U", 1), 5);
    ASSERT_OK(brk_offsets_persist(o));
    brk_offsets_close(o);

    /* The layout fastjson writes: bare integer queue ids. */
    const char *fj = "{\"offsetTable\":{\"TopicA@G9\":{0:11,1:22},\"%RETRY%G9@G9\":{0:0}}}";
    ASSERT_OK(mq_file_write_atomic(path, fj, strlen(fj)));
    ASSERT_OK(brk_offsets_open(path, &o));
    ASSERT_EQ(brk_offsets_query(o, "G9", "TopicA", 1), 22);
    ASSERT_EQ(brk_offsets_query(o, "G9", "%RETRY%G9", 0), 0);
    brk_offsets_close(o);

    ASSERT_OK(mq_file_write_atomic(path, "garbage", 7));
    ASSERT_EQ(brk_offsets_open(path, &o), -EBADMSG);
    char *text;
    size_t len;
    ASSERT_OK(mq_file_read_all(path, 100, &text, &len)); /* left untouched */
    ASSERT_STR_EQ(text, "garbage");
    free(text);
    unlink(path);
    rmdir(tmpdir);
}

static const char hb_json[] =
    "{\"clientID\":\"127.0.0.1@123\",\"producerDataSet\":[{\"groupName\":\"P1\"}],"
    "\"consumerDataSet\":[{\"groupName\":\"G1\",\"consumeType\":\"CONSUME_PASSIVELY\","
    "\"messageModel\":\"CLUSTERING\",\"consumeFromWhere\":\"CONSUME_FROM_FIRST_OFFSET\","
    "\"subscriptionDataSet\":[{\"classFilterMode\":false,\"topic\":\"T\","
    "\"subString\":\"TagA || TagB\",\"tagsSet\":[\"TagA\",\"TagB\"],\"codeSet\":[],"
    "\"subVersion\":1700000000000,\"expressionType\":\"TAG\"}],\"unitMode\":false}]}";

static int changes;
static void on_change(const char *group, void *arg)
{
    (void)arg;
    if (strcmp(group, "G1") == 0)
        changes++;
}

TEST(test_heartbeat_parse)
{
    struct brk_heartbeat hb;
    ASSERT_OK(brk_heartbeat_parse(hb_json, strlen(hb_json), &hb));
    ASSERT_STR_EQ(hb.client_id, "127.0.0.1@123");
    ASSERT_EQ(hb.nproducers, 1);
    ASSERT_EQ(hb.nconsumers, 1);
    ASSERT_STR_EQ(hb.consumers[0].consume_from_where, "CONSUME_FROM_FIRST_OFFSET");
    ASSERT_EQ(hb.consumers[0].nsubs, 1);
    ASSERT_STR_EQ(hb.consumers[0].subs[0].expr, "TagA || TagB");
    ASSERT(hb.consumers[0].subs[0].version == 1700000000000LL);
    brk_heartbeat_destroy(&hb);
    ASSERT_EQ(brk_heartbeat_parse("{}", 2, &hb), -EBADMSG);
    ASSERT_EQ(brk_heartbeat_parse("[1,2", 4, &hb), -EBADMSG);
    const char *bad = "{\"clientID\":\"c\",\"consumerDataSet\":[{\"groupName\":\"G\","
                      "\"subscriptionDataSet\":[{\"subString\":\"*\"}]}]}";
    ASSERT_EQ(brk_heartbeat_parse(bad, strlen(bad), &hb), -EBADMSG); /* no topic */
}

TEST(test_consumer_registry)
{
    struct brk_consumers *c = NULL;
    ASSERT_OK(brk_consumers_new(120000, on_change, NULL, NULL, NULL, &c));
    struct brk_heartbeat hb;
    ASSERT_OK(brk_heartbeat_parse(hb_json, strlen(hb_json), &hb));
    int conn_a, conn_b;
    changes = 0;
    ASSERT_OK(brk_consumers_heartbeat(c, &hb, &conn_a, 1000));
    ASSERT_EQ(changes, 1);
    ASSERT_OK(brk_consumers_heartbeat(c, &hb, &conn_a, 2000)); /* refresh: no change */
    ASSERT_EQ(changes, 1);
    snprintf(hb.client_id, sizeof(hb.client_id), "127.0.0.1@099");
    ASSERT_OK(brk_consumers_heartbeat(c, &hb, &conn_b, 50000));
    ASSERT_EQ(changes, 2);
    char(*ids)[256];
    size_t n;
    ASSERT_OK(brk_consumers_ids(c, "G1", &ids, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(ids[0], "127.0.0.1@099"); /* sorted */
    free(ids);
    struct brk_sub sub;
    ASSERT_OK(brk_consumers_find_sub(c, "G1", "T", &sub));
    ASSERT_STR_EQ(sub.expr, "TagA || TagB");
    ASSERT_EQ(brk_consumers_find_sub(c, "G1", "U", &sub), -ENOENT);
    void *conns[4];
    ASSERT_EQ(brk_consumers_conns(c, "G1", conns, 4), 2);
    /* The first client is silent past the expiry; the second is not. */
    ASSERT_EQ(brk_consumers_scan(c, 2000 + 120001), 1);
    ASSERT_EQ(changes, 3);
    ASSERT_OK(brk_consumers_ids(c, "G1", &ids, &n));
    ASSERT_EQ(n, 1);
    free(ids);
    brk_consumers_conn_closed(c, &conn_b);
    ASSERT_OK(brk_consumers_ids(c, "G1", &ids, &n));
    ASSERT_EQ(n, 0);
    free(ids);
    ASSERT_OK(brk_consumers_heartbeat(c, &hb, &conn_b, 60000));
    ASSERT_OK(brk_consumers_unregister(c, "G1", "127.0.0.1@099"));
    ASSERT_EQ(brk_consumers_unregister(c, "G1", "127.0.0.1@099"), -ENOENT);
    brk_heartbeat_destroy(&hb);
    brk_consumers_free(c);
}

static pthread_mutex_t fired_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fired_cond = PTHREAD_COND_INITIALIZER;
static int fired[16]; /* per item id: 0 not fired, else timed_out + 2 */

static void on_fire(void *item, int timed_out, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fired_lock);
    fired[(intptr_t)item] = timed_out + 2;
    pthread_cond_broadcast(&fired_cond);
    pthread_mutex_unlock(&fired_lock);
}

/* Waits (bounded) until item id has fired; returns its state or 0 on timeout. */
static int wait_fired(int id, int64_t max_ms)
{
    int64_t end = mq_mono_us() / 1000 + max_ms;
    pthread_mutex_lock(&fired_lock);
    while (!fired[id] && mq_mono_us() / 1000 < end) {
        struct timespec ts;
        mq_deadline(&ts, CLOCK_REALTIME, 10 * 1000);
        pthread_cond_timedwait(&fired_cond, &fired_lock, &ts);
    }
    int v = fired[id];
    pthread_mutex_unlock(&fired_lock);
    return v;
}

TEST(test_long_poll_holds)
{
    memset(fired, 0, sizeof(fired));
    struct brk_hold *h = NULL;
    ASSERT_OK(brk_hold_new(on_fire, NULL, 0, &h));
    int64_t far = mq_mono_us() / 1000 + 60000;
    ASSERT_OK(brk_hold_add(h, "T", 0, 5, far, (void *)1));
    ASSERT_OK(brk_hold_add(h, "T", 0, 6, far, (void *)2));
    ASSERT_OK(brk_hold_add(h, "T", 0, 7, far, (void *)3));
    ASSERT_OK(brk_hold_add(h, "T", 1, 0, far, (void *)4));
    ASSERT_EQ(brk_hold_count(h), 4);
    brk_hold_notify(h, "T", 0, 7); /* offsets 5 and 6 are now readable, 7 is not */
    ASSERT_EQ(wait_fired(1, 2000), 2);
    ASSERT_EQ(wait_fired(2, 2000), 2);
    ASSERT_EQ(brk_hold_count(h), 2);
    ASSERT_EQ(fired[3], 0);
    brk_hold_notify(h, "U", 0, 100); /* another topic: nothing */
    ASSERT_EQ(brk_hold_count(h), 2);
    int64_t t0 = mq_mono_us() / 1000;
    ASSERT_OK(brk_hold_add(h, "T", 2, 0, t0 + 50, (void *)5));
    ASSERT_EQ(wait_fired(5, 2000), 3); /* timed out */
    ASSERT_GE(mq_mono_us() / 1000 - t0, 50);
    brk_hold_free(h); /* the rest fire as cancelled */
    ASSERT_EQ(fired[3], 1);
    ASSERT_EQ(fired[4], 1);
}

/* The BORNHOST / STOREHOST of a record from a peer's "ip:port"; anything else is 0.0.0.0:0. */
TEST(test_parse_host)
{
    struct mq_host h;
    brk__parse_host("127.0.0.1:10911", &h);
    ASSERT_EQ(h.addr[0], 127);
    ASSERT_EQ(h.addr[3], 1);
    ASSERT_EQ(h.port, 10911u);
    ASSERT_EQ(h.v6, 0);
    brk__parse_host("255.254.0.9:65535", &h);
    ASSERT_EQ(h.addr[0], 255);
    ASSERT_EQ(h.addr[1], 254);
    ASSERT_EQ(h.addr[3], 9);
    ASSERT_EQ(h.port, 65535u);
    const char *bad[] = {"256.0.0.1:1", "1.2.3:4",   "1.2.3.4",    "1.2.3.4:", "1.2.3.4:65536",
                         "[::1]:10911", "a.b.c.d:1", "1.2.3.4:5x", "",         NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        brk__parse_host(bad[i], &h);
        ASSERT_EQ(h.addr[0] | h.addr[1] | h.addr[2] | h.addr[3], 0);
        ASSERT_EQ(h.port, 0u);
    }
}

/* The filter cache's memory: a 4 KiB expression of the smallest terms compiles to some 150 KiB,
 * so 1024 distinct ones from one client held 300 MiB; the cache is now bounded in bytes too,
 * and an entry a pull still holds outlives its eviction. */
TEST(test_filter_cache_bounded)
{
    struct brk_filters *f;
    ASSERT_OK(brk_filters_new(&f));
    char expr[4096];
    size_t n = 0;
    while (n + 16 < sizeof(expr))
        n += (size_t)snprintf(expr + n, sizeof(expr) - n, "%sa<>b", n ? " OR " : "");
    struct brk_filter *held = NULL;
    for (int i = 0; i < BRK_FILTERS_MAX; i++) {
        char group[32];
        snprintf(group, sizeof(group), "G%d", i);
        struct brk_filter *e;
        ASSERT_OK(brk_filters_get(f, group, "T", expr, &e, NULL, 0));
        if (i == 0)
            held = e; /* kept by a pull across the evictions */
        else
            brk_filters_put(f, e);
        size_t entries, bytes;
        brk_filters_usage(f, &entries, &bytes);
        ASSERT(bytes <= BRK_FILTERS_MAX_BYTES);
        ASSERT(entries <= BRK_FILTERS_MAX);
    }
    static const char props[] = "a\0011\002b\0012\002";
    ASSERT_EQ(mq_sql_match_props(brk_filter_sql(held), props, sizeof(props) - 1), 1);
    brk_filters_put(f, held);
    brk_filters_free(f);
}

TEST_MAIN(test_topics_persist, test_topics_bad_file, test_queue_count_limit, test_groups,
          test_offsets, test_heartbeat_parse, test_consumer_registry, test_long_poll_holds,
          test_parse_host, test_filter_cache_bounded)

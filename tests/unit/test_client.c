/* test_client.c — unit tests for libmqclient's pure policies: route decoding, queue selection
 * with fault avoidance, rebalance allocation, unique ids. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/mq_batch.h"
#include "common/mq_bytes.h"
#include "tests/unit/mq_test.h"

static const char route_json[] =
    "{\"orderTopicConf\":null,\"queueDatas\":["
    "{\"brokerName\":\"broker-b\",\"readQueueNums\":2,\"writeQueueNums\":2,\"perm\":6,"
    "\"topicSysFlag\":0},"
    "{\"brokerName\":\"broker-a\",\"readQueueNums\":4,\"writeQueueNums\":3,\"perm\":6,"
    "\"topicSysFlag\":0},"
    "{\"brokerName\":\"broker-c\",\"readQueueNums\":1,\"writeQueueNums\":1,\"perm\":4,"
    "\"topicSysFlag\":0}],"
    "\"brokerDatas\":["
    "{\"cluster\":\"C\",\"brokerName\":\"broker-a\",\"brokerAddrs\":{0:\"127.0.0.1:10911\"}},"
    "{\"cluster\":\"C\",\"brokerName\":\"broker-b\",\"brokerAddrs\":{\"0\":\"127.0.0.1:10921\"}},"
    "{\"cluster\":\"C\",\"brokerName\":\"broker-c\",\"brokerAddrs\":{\"1\":\"127.0.0.1:10931\"}}"
    "],\"filterServerTable\":{}}";

TEST(test_route_parse)
{
    struct mqc_route *r = NULL;
    ASSERT_OK(mqc_route_parse("T", route_json, strlen(route_json), &r));
    ASSERT_EQ(r->nbrokers, 3);
    ASSERT_STR_EQ(mqc_route_broker_addr(r, "broker-a"), "127.0.0.1:10911");
    ASSERT(mqc_route_broker_addr(r, "broker-c") == NULL); /* no master */
    /* pub: a has 3 writable queues, b 2; c is read-only and masterless. Sorted by broker. */
    ASSERT_EQ(r->npub, 5);
    ASSERT_STR_EQ(r->pub[0].broker, "broker-a");
    ASSERT_EQ(r->pub[2].queue_id, 2);
    ASSERT_STR_EQ(r->pub[3].broker, "broker-b");
    ASSERT_EQ(r->nsub, 7);
    ASSERT_STR_EQ(r->sub[6].broker, "broker-c");
    mqc_route_free(r);

    ASSERT_EQ(mqc_route_parse("T", "{\"queueDatas\":", 14, &r), -EBADMSG);
    ASSERT_EQ(mqc_route_parse("T", "[]", 2, &r), -EBADMSG);
    const char *neg = "{\"queueDatas\":[{\"brokerName\":\"a\",\"readQueueNums\":-1,"
                      "\"writeQueueNums\":1,\"perm\":6}],\"brokerDatas\":[]}";
    ASSERT_EQ(mqc_route_parse("T", neg, strlen(neg), &r), -EBADMSG);
    mqc_route_free(NULL);
}

TEST(test_admin_parse_route)
{
    struct mqc_topic_route r;
    ASSERT_OK(mqc_admin_parse_route(route_json, strlen(route_json), &r));
    ASSERT_EQ(r.nbrokers, 3);
    ASSERT_STR_EQ(r.brokers[0].name, "broker-a");
    ASSERT_STR_EQ(r.brokers[0].addr, "127.0.0.1:10911"); /* fastjson's bare integer key */
    ASSERT_STR_EQ(r.brokers[0].cluster, "C");
    ASSERT_STR_EQ(r.brokers[2].addr, ""); /* broker-c: a slave only */
    ASSERT_EQ(r.nqueues, 3);
    ASSERT_STR_EQ(r.queues[0].broker, "broker-a"); /* sorted by broker name */
    ASSERT_EQ(r.queues[0].read_queues, 4);
    ASSERT_EQ(r.queues[0].write_queues, 3);
    ASSERT_EQ(r.queues[2].perm, 4);
    mqc_topic_route_destroy(&r);
    ASSERT_EQ(mqc_admin_parse_route("{\"queueDatas\":[]}", 17, &r), -EBADMSG);
    ASSERT_EQ(mqc_admin_parse_route("{\"queueDatas\":[{}],\"brokerDatas\":[]}", 36, &r), -EBADMSG);
    ASSERT(r.brokers == NULL && r.queues == NULL);
    /* queue counts a NameServer could be told by anyone: mqfs lists that many queue files */
    const char *huge = "{\"brokerDatas\":[],\"queueDatas\":[{\"brokerName\":\"b\","
                       "\"readQueueNums\":2147483647,\"writeQueueNums\":4,\"perm\":6}]}";
    ASSERT_EQ(mqc_admin_parse_route(huge, strlen(huge), &r), -EBADMSG);
    ASSERT(r.brokers == NULL && r.queues == NULL);
}

TEST(test_fault_durations)
{
    ASSERT_EQ(mqc_fault_duration(10), 0);
    ASSERT_EQ(mqc_fault_duration(100), 0);
    ASSERT_EQ(mqc_fault_duration(550), 30000);
    ASSERT_EQ(mqc_fault_duration(999), 30000);
    ASSERT_EQ(mqc_fault_duration(1000), 60000);
    ASSERT_EQ(mqc_fault_duration(3000), 180000);
    ASSERT_EQ(mqc_fault_duration(30000), 600000);

    struct mqc_faults f = {0};
    ASSERT(mqc_fault_available(&f, "a", 0));
    mqc_fault_update(&f, "a", 0, 1, 1000); /* failure: isolated as if 30 s latency */
    ASSERT(!mqc_fault_available(&f, "a", 1000));
    ASSERT(!mqc_fault_available(&f, "a", 600999));
    ASSERT(mqc_fault_available(&f, "a", 601000));
    mqc_fault_update(&f, "a", 20, 0, 2000); /* a fast send clears it */
    ASSERT(mqc_fault_available(&f, "a", 2000));
    ASSERT(mqc_fault_available(&f, "b", 2000));
}

static struct mqc_mq mkq(const char *broker, int id)
{
    struct mqc_mq q;
    memset(&q, 0, sizeof(q));
    strcpy(q.topic, "T");
    strcpy(q.broker, broker);
    q.queue_id = id;
    return q;
}

TEST(test_select_queue)
{
    struct mqc_mq qs[4] = {mkq("a", 0), mkq("a", 1), mkq("b", 0), mkq("b", 1)};
    uint32_t idx = 0;
    int seen[4] = {0};
    for (int i = 0; i < 8; i++)
        seen[mqc_select_queue(qs, 4, &idx, NULL, NULL, 0)]++;
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(seen[i], 2);    /* round robin */
    for (int i = 0; i < 8; i++) { /* retry after a failure on "a" never picks "a" */
        int p = mqc_select_queue(qs, 4, &idx, "a", NULL, 0);
        ASSERT_STR_EQ(qs[p].broker, "b");
    }
    struct mqc_faults f = {0};
    mqc_fault_update(&f, "b", 0, 1, 0);
    for (int i = 0; i < 8; i++) { /* "b" is isolated: everything goes to "a" */
        int p = mqc_select_queue(qs, 4, &idx, NULL, &f, 10);
        ASSERT_STR_EQ(qs[p].broker, "a");
    }
    mqc_fault_update(&f, "a", 0, 1, 0);
    int p = mqc_select_queue(qs, 4, &idx, "a", &f, 10); /* all excluded: still answers */
    ASSERT_STR_EQ(qs[p].broker, "b");
    ASSERT_EQ(mqc_select_queue(qs, 0, &idx, NULL, NULL, 0), -1);
}

TEST(test_allocate_averagely)
{
    const char *cids[] = {"c0", "c1", "c2"};
    size_t out[16], n;
    n = mqc_allocate_averagely(8, cids, 3, "c0", out);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(out[0], 0);
    ASSERT_EQ(out[2], 2);
    n = mqc_allocate_averagely(8, cids, 3, "c1", out);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(out[0], 3);
    n = mqc_allocate_averagely(8, cids, 3, "c2", out);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(out[0], 6);
    ASSERT_EQ(out[1], 7);
    ASSERT_EQ(mqc_allocate_averagely(8, cids, 3, "zz", out), 0);
    /* More consumers than queues: the first ones get one each, the rest none. */
    const char *five[] = {"a", "b", "c", "d", "e"};
    size_t total = 0;
    for (int i = 0; i < 5; i++) {
        n = mqc_allocate_averagely(3, five, 5, five[i], out);
        ASSERT_EQ(n, i < 3 ? 1 : 0);
        if (n)
            ASSERT_EQ(out[0], (size_t)i);
        total += n;
    }
    ASSERT_EQ(total, 3);
    /* Every split of 1..12 queues over 1..5 consumers is a partition of the queues. */
    for (size_t nq = 1; nq <= 12; nq++) {
        for (size_t nc = 1; nc <= 5; nc++) {
            int owner[12];
            memset(owner, 0, sizeof(owner));
            for (size_t c = 0; c < nc; c++) {
                n = mqc_allocate_averagely(nq, five, nc, five[c], out);
                for (size_t k = 0; k < n; k++)
                    owner[out[k]]++;
            }
            for (size_t q = 0; q < nq; q++)
                ASSERT_EQ(owner[q], 1);
        }
    }
}

TEST(test_uniq_id)
{
    char a[33], b[33];
    mqc_uniq_id(a);
    mqc_uniq_id(b);
    ASSERT_EQ(strlen(a), 32);
    ASSERT(strcmp(a, b) != 0);
    ASSERT_MEM_EQ(a, b, 20); /* same process prefix */
    for (int i = 0; i < 32; i++)
        ASSERT(strchr("0123456789ABCDEF", a[i]) != NULL);
}

TEST(test_uniq_ids_batch)
{
    /* A batch's ids: the shared head (prefix + time), consecutive counters, no repeats, and
     * the single-id counter continues after the reserved range. */
    char one[33], ids[300][33];
    struct mqc_uniq_seq u;
    mqc_uniq_id(one);
    mqc_uniq_ids_begin(&u, 300);
    for (int i = 0; i < 300; i++) {
        mqc_uniq_ids_next(&u, ids[i]);
        ids[i][32] = 0;
        for (int k = 0; k < 32; k++)
            ASSERT(strchr("0123456789ABCDEF", ids[i][k]) != NULL);
        ASSERT_MEM_EQ(ids[i], one, 20);
        ASSERT_MEM_EQ(ids[i], ids[0], 28);
        ASSERT(strcmp(ids[i], one) != 0);
        if (i > 0)
            ASSERT_EQ(strtoul(ids[i] + 28, NULL, 16),
                      (strtoul(ids[i - 1] + 28, NULL, 16) + 1) & 0xFFFF);
    }
    char after[33];
    mqc_uniq_id(after);
    ASSERT_EQ(strtoul(after + 28, NULL, 16), (strtoul(ids[299] + 28, NULL, 16) + 1) & 0xFFFF);
}

/* The shared-properties encoder writes what the general one writes for the same messages
 * (UNIQ_KEYs aside: each call takes its own), decodable entry by entry; both refuse the same
 * bad input. */
TEST(test_batch_bodies)
{
    static const char props[] = "a\001b\002";
    struct mqc_message t = {.topic = "T1",
                            .tags = "tg",
                            .keys = "k1 k2",
                            .flag = 7,
                            .props = props,
                            .props_len = sizeof(props) - 1};
    struct mqc_body b[3] = {{"one", 3}, {"x", 1}, {"three!", 6}};
    struct mqc_message m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = t;
        m[i].body = b[i].p;
        m[i].body_len = b[i].len;
    }
    struct mq_buf x, y;
    mq_buf_init(&x);
    mq_buf_init(&y);
    char ux[33], uy[33];
    ASSERT_OK(mqc__batch_encode(m, 3, 1 << 20, &x, ux));
    ASSERT_OK(mqc__batch_encode_bodies(&t, b, 3, 1 << 20, &y, uy));
    ASSERT_EQ(x.len, y.len);
    size_t px = 0, py = 0;
    struct mq_batch_entry ex, ey;
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(mq_batch_next(x.data, x.len, &px, &ex), 1);
        ASSERT_EQ(mq_batch_next(y.data, y.len, &py, &ey), 1);
        ASSERT_EQ(ey.flag, 7);
        ASSERT_EQ(ey.body_len, b[i].len);
        ASSERT_MEM_EQ(ey.body, b[i].p, b[i].len);
        ASSERT_EQ(ex.props_len, ey.props_len);
        const char *u = memmem(ey.props, ey.props_len, "UNIQ_KEY\001", 9);
        ASSERT(u != NULL);
        size_t at = (size_t)(u - ey.props) + 9;
        ASSERT_MEM_EQ(ex.props, ey.props, at);
        ASSERT_MEM_EQ(ex.props + at + 32, ey.props + at + 32, ey.props_len - at - 32);
        static const char head[] = "a\001b\002KEYS\001k1 k2\002TAGS\001tg\002UNIQ_KEY\001";
        ASSERT_EQ(at, sizeof(head) - 1);
        ASSERT_MEM_EQ(ey.props, head, at);
        ASSERT_MEM_EQ(ey.props + at + 32, "\002WAIT\001true\002", 11);
        if (i == 0)
            ASSERT_MEM_EQ(u + 9, uy, 32);
    }
    ASSERT_EQ(mq_batch_next(y.data, y.len, &py, &ey), 0);
    size_t len = y.len;
    struct mqc_body empty[2] = {{"a", 1}, {"", 0}};
    ASSERT_EQ(mqc__batch_encode_bodies(&t, empty, 2, 1 << 20, &y, uy), -EINVAL);
    ASSERT_EQ(mqc__batch_encode_bodies(&t, b, 3, 100, &y, uy), -EMSGSIZE);
    ASSERT_EQ(mqc__batch_encode_bodies(&t, b, 0, 1 << 20, &y, uy), -EINVAL);
    /* a delay level is for single sends (RocketMQ refuses it in batches) */
    struct mqc_message td = t;
    td.delay_level = 2;
    ASSERT_EQ(mqc__batch_encode_bodies(&td, b, 3, 1 << 20, &y, uy), -EINVAL);
    m[1].delay_level = 1;
    ASSERT_EQ(mqc__batch_encode(m, 3, 1 << 20, &y, uy), -EINVAL);
    ASSERT_EQ(y.len, len);
    mq_buf_destroy(&x);
    mq_buf_destroy(&y);
}

TEST_MAIN(test_route_parse, test_admin_parse_route, test_fault_durations, test_select_queue,
          test_allocate_averagely, test_uniq_id, test_uniq_ids_batch, test_batch_bodies)

/* handle_admin.c — administration requests: UPDATE_AND_CREATE_TOPIC, DELETE_TOPIC_IN_BROKER,
 * GET_ALL_TOPIC_CONFIG, subscription groups (create/update, list, delete) and
 * GET_BROKER_RUNTIME_INFO. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_util.h"

_Static_assert(BRK_MAX_QUEUES == 1024, "the remarks below quote the queue limit");

static int on_create_topic(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    if (!topic)
        return RPC_REPLY;
    if (mq_check_topic(topic, strlen(topic)) || strcmp(topic, b->conf.cluster_name) == 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "the topic name is not valid: "
                          "1-127 characters of [%|a-zA-Z0-9_-]");
        return RPC_REPLY;
    }
    struct brk_topic t;
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "%s", topic);
    int32_t r = 0, w = 0, perm = BRK_PERM_READ | BRK_PERM_WRITE, sysflag = 0;
    int order = 0;
    if (rpc_cmd_ext_get_int32(req, "readQueueNums", &r) ||
        rpc_cmd_ext_get_int32(req, "writeQueueNums", &w) || r < 0 || w < 0 || r > BRK_MAX_QUEUES ||
        w > BRK_MAX_QUEUES) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "readQueueNums and writeQueueNums must be "
                          "integers in 0..1024");
        return RPC_REPLY;
    }
    (void)rpc_cmd_ext_get_int32(req, "perm", &perm);
    (void)rpc_cmd_ext_get_int32(req, "topicSysFlag", &sysflag);
    (void)rpc_cmd_ext_get_bool(req, "order", &order);
    t.read_queues = r;
    t.write_queues = w;
    t.perm = perm & 7;
    t.sysflag = sysflag;
    t.order = order;
    int rc = brk_topics_put(b->topics, &t);
    if (rc) {
        *resp = brk__resp_errno(req, rc, "create topic");
        return RPC_REPLY;
    }
    return brk__reply_after_register(b, conn, brk__resp(req, RPC_SUCCESS, NULL), resp);
}

static int on_delete_topic(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    if (!topic)
        return RPC_REPLY;
    int rc = brk_topics_delete(b->topics, topic);
    brk_offsets_delete_topic(b->offsets, topic);
    /* Its queues go too (RocketMQ: cleanUnusedTopic); the records stay in the commitlog until
     * retention, and a topic made again by that name starts empty at offset 0. */
    (void)store_delete_topic(b->store, topic, strlen(topic));
    /* Deleting a topic that is not there succeeds, as in RocketMQ. */
    if (rc && rc != -ENOENT) {
        *resp = brk__resp_errno(req, rc, "delete topic");
        return RPC_REPLY;
    }
    struct rpc_cmd *ok = brk__resp(req, RPC_SUCCESS, NULL);
    if (rc) { /* nothing changed: nothing to register */
        *resp = ok;
        return RPC_REPLY;
    }
    return brk__reply_after_register(b, conn, ok, resp);
}

/* Replies SUCCESS with a body appended by fill(). */
static int reply_with_body(const struct rpc_cmd *req, struct rpc_cmd **resp,
                           int (*fill)(void *, struct mq_buf *), void *src)
{
    struct mq_buf body;
    mq_buf_init(&body);
    int rc = fill(src, &body);
    if (rc) {
        mq_buf_destroy(&body);
        return rc;
    }
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    size_t len;
    uint8_t *p = mq_buf_steal(&body, &len);
    if (!*resp) {
        free(p);
        return -ENOMEM;
    }
    rpc_cmd_take_body(*resp, p, len);
    return RPC_REPLY;
}

static int fill_topics(void *src, struct mq_buf *out)
{
    return brk_topics_to_json(src, out);
}

static int fill_groups(void *src, struct mq_buf *out)
{
    return brk_groups_to_json(src, out);
}

static int on_all_topics(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                         void *arg)
{
    struct broker *b = arg;
    return reply_with_body(req, resp, fill_topics, b->topics);
}

static int on_all_groups(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                         void *arg)
{
    struct broker *b = arg;
    return reply_with_body(req, resp, fill_groups, b->groups);
}

static int on_create_group(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    json_t *root = req->body ? rpc_json_loads(req->body, req->body_len) : NULL;
    const char *name = json_string_value(json_object_get(root, "groupName"));
    if (!name || mq_check_topic(name, strlen(name))) {
        json_decref(root);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "the body must be a SubscriptionGroupConfig "
                          "with a valid groupName");
        return RPC_REPLY;
    }
    struct brk_group g;
    brk_group_defaults(&g, name);
    json_t *v;
    if ((v = json_object_get(root, "consumeEnable")) && json_is_boolean(v))
        g.consume_enable = json_is_true(v);
    if ((v = json_object_get(root, "consumeBroadcastEnable")) && json_is_boolean(v))
        g.consume_broadcast_enable = json_is_true(v);
    /* RocketMQ takes any count here and makes a %RETRY% topic of that many queues at the
     * group's first heartbeat; this broker answers like UPDATE_AND_CREATE_TOPIC does for a
     * count outside 0..BRK_MAX_QUEUES (docs/INTEROP.md), before anything is stored. */
    json_int_t nq = g.retry_queue_nums, max_times = g.retry_max_times;
    if ((v = json_object_get(root, "retryQueueNums")) && json_is_integer(v))
        nq = json_integer_value(v);
    if ((v = json_object_get(root, "retryMaxTimes")) && json_is_integer(v))
        max_times = json_integer_value(v);
    json_decref(root);
    if (nq < 0 || nq > BRK_MAX_QUEUES || max_times < 0 || max_times > INT32_MAX) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "retryQueueNums must be an integer in 0..1024 and "
                          "retryMaxTimes a non-negative 32-bit integer");
        return RPC_REPLY;
    }
    g.retry_queue_nums = (int)nq;
    g.retry_max_times = (int)max_times;
    int rc = brk_groups_put(b->groups, &g);
    *resp = rc ? brk__resp_errno(req, rc, "update group") : brk__resp(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int on_delete_group(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    const char *name = brk__need(req, "groupName", resp);
    if (!name)
        return RPC_REPLY;
    (void)brk_groups_delete(b->groups, name);
    /* RocketMQ 4.9.4+: cleanOffset=true also drops the group's committed offsets. */
    const char *clean = rpc_cmd_ext_get(req, "cleanOffset");
    if (clean && strcmp(clean, "true") == 0)
        brk_offsets_delete_group(b->offsets, name);
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int on_runtime_info(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    /* KVTable {"table": {name: value}}, all values strings as in RocketMQ. */
    json_t *table = json_object(), *root = json_object();
    char v[64];
#define PUT(k, fmt, val)                                                                           \
    do {                                                                                           \
        snprintf(v, sizeof(v), fmt, val);                                                          \
        json_object_set_new(table, k, json_string(v));                                             \
    } while (0)
    int64_t up_ms = mq_now_ms() - b->start_ms;
    uint64_t puts = atomic_load(&b->stat_puts), gets = atomic_load(&b->stat_get_msgs);
    PUT("msgPutTotalTodayNow", "%" PRIu64, puts);
    PUT("msgGetTotalTodayNow", "%" PRIu64, gets);
    PUT("putBytesTotal", "%" PRIu64, (uint64_t)atomic_load(&b->stat_put_bytes));
    PUT("bootTimestamp", "%" PRId64, b->start_ms);
    PUT("runtime", "%" PRId64 " ms", up_ms);
    PUT("brokerVersionDesc", "%s", "mqfs (RocketMQ 4.9 protocol)");
    struct store_stats st;
    store_get_stats(b->store, &st);
    PUT("commitLogMinOffset", "%" PRId64, st.clog_min);
    PUT("commitLogMaxOffset", "%" PRId64, st.clog_max);
    PUT("dispatchBehindBytes", "%" PRId64, st.dispatch_lag);
    PUT("commitLogDiskRatio", "%.2f", st.disk_used_pct / 100.0);
    PUT("diskFull", "%s", st.disk_full ? "true" : "false");
    PUT("consumeQueueCount", "%d", st.queues);
    PUT("putTps", "%.1f", up_ms > 0 ? (double)puts * 1000.0 / (double)up_ms : 0.0);
    PUT("getTransferedTps", "%.1f", up_ms > 0 ? (double)gets * 1000.0 / (double)up_ms : 0.0);
    PUT("heldPullRequests", "%" PRIu64, brk_hold_count(b->holds));
    /* RocketMQ's scheduleMessageOffset_<level>: "<next to deliver>,<max offset>" per level with
     * messages (the difference is how many wait) */
    for (int level = 1; level <= brk__sched_levels(b->sched); level++) {
        int64_t max =
            store_max_offset(b->store, MQ_SCHEDULE_TOPIC, strlen(MQ_SCHEDULE_TOPIC), level - 1);
        if (max == 0)
            continue;
        char k[48];
        snprintf(k, sizeof(k), "scheduleMessageOffset_%d", level);
        snprintf(v, sizeof(v), "%" PRId64 ",%" PRId64, brk__sched_offset(b->sched, level), max);
        json_object_set_new(table, k, json_string(v));
    }
#undef PUT
    json_object_set_new(root, "table", table);
    *resp = brk__resp_json(req, root);
    json_decref(root);
    return *resp ? RPC_REPLY : -ENOMEM;
}

void brk__register_admin_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_UPDATE_AND_CREATE_TOPIC, on_create_topic, b, 0);
    rpc_server_handle(b->srv, REQ_DELETE_TOPIC_IN_BROKER, on_delete_topic, b, 0);
    rpc_server_handle(b->srv, REQ_GET_ALL_TOPIC_CONFIG, on_all_topics, b, 0);
    rpc_server_handle(b->srv, REQ_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, on_create_group, b, 0);
    rpc_server_handle(b->srv, REQ_GET_ALL_SUBSCRIPTIONGROUP_CONFIG, on_all_groups, b, 0);
    rpc_server_handle(b->srv, REQ_DELETE_SUBSCRIPTIONGROUP, on_delete_group, b, 0);
    rpc_server_handle(b->srv, REQ_GET_BROKER_RUNTIME_INFO, on_runtime_info, b, 0);
}

/* handle_stats.c — statistics RocketMQ's own admin tools ask a broker for
 * (AdminBrokerProcessor): GET_TOPIC_STATS_INFO (202; `mqadmin topicStatus`, the dashboard's
 * topic page), GET_CONSUME_STATS (208; `mqadmin consumerProgress`) and
 * QUERY_TOPIC_CONSUME_BY_WHO (300; the groups consuming a topic). The first two answer
 * fastjson's encoding of a map keyed by MessageQueue, whose keys are JSON objects — not
 * standard JSON, but what a stock client decodes (docs/FORMATS.md, "Broker behaviour stock
 * clients rely on"). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"

/* Store time of the message at a queue offset (getMessageStoreTimeStamp), 0 when none. */
static int64_t store_time_at(struct broker *b, const char *topic, int qid, int64_t off)
{
    int64_t ts = store_message_time(b->store, topic, strlen(topic), qid, off);
    return ts > 0 ? ts : 0;
}

/* Appends `"name":` + s as a JSON string (escaped). */
static int put_str(struct mq_buf *out, const char *name, const char *s)
{
    json_t *j = json_string(s);
    char *e = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    int rc = e ? mq_buf_printf(out, "\"%s\":%s", name, e) : -ENOMEM;
    free(e);
    return rc;
}

/* Appends a MessageQueue as a map key: {"brokerName":..,"queueId":..,"topic":..}: */
static int put_mq_key(struct mq_buf *out, const char *broker, const char *topic, int qid)
{
    int rc = mq_buf_append_str(out, "{");
    if (rc == 0)
        rc = put_str(out, "brokerName", broker);
    if (rc == 0)
        rc = mq_buf_printf(out, ",\"queueId\":%d,", qid);
    if (rc == 0)
        rc = put_str(out, "topic", topic);
    if (rc == 0)
        rc = mq_buf_append_str(out, "}:");
    return rc;
}

static int reply_body(const struct rpc_cmd *req, struct mq_buf *body, int rc, struct rpc_cmd **resp)
{
    if (rc == 0 && (*resp = brk__resp(req, RPC_SUCCESS, NULL)) != NULL &&
        rpc_cmd_set_body_copy(*resp, body->data, body->len) != 0) {
        rpc_cmd_free(*resp);
        *resp = NULL;
    }
    mq_buf_destroy(body);
    return *resp ? RPC_REPLY : -ENOMEM;
}

/* TopicStatsTable: {"offsetTable":{MQ:{"lastUpdateTimestamp","maxOffset","minOffset"},...}}
 * over the topic's write queues. */
static int on_topic_stats(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                          void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    if (!topic)
        return RPC_REPLY;
    struct brk_topic t;
    if (brk_topics_get(b->topics, topic, &t) != 0) {
        char remark[200];
        snprintf(remark, sizeof(remark), "topic[%.130s] not exist", topic);
        *resp = brk__resp(req, RPC_TOPIC_NOT_EXIST, remark);
        return RPC_REPLY;
    }
    struct mq_buf out;
    mq_buf_init(&out);
    int rc = mq_buf_append_str(&out, "{\"offsetTable\":{");
    size_t tl = strlen(topic);
    for (int q = 0; rc == 0 && q < t.write_queues; q++) {
        int64_t min = store_min_offset(b->store, topic, tl, q);
        int64_t max = store_max_offset(b->store, topic, tl, q);
        int64_t ts = max > 0 ? store_time_at(b, topic, q, max - 1) : 0;
        if (q)
            rc = mq_buf_append_str(&out, ",");
        if (rc == 0)
            rc = put_mq_key(&out, b->conf.broker_name, topic, q);
        if (rc == 0)
            rc = mq_buf_printf(&out,
                               "{\"lastUpdateTimestamp\":%" PRId64 ",\"maxOffset\":%" PRId64
                               ",\"minOffset\":%" PRId64 "}",
                               ts, max, min);
    }
    if (rc == 0)
        rc = mq_buf_append_str(&out, "}}");
    return reply_body(req, &out, rc, resp);
}

/* One topic's queues of a ConsumeStats offsetTable. *first: no entry written yet. */
static int consume_stats_topic(struct broker *b, const char *group, const char *topic,
                               struct mq_buf *out, int *first)
{
    struct brk_topic t;
    if (brk_topics_get(b->topics, topic, &t) != 0)
        return 0; /* RocketMQ skips topics it does not know */
    int rc = 0;
    size_t tl = strlen(topic);
    for (int q = 0; rc == 0 && q < t.read_queues; q++) {
        int64_t broker_off = store_max_offset(b->store, topic, tl, q);
        int64_t consumer_off = brk_offsets_query(b->offsets, group, topic, q);
        if (consumer_off < 0)
            consumer_off = 0;
        int64_t ts = consumer_off > 0 ? store_time_at(b, topic, q, consumer_off - 1) : 0;
        if (!*first)
            rc = mq_buf_append_str(out, ",");
        *first = 0;
        if (rc == 0)
            rc = put_mq_key(out, b->conf.broker_name, topic, q);
        if (rc == 0)
            rc = mq_buf_printf(out,
                               "{\"brokerOffset\":%" PRId64 ",\"consumerOffset\":%" PRId64
                               ",\"lastTimestamp\":%" PRId64 "}",
                               broker_off, consumer_off, ts);
    }
    return rc;
}

/* ConsumeStats: {"consumeTps":0.0,"offsetTable":{MQ:{"brokerOffset","consumerOffset",
 * "lastTimestamp"},...}} over the read queues of `topic`, or without it of every topic the
 * group has committed offsets for. */
static int on_consume_stats(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                            void *arg)
{
    struct broker *b = arg;
    const char *group = brk__need(req, "consumerGroup", resp);
    if (!group)
        return RPC_REPLY;
    const char *topic = rpc_cmd_ext_get(req, "topic");
    struct mq_buf out;
    mq_buf_init(&out);
    int first = 1;
    int rc = mq_buf_append_str(&out, "{\"consumeTps\":0.0,\"offsetTable\":{");
    if (rc == 0 && topic && *topic) {
        rc = consume_stats_topic(b, group, topic, &out, &first);
    } else if (rc == 0) {
        char(*topics)[BRK_NAME_MAX] = NULL;
        size_t n = 0;
        rc = brk_offsets_topics(b->offsets, group, &topics, &n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = consume_stats_topic(b, group, topics[i], &out, &first);
        free(topics);
    }
    if (rc == 0)
        rc = mq_buf_append_str(&out, "}}");
    return reply_body(req, &out, rc, resp);
}

/* GroupList {"groupList":[...]}: the groups consuming a topic — with a live client subscribed
 * to it, or with committed offsets for it (queryTopicConsumeByWho + whichGroupByTopic). */
static int on_consume_by_who(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                             void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    if (!topic)
        return RPC_REPLY;
    char(*live)[128] = NULL, (*committed)[BRK_NAME_MAX] = NULL;
    size_t nl = 0, nc = 0;
    json_t *list = json_array(), *root = NULL;
    int rc = brk_consumers_groups_of(b->consumers, topic, &live, &nl);
    if (rc == 0)
        rc = brk_offsets_groups(b->offsets, topic, &committed, &nc);
    for (size_t i = 0; rc == 0 && i < nl; i++)
        json_array_append_new(list, json_string(live[i]));
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        int dup = 0;
        for (size_t j = 0; j < nl && !dup; j++)
            dup = strcmp(committed[i], live[j]) == 0;
        if (!dup)
            json_array_append_new(list, json_string(committed[i]));
    }
    free(live);
    free(committed);
    if (rc == 0 && !(root = json_pack("{s:O}", "groupList", list)))
        rc = -ENOMEM;
    *resp = rc ? brk__resp_errno(req, rc, "consume by who") : brk__resp_json(req, root);
    json_decref(root);
    json_decref(list);
    return *resp ? RPC_REPLY : -ENOMEM;
}

void brk__register_stats_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_QUERY_TOPIC_CONSUME_BY_WHO, on_consume_by_who, b, 0);
    rpc_server_handle(b->srv, REQ_GET_TOPIC_STATS_INFO, on_topic_stats, b, RPC_HANDLER_WORKER);
    rpc_server_handle(b->srv, REQ_GET_CONSUME_STATS, on_consume_stats, b, RPC_HANDLER_WORKER);
}

/* admin_ops.c — the operator's requests, for mqadmin and mqfs: topics and subscription groups
 * on brokers (UPDATE_AND_CREATE_TOPIC 17, DELETE_TOPIC_IN_BROKER 215,
 * UPDATE_AND_CREATE_SUBSCRIPTIONGROUP 200, GET_ALL_SUBSCRIPTIONGROUP_CONFIG 201,
 * DELETE_SUBSCRIPTIONGROUP 207), topic deletion on every NameServer (216), routes
 * (105), queue offsets (30, 31, and a one-message pull for the newest store time), committed
 * group offsets (14), the broker's runtime KV table (28), and message lookups by key (12) and
 * by offset id (33). Header fields and bodies: docs/FORMATS.md Part 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/client_int.h"
#include "common/mq_msg.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"

enum {
    REQ_QUERY_MESSAGE = 12,
    REQ_QUERY_CONSUMER_OFFSET = 14,
    REQ_UPDATE_AND_CREATE_TOPIC = 17,
    REQ_GET_BROKER_RUNTIME_INFO = 28,
    REQ_GET_MAX_OFFSET = 30,
    REQ_GET_MIN_OFFSET = 31,
    REQ_VIEW_MESSAGE_BY_ID = 33,
    REQ_GET_ROUTEINFO_BY_TOPIC = 105,
    REQ_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
    REQ_GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201,
    REQ_GET_CONSUMER_CONNECTION_LIST = 203,
    REQ_DELETE_SUBSCRIPTIONGROUP = 207,
    REQ_DELETE_TOPIC_IN_BROKER = 215,
    REQ_DELETE_TOPIC_IN_NAMESRV = 216,
};
#define TOOLS_GROUP "TOOLS_CONSUMER" /* MixAll.TOOLS_CONSUMER_GROUP */
#define QUERY_MAX   64

/* A request with header fields kv[0..nkv) (name, value pairs); the caller frees it. */
static struct rpc_cmd *request(int code, const char *const *kv, size_t nkv)
{
    struct rpc_cmd *req = rpc_cmd_new(code);
    for (size_t i = 0; req && i + 1 < nkv; i += 2) {
        if (rpc_cmd_ext_set(req, kv[i], kv[i + 1])) {
            rpc_cmd_free(req);
            return NULL;
        }
    }
    return req;
}

/* Sends req to addr (req is freed). On 0 *resp is the answer, whatever its code. */
static int call(struct mqc_admin *a, const char *addr, struct rpc_cmd *req, struct rpc_cmd **resp)
{
    if (!req)
        return -ENOMEM;
    int rc = rpc_client_call(a->inst->rpc, addr, req, a->inst->cfg.send_timeout_ms, resp);
    rpc_cmd_free(req);
    return rc;
}

/* A call whose answer only has to be SUCCESS. */
static int call_ok(struct mqc_admin *a, const char *addr, struct rpc_cmd *req)
{
    struct rpc_cmd *resp = NULL;
    int rc = call(a, addr, req, &resp);
    if (rc == 0 && resp->code != RPC_SUCCESS)
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    rpc_cmd_free(resp);
    return rc;
}

/* A call answering one int64 header field ("offset"). */
static int call_value(struct mqc_admin *a, const char *addr, struct rpc_cmd *req, const char *key,
                      int64_t *out)
{
    struct rpc_cmd *resp = NULL;
    int rc = call(a, addr, req, &resp);
    if (rc == 0 && resp->code == RPC_QUERY_NOT_FOUND)
        rc = -ENOENT;
    else if (rc == 0 && resp->code != RPC_SUCCESS)
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    else if (rc == 0 && rpc_cmd_ext_get_int64(resp, key, out))
        rc = -EBADMSG;
    rpc_cmd_free(resp);
    return rc;
}

int mqc_admin_create_topic(struct mqc_admin *a, const char *addr, const struct mqc_topic_config *t)
{
    if (!t->topic || mq_check_topic(t->topic, strlen(t->topic)) || t->read_queues < 0 ||
        t->write_queues < 0 || t->read_queues > 1024 || t->write_queues > 1024 || t->perm < 0 ||
        t->perm > 7)
        return -EINVAL;
    char r[16], w[16], perm[16];
    snprintf(r, sizeof(r), "%d", t->read_queues);
    snprintf(w, sizeof(w), "%d", t->write_queues);
    snprintf(perm, sizeof(perm), "%d", t->perm ? t->perm : 6);
    const char *kv[] = {"topic",         t->topic, "defaultTopic",    MQC_DEFAULT_TOPIC,
                        "readQueueNums", r,        "writeQueueNums",  w,
                        "perm",          perm,     "topicFilterType", "SINGLE_TAG",
                        "topicSysFlag",  "0",      "order",           "false"};
    return call_ok(a, addr, request(REQ_UPDATE_AND_CREATE_TOPIC, kv, 16));
}

int mqc_admin_delete_topic_broker(struct mqc_admin *a, const char *addr, const char *topic)
{
    const char *kv[] = {"topic", topic};
    return call_ok(a, addr, request(REQ_DELETE_TOPIC_IN_BROKER, kv, 2));
}

int mqc_admin_delete_topic_namesrv(struct mqc_admin *a, const char *topic)
{
    const char *kv[] = {"topic", topic};
    int first = 0;
    for (size_t i = 0; i < a->inst->nns; i++) {
        int rc = call_ok(a, a->inst->namesrvs[i], request(REQ_DELETE_TOPIC_IN_NAMESRV, kv, 2));
        if (rc && !first)
            first = rc;
    }
    return first;
}

int mqc_admin_create_group(struct mqc_admin *a, const char *addr, const char *group)
{
    if (!group || mq_check_topic(group, strlen(group)))
        return -EINVAL;
    /* SubscriptionGroupConfig with RocketMQ's defaults. */
    json_t *body = json_pack("{s:s, s:b, s:b, s:b, s:i, s:i, s:I, s:b}", "groupName", group,
                             "consumeEnable", 1, "consumeFromMinEnable", 1,
                             "consumeBroadcastEnable", 1, "retryQueueNums", 1, "retryMaxTimes", 16,
                             "brokerId", (json_int_t)0, "notifyConsumerIdsChangedEnable", 1);
    struct rpc_cmd *req = body ? rpc_cmd_new(REQ_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP) : NULL;
    if (req && rpc_cmd_set_body_json(req, body)) {
        rpc_cmd_free(req);
        req = NULL;
    }
    json_decref(body);
    return call_ok(a, addr, req);
}

/* ---- routes ---- */

static int route_broker_cmp(const void *x, const void *y)
{
    return strcmp(((const struct mqc_route_broker *)x)->name,
                  ((const struct mqc_route_broker *)y)->name);
}

static int route_queues_cmp(const void *x, const void *y)
{
    return strcmp(((const struct mqc_route_queues *)x)->broker,
                  ((const struct mqc_route_queues *)y)->broker);
}

void mqc_topic_route_destroy(struct mqc_topic_route *r)
{
    free(r->brokers);
    free(r->queues);
    memset(r, 0, sizeof(*r));
}

int mqc_admin_parse_route(const char *body, size_t len, struct mqc_topic_route *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = rpc_json_loads(body, len);
    json_t *bds = json_object_get(root, "brokerDatas"), *qds = json_object_get(root, "queueDatas");
    int rc = -EBADMSG;
    if (!json_is_array(bds) || !json_is_array(qds))
        goto out;
    size_t nb = json_array_size(bds), nq = json_array_size(qds);
    out->brokers = calloc(nb ? nb : 1, sizeof(*out->brokers));
    out->queues = calloc(nq ? nq : 1, sizeof(*out->queues));
    if (!out->brokers || !out->queues) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nb; i++) {
        json_t *bd = json_array_get(bds, i);
        const char *name = json_string_value(json_object_get(bd, "brokerName"));
        const char *cluster = json_string_value(json_object_get(bd, "cluster"));
        const char *master =
            json_string_value(json_object_get(json_object_get(bd, "brokerAddrs"), "0"));
        if (!name)
            goto out;
        struct mqc_route_broker *b = &out->brokers[out->nbrokers++];
        snprintf(b->name, sizeof(b->name), "%s", name);
        snprintf(b->cluster, sizeof(b->cluster), "%s", cluster ? cluster : "");
        snprintf(b->addr, sizeof(b->addr), "%s", master ? master : "");
    }
    for (size_t i = 0; i < nq; i++) {
        json_t *qd = json_array_get(qds, i);
        const char *name = json_string_value(json_object_get(qd, "brokerName"));
        if (!name)
            goto out;
        struct mqc_route_queues *q = &out->queues[out->nqueues++];
        snprintf(q->broker, sizeof(q->broker), "%s", name);
        json_int_t nr = json_integer_value(json_object_get(qd, "readQueueNums"));
        json_int_t nw = json_integer_value(json_object_get(qd, "writeQueueNums"));
        if (nr < 0 || nw < 0 || nr > 65535 ||
            nw > 65535) { /* as route.c: listings loop over them */
            rc = -EBADMSG;
            goto out;
        }
        q->read_queues = (int)nr;
        q->write_queues = (int)nw;
        q->perm = (int)json_integer_value(json_object_get(qd, "perm"));
        q->sysflag = (int)json_integer_value(json_object_get(qd, "topicSysFlag"));
    }
    qsort(out->brokers, out->nbrokers, sizeof(*out->brokers), route_broker_cmp);
    qsort(out->queues, out->nqueues, sizeof(*out->queues), route_queues_cmp);
    rc = 0;
out:
    json_decref(root);
    if (rc)
        mqc_topic_route_destroy(out);
    return rc;
}

int mqc_admin_topic_route(struct mqc_admin *a, const char *topic, struct mqc_topic_route *out)
{
    memset(out, 0, sizeof(*out));
    const char *kv[] = {"topic", topic};
    struct rpc_cmd *req = request(REQ_GET_ROUTEINFO_BY_TOPIC, kv, 2), *resp = NULL;
    if (!req)
        return -ENOMEM;
    int rc = mqc__namesrv_call(a->inst, req, a->inst->cfg.send_timeout_ms, &resp);
    rpc_cmd_free(req);
    if (rc)
        return rc;
    if (resp->code == RPC_TOPIC_NOT_EXIST)
        rc = -ENOENT;
    else if (resp->code != RPC_SUCCESS || !resp->body)
        rc = -EIO;
    else
        rc = mqc_admin_parse_route((const char *)resp->body, resp->body_len, out);
    rpc_cmd_free(resp);
    return rc;
}

/* ---- offsets ---- */

int mqc_admin_queue_stat(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                         struct mqc_queue_stat *out)
{
    char qid[16];
    snprintf(qid, sizeof(qid), "%d", queue_id);
    const char *kv[] = {"topic", topic, "queueId", qid};
    memset(out, 0, sizeof(*out));
    int rc = call_value(a, addr, request(REQ_GET_MIN_OFFSET, kv, 4), "offset", &out->min_offset);
    if (rc == 0)
        rc = call_value(a, addr, request(REQ_GET_MAX_OFFSET, kv, 4), "offset", &out->max_offset);
    if (rc || out->max_offset <= out->min_offset)
        return rc;
    /* The newest message's store time (what RocketMQ's topicStatus calls lastUpdateTimestamp). */
    struct mqc_mq mq;
    memset(&mq, 0, sizeof(mq));
    snprintf(mq.topic, sizeof(mq.topic), "%s", topic);
    mq.queue_id = queue_id;
    struct rpc_cmd *resp = NULL;
    struct mqc_pull_result res;
    if (call(a, addr, mqc__pull_request(TOOLS_GROUP, &mq, "*", 0, out->max_offset - 1, 1, 0, -1),
             &resp) == 0 &&
        mqc__pull_parse(resp, &mq, NULL, &res) == 0) {
        if (res.n > 0)
            out->last_store_ms = res.msgs[0].store_ts;
        mqc_pull_result_destroy(&res);
    }
    return 0;
}

int mqc_admin_consumer_offset(struct mqc_admin *a, const char *addr, const char *group,
                              const char *topic, int queue_id, int64_t *offset)
{
    char qid[16];
    snprintf(qid, sizeof(qid), "%d", queue_id);
    const char *kv[] = {"consumerGroup", group, "topic", topic, "queueId", qid};
    return call_value(a, addr, request(REQ_QUERY_CONSUMER_OFFSET, kv, 6), "offset", offset);
}

/* ---- runtime info ---- */

static int kv_cmp(const void *x, const void *y)
{
    return strcmp(((const struct mqc_kv *)x)->name, ((const struct mqc_kv *)y)->name);
}

int mqc_admin_consumer_connection(struct mqc_admin *a, const char *addr, const char *group,
                                  char **json, size_t *len)
{
    const char *kv[] = {"consumerGroup", group};
    struct rpc_cmd *resp = NULL;
    int rc = call(a, addr, request(REQ_GET_CONSUMER_CONNECTION_LIST, kv, 2), &resp);
    if (rc)
        return rc;
    if (resp->code == 206) /* CONSUMER_NOT_ONLINE */
        rc = -ENOENT;
    else if (resp->code != RPC_SUCCESS)
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    else if (!resp->body)
        rc = -EBADMSG;
    else if (!(*json = malloc(resp->body_len + 1)))
        rc = -ENOMEM;
    if (rc == 0) {
        memcpy(*json, resp->body, resp->body_len);
        (*json)[resp->body_len] = '\0';
        *len = resp->body_len;
    }
    rpc_cmd_free(resp);
    return rc;
}

int mqc_admin_runtime_info(struct mqc_admin *a, const char *addr, struct mqc_kv **kv, size_t *n)
{
    struct rpc_cmd *resp = NULL;
    int rc = call(a, addr, rpc_cmd_new(REQ_GET_BROKER_RUNTIME_INFO), &resp);
    if (rc)
        return rc;
    json_t *root = NULL;
    if (resp->code != RPC_SUCCESS) {
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
        goto out;
    }
    root = resp->body ? rpc_json_loads(resp->body, resp->body_len) : NULL;
    json_t *table = json_object_get(root, "table");
    rc = -EBADMSG;
    if (!json_is_object(table))
        goto out;
    size_t cnt = json_object_size(table), bytes = (cnt ? cnt : 1) * sizeof(struct mqc_kv);
    const char *k;
    json_t *v;
    json_object_foreach(table, k, v)
    {
        if (!json_is_string(v))
            goto out;
        bytes += strlen(k) + json_string_length(v) + 2;
    }
    struct mqc_kv *block = malloc(bytes);
    rc = -ENOMEM;
    if (!block)
        goto out;
    char *str = (char *)(block + (cnt ? cnt : 1));
    size_t i = 0;
    json_object_foreach(table, k, v)
    {
        size_t kl = strlen(k) + 1, vl = json_string_length(v) + 1;
        block[i].name = memcpy(str, k, kl);
        block[i].value = memcpy(str + kl, json_string_value(v), vl);
        str += kl + vl;
        i++;
    }
    qsort(block, cnt, sizeof(*block), kv_cmp);
    *kv = block;
    *n = cnt;
    rc = 0;
out:
    json_decref(root);
    rpc_cmd_free(resp);
    return rc;
}

/* ---- lookups ---- */

int mqc_admin_query_key(struct mqc_admin *a, const char *addr, const char *broker,
                        const char *topic, const char *key, struct mqc_pull_result *out)
{
    char max[16];
    snprintf(max, sizeof(max), "%d", QUERY_MAX);
    const char *kv[] = {"topic",
                        topic,
                        "key",
                        key,
                        "maxNum",
                        max,
                        "beginTimestamp",
                        "0",
                        "endTimestamp",
                        "9223372036854775807"};
    struct rpc_cmd *resp = NULL;
    memset(out, 0, sizeof(*out));
    int rc = call(a, addr, request(REQ_QUERY_MESSAGE, kv, 10), &resp);
    if (rc)
        return rc;
    if (resp->code == RPC_QUERY_NOT_FOUND) {
        rpc_cmd_free(resp);
        return 0;
    }
    if (resp->code != RPC_SUCCESS) {
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
        rpc_cmd_free(resp);
        return rc;
    }
    struct mqc_mq mq;
    memset(&mq, 0, sizeof(mq));
    snprintf(mq.broker, sizeof(mq.broker), "%s", broker ? broker : addr);
    mq.queue_id = -1;
    return mqc__records_parse(resp, &mq, out);
}

int mqc_admin_view_message(struct mqc_admin *a, const char *msg_id, char addr[64],
                           struct mqc_pull_result *out)
{
    struct mq_host h;
    int64_t phys;
    char where[64], off[32];
    memset(out, 0, sizeof(*out));
    if (!msg_id || mq_msgid_decode(msg_id, strlen(msg_id), &h, &phys) || h.v6)
        return -EINVAL;
    snprintf(where, sizeof(where), "%u.%u.%u.%u:%u", h.addr[0], h.addr[1], h.addr[2], h.addr[3],
             h.port);
    if (addr)
        snprintf(addr, 64, "%s", where);
    snprintf(off, sizeof(off), "%lld", (long long)phys);
    const char *kv[] = {"offset", off};
    struct rpc_cmd *resp = NULL;
    int rc = call(a, where, request(REQ_VIEW_MESSAGE_BY_ID, kv, 2), &resp);
    if (rc)
        return rc;
    if (resp->code != RPC_SUCCESS || !resp->body) {
        rc = resp->code == RPC_SYSTEM_ERROR
                 ? -ENOENT
                 : mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
        rpc_cmd_free(resp);
        return rc ? rc : -ENOENT;
    }
    struct mqc_mq mq;
    memset(&mq, 0, sizeof(mq));
    snprintf(mq.broker, sizeof(mq.broker), "%s", where);
    mq.queue_id = -1;
    rc = mqc__records_parse(resp, &mq, out);
    if (rc == 0 && out->n == 0) {
        mqc_pull_result_destroy(out);
        rc = -ENOENT;
    }
    return rc;
}

/* ---- subscription groups ---- */

/* GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201): the broker's subscriptionGroup.json as JSON. */
static int group_table(struct mqc_admin *a, const char *addr, json_t **root)
{
    struct rpc_cmd *resp = NULL;
    int rc = call(a, addr, rpc_cmd_new(REQ_GET_ALL_SUBSCRIPTIONGROUP_CONFIG), &resp);
    if (rc)
        return rc;
    if (resp->code != RPC_SUCCESS) {
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
        rpc_cmd_free(resp);
        return rc;
    }
    *root = resp->body ? rpc_json_loads(resp->body, resp->body_len) : NULL;
    rpc_cmd_free(resp);
    if (!json_is_object(json_object_get(*root, "subscriptionGroupTable"))) {
        json_decref(*root);
        return -EBADMSG;
    }
    return 0;
}

int mqc_admin_group_exists(struct mqc_admin *a, const char *addr, const char *group)
{
    json_t *root = NULL;
    int rc = group_table(a, addr, &root);
    if (rc == 0)
        rc = json_object_get(json_object_get(root, "subscriptionGroupTable"), group) ? 1 : 0;
    json_decref(root);
    return rc;
}

int mqc_admin_group_list(struct mqc_admin *a, const char *addr, char ***names, size_t *n)
{
    json_t *root = NULL;
    int rc = group_table(a, addr, &root);
    if (rc)
        return rc;
    json_t *table = json_object_get(root, "subscriptionGroupTable");
    size_t cnt = 0, bytes = sizeof(char *);
    const char *key;
    json_t *val;
    json_object_foreach(table, key, val)
    {
        if (mq_check_topic(key, strlen(key)) == 0) { /* a name no group can have: skipped */
            bytes += sizeof(char *) + strlen(key) + 1;
            cnt++;
        }
    }
    char **v = malloc(bytes);
    if (!v) {
        json_decref(root);
        return -ENOMEM;
    }
    char *str = (char *)(v + cnt + 1);
    size_t i = 0;
    json_object_foreach(table, key, val)
    {
        if (mq_check_topic(key, strlen(key)) == 0) {
            size_t kl = strlen(key);
            memcpy(str, key, kl + 1);
            v[i++] = str;
            str += kl + 1;
        }
    }
    v[cnt] = NULL;
    json_decref(root);
    *names = v;
    *n = cnt;
    return 0;
}

int mqc_admin_delete_group(struct mqc_admin *a, const char *addr, const char *group,
                           int clean_offsets)
{
    if (!group || mq_check_topic(group, strlen(group)))
        return -EINVAL;
    const char *kv[] = {"groupName", group, "cleanOffset", clean_offsets ? "true" : "false"};
    return call_ok(a, addr, request(REQ_DELETE_SUBSCRIPTIONGROUP, kv, 4));
}

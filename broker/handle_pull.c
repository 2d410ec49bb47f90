/* handle_pull.c — PULL_MESSAGE with long polling (RocketMQ's PullMessageProcessor and
 * PullRequestHoldService): read from the consume queue, filter by tag hash (with
 * enablePropertyFilter, SQL92 subscriptions by each message's properties instead), answer with
 * the raw records; when nothing is there and the SUSPEND flag is set, park the request until the
 * dispatcher reports an arrival or the suspend time passes. Also the consumer-offset requests:
 * QUERY/UPDATE_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP and
 * GET_EARLIEST_MSG_STORETIME. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"
#include "common/mq_sql.h"
#include "common/mq_tags.h"
#include "common/mq_util.h"

#define PULL_SYS_COMMIT       1
#define PULL_SYS_SUSPEND      2
#define PULL_SYS_SUBSCRIPTION 4
#define PULL_MAX_MSGS         4096
#define PULL_MAX_BYTES        (8 << 20)
#define HOLD_MAX_MS           60000

struct pull_hdr {
    const char *group, *topic, *expr, *expr_type;
    int32_t queue_id, max_msgs, sysflag;
    int64_t offset, commit_offset, suspend_ms, sub_version;
};

static int parse_pull(const struct rpc_cmd *req, struct pull_hdr *h, struct rpc_cmd **resp)
{
    memset(h, 0, sizeof(*h));
    if (!(h->group = brk__need(req, "consumerGroup", resp)) ||
        !(h->topic = brk__need(req, "topic", resp)))
        return -EINVAL;
    if (rpc_cmd_ext_get_int32(req, "queueId", &h->queue_id) ||
        rpc_cmd_ext_get_int64(req, "queueOffset", &h->offset) || h->queue_id < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "queueId and queueOffset must be integers");
        return -EINVAL;
    }
    h->max_msgs = 32;
    (void)rpc_cmd_ext_get_int32(req, "maxMsgNums", &h->max_msgs);
    (void)rpc_cmd_ext_get_int32(req, "sysFlag", &h->sysflag);
    h->commit_offset = -1;
    (void)rpc_cmd_ext_get_int64(req, "commitOffset", &h->commit_offset);
    (void)rpc_cmd_ext_get_int64(req, "suspendTimeoutMillis", &h->suspend_ms);
    (void)rpc_cmd_ext_get_int64(req, "subVersion", &h->sub_version);
    h->expr = rpc_cmd_ext_get(req, "subscription");
    h->expr_type = rpc_cmd_ext_get(req, "expressionType");
    if (h->max_msgs <= 0)
        h->max_msgs = 1;
    if (h->max_msgs > PULL_MAX_MSGS)
        h->max_msgs = PULL_MAX_MSGS;
    return 0;
}

/* Maps a store status to RocketMQ's pull response code (PullMessageProcessor). */
static int pull_code(enum store_get_status st, int64_t offset)
{
    switch (st) {
    case STORE_FOUND:
        return RPC_SUCCESS;
    case STORE_MESSAGE_WAS_REMOVING:
    case STORE_NO_MATCHED_MESSAGE:
        return RPC_PULL_RETRY_IMMEDIATELY;
    case STORE_NO_MATCHED_LOGIC_QUEUE:
    case STORE_NO_MESSAGE_IN_QUEUE:
        return offset != 0 ? RPC_PULL_OFFSET_MOVED : RPC_PULL_NOT_FOUND;
    case STORE_OFFSET_FOUND_NULL:
    case STORE_OFFSET_OVERFLOW_ONE:
        return RPC_PULL_NOT_FOUND;
    case STORE_OFFSET_OVERFLOW_BADLY:
    case STORE_OFFSET_TOO_SMALL:
        return RPC_PULL_OFFSET_MOVED;
    }
    return RPC_SYSTEM_ERROR;
}

/* A pull reply's body: the records where the store has them (its mapped files, kept by the
 * result's file references), one segment per run of adjacent records. */
struct records_body {
    struct store *store;
    struct store_get_result *got;
    struct rpc_seg segs[];
};

static void release_records(void *arg)
{
    struct records_body *rb = arg;
    store_release(rb->store, rb->got);
    free(rb);
}

/* Gives resp the records of got (taken on success) as a segmented body: the remoting layer
 * writes them to the socket from the commitlog mapping, without copying them into a reply
 * buffer. Returns 0 or -ENOMEM. */
static int set_records_body(struct broker *b, struct rpc_cmd *resp, struct store_get_result *got)
{
    uint32_t n = 0;
    for (size_t i = 0; i < got->count; i++)
        if (i == 0 || got->msgs[i].data != got->msgs[i - 1].data + got->msgs[i - 1].len)
            n++;
    struct records_body *rb = malloc(sizeof(*rb) + n * sizeof(rb->segs[0]));
    if (!rb)
        return -ENOMEM;
    rb->store = b->store;
    rb->got = got;
    struct rpc_seg *seg = rb->segs - 1;
    for (size_t i = 0; i < got->count; i++) {
        const struct store_slice *m = &got->msgs[i];
        if (i == 0 || m->data != got->msgs[i - 1].data + got->msgs[i - 1].len)
            *++seg = (struct rpc_seg){m->data, 0};
        seg->len += m->len;
    }
    atomic_fetch_add(&b->stat_get_msgs, got->count);
    rpc_cmd_set_body_segs(resp, rb->segs, n, release_records, rb);
    return 0;
}

/* The bytes one pull's SQL92 evaluations may go through (properties, and values searched by
 * CONTAINS-like operators). A 4 KiB expression of 200 CONTAINS over 32 KiB values costs ~6 MiB
 * (~5 ms) a record: unbounded, 4096 such records held an I/O thread for ~20 s. Past it the pull
 * answers with what it has, its next offset at the first record not evaluated. */
#define PULL_SQL_WORK ((size_t)64 << 20)

struct sql_match {
    const struct mq_sql *sql;
    size_t work;
    int evaluated;
};

/* An SQL92 record check (RocketMQ's ExpressionMessageFilter.isMatchedByCommitLog): the
 * expression against the record's properties; TRUE keeps it. At least one record is evaluated
 * per pull, so that a pull always moves on. */
static int match_sql(const uint8_t *rec, uint32_t len, void *arg)
{
    struct sql_match *sm = arg;
    struct mq_msg m;
    if (sm->evaluated && sm->work >= PULL_SQL_WORK)
        return -1;
    if (mq_msg_decode(rec, len, 0, 0, &m) <= 0)
        return 0;
    sm->evaluated = 1;
    return mq_sql_match_props_work(sm->sql, m.props, m.props_len, &sm->work);
}

/* The compiled SQL92 expression of a pull (enablePropertyFilter=true), from the cache. On a
 * refusal sets *resp as RocketMQ's PullMessageProcessor does: an expression in the request that
 * does not compile is SUBSCRIPTION_PARSE_FAILED; a registered (heartbeat) one is
 * FILTER_DATA_NOT_EXIST, as its ConsumerFilterManager never holds one that did not compile. */
static int open_sql(struct broker *b, const struct rpc_cmd *req, const struct pull_hdr *h,
                    const char *expr, const char *type, int from_hb, struct brk_filter **out,
                    struct rpc_cmd **resp)
{
    char err[256];
    int rc = strcmp(type, "SQL92") == 0
                 ? brk_filters_get(b->filters, h->group, h->topic, expr, out, err, sizeof(err))
                 : -EINVAL;
    if (rc == 0)
        return 0;
    if (rc == -ENOMEM)
        *resp = brk__resp_errno(req, rc, "compile the subscription");
    else if (from_hb)
        *resp = brk__resp(req, RPC_FILTER_DATA_NOT_EXIST,
                          "The broker's consumer filter data is not exist!Your expression may be "
                          "wrong!");
    else
        *resp = brk__resp(req, RPC_SUBSCRIPTION_PARSE_FAILED,
                          "parse the consumer's subscription failed");
    return rc;
}

/* may_hold: HOLD_NONE answers whatever was found; HOLD_EMPTY asks for a hold when nothing is
 * there (offset at the end); HOLD_FILTERED too when everything up to the end was filtered out
 * (a hold woken by messages its subscription does not take: RocketMQ's
 * PullRequestHoldService.notifyMessageArriving checks the filter and holds on). */
enum { HOLD_NONE, HOLD_EMPTY, HOLD_FILTERED };

/* Runs a pull. Returns RPC_REPLY with *resp, or 1 when the caller should hold the request at
 * *hold_at (see may_hold). */
static int do_pull(struct broker *b, const struct rpc_cmd *req, const struct pull_hdr *h,
                   int may_hold, struct rpc_cmd **resp, int64_t *hold_at)
{
    struct brk_topic t;
    char remark[256];
    if (!(b->conf.broker_permission & BRK_PERM_READ)) {
        *resp = brk__resp(req, RPC_NO_PERMISSION, "the broker pulling message is forbidden");
        return RPC_REPLY;
    }
    if (brk_topics_get(b->topics, h->topic, &t)) {
        snprintf(remark, sizeof(remark), "topic[%.130s] not exist, apply first please!", h->topic);
        *resp = brk__resp(req, RPC_TOPIC_NOT_EXIST, remark);
        return RPC_REPLY;
    }
    if (h->queue_id >= t.read_queues) {
        snprintf(remark, sizeof(remark),
                 "queueId[%d] is illegal, topic:[%.130s] "
                 "topicConfig.readQueueNums:[%d]",
                 h->queue_id, h->topic, t.read_queues);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
        return RPC_REPLY;
    }
    /* The subscription: from the request, else from the group's heartbeat, which must be
     * there and at least as new as the consumer's (PullMessageProcessor: a consumer whose
     * changed subscription has not reached the broker yet is not served by the old one). */
    struct mq_tags tags;
    struct brk_sub sub;
    const char *expr = "*", *type = NULL;
    int from_hb = 0;
    if ((h->sysflag & PULL_SYS_SUBSCRIPTION) && h->expr) {
        expr = h->expr;
        type = h->expr_type;
    } else {
        int rc = brk_consumers_find_sub(b->consumers, h->group, h->topic, &sub);
        if (rc) {
            *resp = brk__resp(req, RPC_SUBSCRIPTION_NOT_EXIST,
                              rc == -ESRCH ? "the consumer's group info not exist"
                                           : "the consumer's subscription not exist");
            return RPC_REPLY;
        }
        if (sub.version < h->sub_version) {
            *resp = brk__resp(req, RPC_SUBSCRIPTION_NOT_LATEST,
                              "the consumer's subscription not latest");
            return RPC_REPLY;
        }
        expr = sub.expr;
        type = sub.expr_type;
        from_hb = 1;
    }
    struct brk_filter *sql = NULL;
    if (!brk_expr_is_tag(type)) {
        if (!b->conf.property_filter) { /* PullMessageProcessor with enablePropertyFilter=false */
            snprintf(remark, sizeof(remark),
                     "The broker does not support consumer to filter message by %.32s", type);
            *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
            return RPC_REPLY;
        }
        if (open_sql(b, req, h, expr, type, from_hb, &sql, resp))
            return RPC_REPLY;
    }
    if (sql) {
        memset(&tags, 0, sizeof(tags));
        tags.all = 1; /* no tag filter: the expression decides */
    } else if (mq_tags_parse(expr, &tags)) {
        *resp = brk__resp(req, RPC_SUBSCRIPTION_PARSE_FAILED,
                          "parse the consumer's "
                          "subscription failed");
        return RPC_REPLY;
    }
    struct store_get_result *got = NULL;
    size_t tlen = strlen(h->topic);
    struct sql_match sm = {sql ? brk_filter_sql(sql) : NULL, 0, 0};
    struct store_filter filter = {match_sql, &sm};
    int rc = store_get_messages_filtered(b->store, h->topic, tlen, h->queue_id, h->offset,
                                         h->max_msgs, PULL_MAX_BYTES, tags.all ? NULL : tags.codes,
                                         tags.all ? 0 : tags.n, sql ? &filter : NULL, &got);
    mq_tags_destroy(&tags);
    brk_filters_put(b->filters, sql);
    if (rc) {
        *resp = brk__resp_errno(req, rc, "get message");
        return RPC_REPLY;
    }
    int code = pull_code(got->status, h->offset);
    if ((code == RPC_PULL_NOT_FOUND && may_hold != HOLD_NONE) ||
        (may_hold == HOLD_FILTERED && got->status == STORE_NO_MATCHED_MESSAGE &&
         got->next_offset >= got->max_offset)) {
        *hold_at = code == RPC_PULL_NOT_FOUND ? h->offset : got->next_offset;
        store_release(b->store, got);
        return 1;
    }
    *resp = brk__resp(req, code, code == RPC_SUCCESS ? NULL : store_get_status_name(got->status));
    if (*resp && (rpc_cmd_ext_set_int64(*resp, "nextBeginOffset", got->next_offset) ||
                  rpc_cmd_ext_set_int64(*resp, "minOffset", got->min_offset) ||
                  rpc_cmd_ext_set_int64(*resp, "maxOffset", got->max_offset) ||
                  rpc_cmd_ext_set_int64(*resp, "suggestWhichBrokerId", 0))) {
        rpc_cmd_free(*resp);
        *resp = NULL;
    }
    if (*resp && code == RPC_SUCCESS && got->count > 0) {
        if (set_records_body(b, *resp, got) == 0) {
            got = NULL; /* released with the body, once the connection has written it */
            atomic_fetch_add(&b->stat_gets, 1);
        } else {
            rpc_cmd_free(*resp);
            *resp = NULL;
        }
    }
    store_release(b->store, got);
    return *resp ? RPC_REPLY : -ENOMEM;
}

/* A parked pull: what it needs to run again. */
struct held_pull {
    struct broker *b;
    struct rpc_conn *conn;
    struct rpc_cmd *req;
    int64_t offset;      /* where to read from: the request's, or past what was filtered out */
    int64_t deadline_ms; /* monotonic */
};

/* Parks hp at hp->offset. Returns 0, or -ENOMEM (hp is then not parked). Once parked, hp and
 * its request (where topic may point) belong to the hold: another thread may fire them. */
static int park(struct held_pull *hp, const char *topic, int32_t queue_id)
{
    struct broker *b = hp->b;
    int64_t offset = hp->offset;
    char *t = strdup(topic);
    if (!t || brk_hold_add(b->holds, t, queue_id, offset, hp->deadline_ms, hp)) {
        free(t);
        return -ENOMEM;
    }
    /* A message that arrived between the read and the park would otherwise wait for the
     * deadline: look again now that the hold is visible to the dispatcher. */
    int64_t max = store_max_offset(b->store, t, strlen(t), queue_id);
    if (max > offset)
        brk_hold_notify(b->holds, t, queue_id, max);
    free(t);
    return 0;
}

void brk__hold_fire(void *item, int timed_out, void *arg)
{
    struct held_pull *hp = item;
    struct rpc_cmd *resp = NULL;
    struct pull_hdr h;
    if (timed_out >= 0 && !rpc_conn_is_closed(hp->conn) && parse_pull(hp->req, &h, &resp) == 0) {
        h.offset = hp->offset;
        int64_t at;
        /* woken by an arrival: held on while the filter takes none of what arrived */
        if (do_pull(hp->b, hp->req, &h, timed_out ? HOLD_NONE : HOLD_FILTERED, &resp, &at) == 1) {
            int64_t was = hp->offset;
            hp->offset = at;
            if (park(hp, h.topic, h.queue_id) == 0)
                return;
            hp->offset = was;
            (void)do_pull(hp->b, hp->req, &h, HOLD_NONE, &resp, &at);
        }
    }
    if (resp)
        rpc_conn_reply(hp->conn, resp);
    rpc_conn_unref(hp->conn);
    rpc_cmd_free(hp->req);
    free(hp);
}

static int on_pull(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct broker *b = arg;
    struct pull_hdr h;
    if (parse_pull(req, &h, resp))
        return RPC_REPLY;
    struct brk_group g;
    if (brk__ensure_group(b, h.group, &g) == 0 && !g.consume_enable) {
        *resp = brk__resp(req, RPC_NO_PERMISSION, "subscription group no permission");
        return RPC_REPLY;
    }
    if ((h.sysflag & PULL_SYS_COMMIT) && h.commit_offset >= 0)
        (void)brk_offsets_commit(b->offsets, h.group, h.topic, h.queue_id, h.commit_offset);
    int64_t at;
    int rc =
        do_pull(b, req, &h, (h.sysflag & PULL_SYS_SUSPEND) ? HOLD_EMPTY : HOLD_NONE, resp, &at);
    if (rc != 1)
        return rc;
    /* Park it. The hold's deadline is the client's suspend time (short polling: the
     * configured short time); an arrival wakes it at once. */
    int64_t wait = b->conf.long_polling ? h.suspend_ms : b->conf.short_polling_ms;
    if (wait <= 0 || wait > HOLD_MAX_MS)
        wait = wait <= 0 ? 0 : HOLD_MAX_MS;
    struct held_pull *hp = malloc(sizeof(*hp));
    struct rpc_cmd *copy = hp ? rpc_cmd_clone(req) : NULL;
    if (!copy || wait == 0) {
        free(hp);
        rpc_cmd_free(copy);
        return do_pull(b, req, &h, HOLD_NONE, resp, &at);
    }
    *hp = (struct held_pull){b, rpc_conn_ref(conn), copy, at, mq_mono_us() / 1000 + wait};
    if (park(hp, h.topic, h.queue_id)) {
        rpc_conn_unref(conn);
        rpc_cmd_free(copy);
        free(hp);
        return do_pull(b, req, &h, HOLD_NONE, resp, &at);
    }
    return RPC_DEFER;
}

/* ---- offsets ---- */

static int topic_queue(const struct rpc_cmd *req, const char **topic, int32_t *qid,
                       struct rpc_cmd **resp)
{
    if (!(*topic = brk__need(req, "topic", resp)))
        return -EINVAL;
    if (rpc_cmd_ext_get_int32(req, "queueId", qid) || *qid < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "queueId must be a non-negative integer");
        return -EINVAL;
    }
    return 0;
}

static int reply_value(const struct rpc_cmd *req, const char *key, int64_t v, struct rpc_cmd **resp)
{
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    if (*resp && rpc_cmd_ext_set_int64(*resp, key, v)) {
        rpc_cmd_free(*resp);
        *resp = NULL;
    }
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int on_query_offset(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    const char *topic, *group = brk__need(req, "consumerGroup", resp);
    int32_t qid;
    if (!group || topic_queue(req, &topic, &qid, resp))
        return RPC_REPLY;
    int64_t off = brk_offsets_query(b->offsets, group, topic, qid);
    /* RocketMQ's rule for a group without an offset: start at 0 while the queue still begins
     * at 0 (nothing deleted), else QUERY_NOT_FOUND and the client picks its own start. */
    if (off < 0 && store_min_offset(b->store, topic, strlen(topic), qid) <= 0)
        off = 0;
    if (off < 0) {
        *resp = brk__resp(req, RPC_QUERY_NOT_FOUND,
                          "Not found, maybe this group consumer boot "
                          "first");
        return RPC_REPLY;
    }
    return reply_value(req, "offset", off, resp);
}

static int on_update_offset(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                            void *arg)
{
    struct broker *b = arg;
    const char *topic, *group = brk__need(req, "consumerGroup", resp);
    int32_t qid;
    int64_t off = -1;
    if (!group || topic_queue(req, &topic, &qid, resp))
        return RPC_REPLY;
    (void)rpc_cmd_ext_get_int64(req, "commitOffset", &off);
    /* Stock clients send -1 for "unknown" (docs/INTEROP.md): ignored, not stored. */
    if (off >= 0)
        (void)brk_offsets_commit(b->offsets, group, topic, qid, off);
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int on_offset_query(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    const char *topic;
    int32_t qid;
    if (topic_queue(req, &topic, &qid, resp))
        return RPC_REPLY;
    size_t tl = strlen(topic);
    int64_t ts = 0;
    switch (req->code) {
    case REQ_GET_MAX_OFFSET:
        return reply_value(req, "offset", store_max_offset(b->store, topic, tl, qid), resp);
    case REQ_GET_MIN_OFFSET:
        return reply_value(req, "offset", store_min_offset(b->store, topic, tl, qid), resp);
    case REQ_SEARCH_OFFSET_BY_TIMESTAMP:
        (void)rpc_cmd_ext_get_int64(req, "timestamp", &ts);
        return reply_value(req, "offset", store_offset_by_time(b->store, topic, tl, qid, ts), resp);
    default: /* GET_EARLIEST_MSG_STORETIME */
        return reply_value(req, "timestamp", store_earliest_time(b->store, topic, tl, qid), resp);
    }
}

void brk__register_pull_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_PULL_MESSAGE, on_pull, b, 0);
    rpc_server_handle(b->srv, REQ_QUERY_CONSUMER_OFFSET, on_query_offset, b, 0);
    rpc_server_handle(b->srv, REQ_UPDATE_CONSUMER_OFFSET, on_update_offset, b, 0);
    rpc_server_handle(b->srv, REQ_GET_MAX_OFFSET, on_offset_query, b, 0);
    rpc_server_handle(b->srv, REQ_GET_MIN_OFFSET, on_offset_query, b, 0);
    rpc_server_handle(b->srv, REQ_SEARCH_OFFSET_BY_TIMESTAMP, on_offset_query, b, 0);
    rpc_server_handle(b->srv, REQ_GET_EARLIEST_MSG_STORETIME, on_offset_query, b, 0);
}

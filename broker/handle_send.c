/* handle_send.c — SEND_MESSAGE (long header names), SEND_MESSAGE_V2 (short names a..m) and
 * SEND_BATCH_MESSAGE: validation as RocketMQ's SendMessageProcessor does it, topic
 * auto-creation through TBW102, the append, and the reply — at once with ASYNC_FLUSH, or
 * deferred until the group commit makes it durable with SYNC_FLUSH. CONSUMER_SEND_MSG_BACK
 * (the retry path) lives here too: it re-sends a stored message to %RETRY%<group> or
 * %DLQ%<group>. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_batch.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"
#include "common/mq_util.h"

#define MAX_BATCH            100000 /* messages in one SEND_BATCH_MESSAGE */
#define SEND_VISIBLE_WAIT_MS 5000

struct send_hdr {
    const char *group, *topic, *default_topic, *props;
    int32_t default_queues, queue_id, sysflag, flag, reconsume_times, max_reconsume;
    int64_t born_ts;
    int batch;
};

/* An int field (as rpc_cmd_ext_get_int32 reads it): *out is left alone when v is not one. */
static void hdr_int32(const char *v, int32_t *out)
{
    int64_t x;
    if (rpc_i64_parse(v, &x) == 0 && x >= INT32_MIN && x <= INT32_MAX)
        *out = (int32_t)x;
}

/* The fields of SendMessageRequestHeader under their long names, in V2 order ("a".."m"). */
static const char *const long_names[] = {
    "producerGroup", "topic",          "defaultTopic",  "defaultTopicQueueNums",
    "queueId",       "sysFlag",        "bornTimestamp", "flag",
    "properties",    "reconsumeTimes", "unitMode",      "maxReconsumeTimes",
    "batch",
};

/* Reads the header in either naming (SendMessageRequestHeader / ...V2) in one pass over its
 * fields; where a field repeats, the last one counts (as rpc_cmd_ext_get finds it). */
static int parse_hdr(const struct rpc_cmd *req, struct send_hdr *h)
{
    int v2 = req->code == REQ_SEND_MESSAGE_V2 || req->code == REQ_SEND_BATCH_MESSAGE;
    memset(h, 0, sizeof(*h));
    h->default_queues = 4;
    h->queue_id = -1;
    h->max_reconsume = -1;
    for (uint32_t i = 0; i < req->ext_n; i++) {
        const char *k = rpc_cmd_ext_key(req, i), *v = rpc_cmd_ext_val(req, i);
        int f = -1; /* index into long_names */
        if (v2) {
            if (k[0] >= 'a' && k[0] <= 'm' && k[1] == '\0')
                f = k[0] - 'a';
        } else {
            for (size_t n = 0; n < sizeof(long_names) / sizeof(long_names[0]) && f < 0; n++)
                if (k[0] == long_names[n][0] && strcmp(k, long_names[n]) == 0)
                    f = (int)n;
        }
        switch (f) {
        case 0:
            h->group = v;
            break;
        case 1:
            h->topic = v;
            break;
        case 2:
            h->default_topic = v;
            break;
        case 3:
            hdr_int32(v, &h->default_queues);
            break;
        case 4:
            hdr_int32(v, &h->queue_id);
            break;
        case 5:
            hdr_int32(v, &h->sysflag);
            break;
        case 6:
            (void)rpc_i64_parse(v, &h->born_ts);
            break;
        case 7:
            hdr_int32(v, &h->flag);
            break;
        case 8:
            h->props = v;
            break;
        case 9:
            hdr_int32(v, &h->reconsume_times);
            break;
        case 11:
            hdr_int32(v, &h->max_reconsume);
            break;
        case 12:
            if (!strcmp(v, "true") || !strcmp(v, "1"))
                h->batch = 1;
            else if (!strcmp(v, "false") || !strcmp(v, "0"))
                h->batch = 0;
            break;
        default:
            break; /* unitMode, and fields this broker does not read */
        }
    }
    if (req->code == REQ_SEND_BATCH_MESSAGE)
        h->batch = 1;
    return h->topic ? 0 : -EINVAL;
}

/* One decimal number of at most `max`, advancing *p past it; -1 if there is none. */
static long dec(const char **p, long max)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9' && v <= max)
        v = v * 10 + (*s++ - '0');
    *p = s;
    return v <= max ? v : -1;
}

/* "ip:port" -> an IPv4 mq_host (IPv6 peers are recorded as 0.0.0.0: stock 4.x decoders read
 * 4-byte hosts only, see docs/INTEROP.md). Parsed by hand: it runs once per send. */
void brk__parse_host(const char *ipport, struct mq_host *h)
{
    memset(h, 0, sizeof(*h));
    if (!ipport)
        return;
    const char *p = ipport;
    long part[5];
    for (int i = 0; i < 5; i++) {
        part[i] = dec(&p, i < 4 ? 255 : 65535);
        if (part[i] < 0 || *p != (i < 3 ? '.' : i == 3 ? ':' : '\0'))
            return;
        p += i < 4;
    }
    for (int i = 0; i < 4; i++)
        h->addr[i] = (uint8_t)part[i];
    h->port = (unsigned)part[4];
}

/* Checks the topic and picks the queue; creates the topic when allowed. On error *resp is set. */
/* RocketMQ's TopicValidator.isNotAllowedSendTopic: the broker's own queues. A forged half
 * message could be committed into any topic, a forged op message resolve an open transaction. */
static int not_allowed_send_topic(const char *topic)
{
    static const char *const forbidden[] = {MQ_SCHEDULE_TOPIC, "RMQ_SYS_TRANS_HALF_TOPIC",
                                            "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                                            "RMQ_SYS_TRANS_CHECK_MAX_TIME_TOPIC"};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
        if (topic[0] == forbidden[i][0] && strcmp(topic, forbidden[i]) == 0)
            return 1;
    return 0;
}

static int check_topic(struct broker *b, const struct rpc_cmd *req, struct send_hdr *h,
                       struct brk_topic *t, struct rpc_cmd **resp)
{
    char remark[256];
    if (!(b->conf.broker_permission & BRK_PERM_WRITE)) {
        snprintf(remark, sizeof(remark), "the broker[%s] sending message is forbidden",
                 b->conf.broker_name);
        *resp = brk__resp(req, RPC_NO_PERMISSION, remark);
        return -EACCES;
    }
    if (mq_check_topic(h->topic, strlen(h->topic)) || strcmp(h->topic, BRK_DEFAULT_TOPIC) == 0) {
        snprintf(remark, sizeof(remark),
                 "the topic[%.130s] is not valid: 1-127 characters of "
                 "[%%|a-zA-Z0-9_-], and not TBW102",
                 h->topic);
        *resp = brk__resp(req, RPC_MESSAGE_ILLEGAL, remark);
        return -EINVAL;
    }
    if (not_allowed_send_topic(h->topic)) {
        snprintf(remark, sizeof(remark), "Sending message to topic[%s] is forbidden.", h->topic);
        *resp = brk__resp(req, RPC_NO_PERMISSION, remark);
        return -EACCES;
    }
    int rc = brk_topics_get(b->topics, h->topic, t);
    if (rc == -ENOENT) {
        /* RocketMQ's createTopicInSendMessageMethod: only through a default topic that exists
         * with the INHERIT permission; retry topics are created for their group. */
        struct brk_topic def;
        int queues = -1;
        if (strncmp(h->topic, BRK_RETRY_PREFIX, strlen(BRK_RETRY_PREFIX)) == 0)
            queues = 1;
        else if (b->conf.auto_create_topic && h->default_topic &&
                 brk_topics_get(b->topics, h->default_topic, &def) == 0 &&
                 (def.perm & BRK_PERM_INHERIT))
            queues = h->default_queues < def.write_queues ? h->default_queues : def.write_queues;
        if (queues > 0)
            rc = brk__ensure_topic(b, h->topic, queues, 1, t);
    }
    if (rc) {
        snprintf(remark, sizeof(remark), "topic[%.130s] not exist, apply first please!", h->topic);
        *resp = brk__resp(req, RPC_TOPIC_NOT_EXIST, remark);
        return rc;
    }
    if (!(t->perm & BRK_PERM_WRITE)) {
        snprintf(remark, sizeof(remark), "the topic[%.130s] sending message is forbidden",
                 h->topic);
        *resp = brk__resp(req, RPC_NO_PERMISSION, remark);
        return -EACCES;
    }
    int nq = t->write_queues > t->read_queues ? t->write_queues : t->read_queues;
    if (nq <= 0 || h->queue_id >= nq) {
        snprintf(remark, sizeof(remark), "request queueId[%d] is illegal, topic %.130s has %d",
                 h->queue_id, h->topic, nq);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
        return -EINVAL;
    }
    if (h->queue_id < 0)
        h->queue_id = (int32_t)((uint32_t)mq_mono_us() % (uint32_t)t->write_queues);
    return 0;
}

/* Refuses a batch with transaction bits (RocketMQ's store refuses them too) and a single send
 * flagged TRANSACTION_ROLLBACK (only END_TRANSACTION rolls back). A single PREPARED send is a
 * half message (transaction.c) and a COMMIT an ordinary message. Returns 0, or -EPERM with
 * *resp set: RocketMQ's answer for a transaction message a broker does not take. */
static int reject_transaction(struct broker *b, const struct rpc_cmd *req, const struct send_hdr *h,
                              struct rpc_cmd **resp)
{
    if (!mq_sysflag_tx_hidden(h->sysflag) ||
        (!h->batch && (h->sysflag & MQ_SYSFLAG_TX_MASK) == MQ_SYSFLAG_TX_PREPARED))
        return 0;
    char remark[128];
    snprintf(remark, sizeof(remark), "the broker[%s] sending transaction message is forbidden",
             b->conf.broker_ip);
    *resp = brk__resp(req, RPC_NO_PERMISSION, remark);
    return -EPERM;
}

/* ---- replies ----
 * A send is answered once its records are visible to readers (dispatched into the consume
 * queue: whoever reads after the reply sees the message) and, with SYNC_FLUSH, durable. Either
 * may already hold when the append returns; otherwise the last of the two callbacks replies. */

struct pending_send {
    struct rpc_conn *conn;
    struct rpc_cmd *resp; /* the prepared response */
    atomic_int remaining; /* conditions still awaited */
};

static void pending_done(struct pending_send *ps)
{
    if (atomic_fetch_sub(&ps->remaining, 1) != 1)
        return;
    rpc_conn_reply(ps->conn, ps->resp);
    rpc_conn_unref(ps->conn);
    free(ps);
}

/* Flush-thread callback. */
static void on_flushed(void *arg, int64_t offset, int status)
{
    struct pending_send *ps = arg;
    if (status) { /* stored, but not durable within syncFlushTimeout */
        ps->resp->code = status == -ETIMEDOUT ? RPC_FLUSH_DISK_TIMEOUT : RPC_SYSTEM_ERROR;
        rpc_cmd_set_remark(ps->resp,
                           status == -ETIMEDOUT ? "flush disk timeout" : "flush failed: I/O error");
    }
    pending_done(ps);
}

/* Dispatch callback (through b->send_waits, fired on the dispatch thread; or on the hold
 * thread when the wait times out, which still answers: the message is stored). */
void brk__send_visible(void *item, int timed_out, void *arg)
{
    pending_done(item);
}

/* Parks ps until the dispatcher passes last_qoff of topic/queue_id. */
static void wait_visible(struct broker *b, struct pending_send *ps, const char *topic, int queue_id,
                         int64_t last_qoff)
{
    if (brk_hold_add(b->send_waits, topic, queue_id, last_qoff,
                     mq_mono_us() / 1000 + SEND_VISIBLE_WAIT_MS, ps) != 0) {
        pending_done(ps);
        return;
    }
    /* The dispatcher may have passed it between the check and the park. */
    int64_t max = store_max_offset(b->store, topic, strlen(topic), queue_id);
    if (max > last_qoff)
        brk_hold_notify(b->send_waits, topic, queue_id, max);
}

/* Sends of the current read on this I/O thread that wait for their dispatch, which
 * send_read_done does before looking at them again. */
struct late_send {
    struct pending_send *ps;
    int queue_id;
    int64_t last_qoff;
    char topic[BRK_NAME_MAX];
};
static _Thread_local struct {
    struct late_send *v;
    size_t n, cap;
} late;

static int late_add(struct pending_send *ps, const char *topic, int queue_id, int64_t last_qoff)
{
    if (late.n == late.cap) {
        size_t cap = late.cap ? late.cap * 2 : 64;
        struct late_send *v = realloc(late.v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        late.v = v;
        late.cap = cap;
    }
    struct late_send *l = &late.v[late.n++];
    l->ps = ps;
    l->queue_id = queue_id;
    l->last_qoff = last_qoff;
    mq_str_copy(l->topic, sizeof(l->topic), topic, sizeof(l->topic));
    return 0;
}

/* Replies now or later. topic/queue_id/last_qoff name the last stored message, end the
 * commitlog offset past it; `late_ok`: the handler runs on the I/O thread, whose appends
 * send_read_done dispatches. Returns RPC_REPLY (resp left in *resp) or RPC_DEFER. */
static int reply_when_visible(struct broker *b, struct rpc_conn *conn, const char *topic,
                              int queue_id, int64_t last_qoff, int64_t end, int late_ok,
                              struct rpc_cmd **resp)
{
    int need_dispatch = store_max_offset(b->store, topic, strlen(topic), queue_id) <= last_qoff;
    if (!need_dispatch && !b->sync_flush)
        return RPC_REPLY;
    struct pending_send *ps = malloc(sizeof(*ps));
    if (!ps)
        return RPC_REPLY; /* stored: answer without waiting rather than not at all */
    ps->conn = rpc_conn_ref(conn);
    ps->resp = *resp;
    atomic_init(&ps->remaining, 1 + need_dispatch + b->sync_flush); /* +1: this function */
    *resp = NULL;
    if (b->sync_flush && store_when_flushed(b->store, end, on_flushed, ps) != 0)
        pending_done(ps); /* already durable (1) or -ENOMEM: do not wait */
    if (need_dispatch && !(late_ok && late_add(ps, topic, queue_id, last_qoff) == 0))
        wait_visible(b, ps, topic, queue_id, last_qoff);
    pending_done(ps);
    return RPC_DEFER;
}

static struct rpc_cmd *success(const struct rpc_cmd *req, const char *msg_id, int queue_id,
                               int64_t queue_offset)
{
    struct rpc_cmd *resp = brk__resp(req, RPC_SUCCESS, NULL);
    if (!resp)
        return NULL;
    char qid[24], qoff[24]; /* a new response: its fields are appended, no duplicate search */
    if (rpc_cmd_ext_add(resp, "msgId", msg_id) ||
        rpc_cmd_ext_add(resp, "queueId", rpc_i64_text(queue_id, qid)) ||
        rpc_cmd_ext_add(resp, "queueOffset", rpc_i64_text(queue_offset, qoff)) ||
        rpc_cmd_ext_add(resp, "MSG_REGION", "DefaultRegion") ||
        rpc_cmd_ext_add(resp, "TRACE_ON", "true")) {
        rpc_cmd_free(resp);
        return NULL;
    }
    return resp;
}

/* ---- single and batch sends ---- */

static int on_send(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct broker *b = arg;
    struct send_hdr h;
    if (parse_hdr(req, &h)) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "the send request header lacks the topic");
        return RPC_REPLY;
    }
    if (reject_transaction(b, req, &h, resp))
        return RPC_REPLY;
    struct brk_topic t;
    if (check_topic(b, req, &h, &t, resp))
        return RPC_REPLY;
    if (!h.batch && (!req->body || req->body_len == 0)) {
        *resp = brk__resp(req, RPC_MESSAGE_ILLEGAL, "the message body is empty");
        return RPC_REPLY;
    }
    size_t props_len = h.props ? strlen(h.props) : 0;
    if (props_len > 32767) {
        *resp = brk__resp(req, RPC_MESSAGE_ILLEGAL, "the message properties are over 32767 bytes");
        return RPC_REPLY;
    }
    int level = brk__delay_level(b, h.props, props_len);
    if (level > 0 && h.batch) { /* RocketMQ's CommitLog.asyncPutMessages refuses them too */
        *resp = brk__resp(req, RPC_MESSAGE_ILLEGAL, "a batch cannot be delayed (DELAY)");
        return RPC_REPLY;
    }
    /* A retry message past its group's limit goes to the dead-letter topic. */
    const char *topic = h.topic;
    char dlq[BRK_NAME_MAX];
    if (strncmp(topic, BRK_RETRY_PREFIX, strlen(BRK_RETRY_PREFIX)) == 0) {
        int max = h.max_reconsume >= 0 ? h.max_reconsume : b->conf.max_reconsume_times;
        if (h.reconsume_times >= max &&
            (size_t)snprintf(dlq, sizeof(dlq), "%s%s", BRK_DLQ_PREFIX,
                             topic + strlen(BRK_RETRY_PREFIX)) < sizeof(dlq)) {
            struct brk_topic dt;
            if (brk__ensure_topic(b, dlq, 1, 1, &dt) == 0) {
                topic = dlq;
                h.queue_id = 0;
                level = 0; /* the dead letter is not delayed */
            }
        }
    }
    /* A delayed message waits in SCHEDULE_TOPIC_XXXX, queue level - 1 (schedule.c); the
     * answer still names the queue asked for and the offset in the schedule queue, as
     * RocketMQ's does. Properties with an empty name (ali-ons resends them) are dropped, as
     * RocketMQ's parser ignores them. */
    const char *store_topic = topic;
    int store_qid = h.queue_id;
    struct mq_buf nprops;
    mq_buf_init(&nprops);
    int half = !h.batch && (h.sysflag & MQ_SYSFLAG_TX_MASK) == MQ_SYSFLAG_TX_PREPARED;
    if (half)
        level = 0; /* RocketMQ delays a transaction message once it is committed: not here */
    if (half || level > 0 || (h.props && mq_props_check(h.props, props_len) != 0)) {
        /* half messages keep their DELAY for the commit: parked at level 0 */
        int prc = half || level > 0
                      ? brk__parked_props(h.props, props_len, topic, h.queue_id, level, &nprops)
                      : mq_props_copy_except(h.props, props_len, NULL, 0, &nprops);
        if (prc == 0 && mq_buf_append(&nprops, "", 1) == 0) { /* NUL-terminated, not counted */
            nprops.len--;
            h.props = (const char *)nprops.data;
            props_len = nprops.len;
        }
        if ((half || level > 0) && prc != 0) {
            mq_buf_destroy(&nprops);
            *resp = brk__resp(req, RPC_MESSAGE_ILLEGAL,
                              prc == -EMSGSIZE ? "the message properties are over 32767 bytes"
                                               : "malformed message properties");
            return RPC_REPLY;
        }
        if (level > 0) {
            store_topic = MQ_SCHEDULE_TOPIC;
            store_qid = level - 1;
        } else if (half) { /* RMQ_SYS_TRANS_HALF_TOPIC queue 0, no transaction bits */
            store_topic = "RMQ_SYS_TRANS_HALF_TOPIC";
            store_qid = 0;
            h.sysflag &= ~MQ_SYSFLAG_TX_MASK;
        }
    }

    /* what every message of the request shares; each starts as a copy (no memset per message) */
    struct mq_msg tmpl, one, *msgs = &one;
    size_t n = 1;
    memset(&tmpl, 0, sizeof(tmpl));
    brk__parse_host(rpc_conn_peer(conn), &tmpl.born_host);
    tmpl.topic = store_topic;
    tmpl.topic_len = (uint16_t)strlen(store_topic);
    tmpl.queue_id = store_qid;
    tmpl.sysflag = h.batch ? 0 : (h.sysflag & ~(MQ_SYSFLAG_BORNHOST_V6 | MQ_SYSFLAG_STOREHOST_V6));
    tmpl.born_ts = h.born_ts;
    tmpl.reconsume_times = h.reconsume_times;
    one = tmpl;
    if (h.batch) {
        size_t pos = 0, cap = 64;
        struct mq_batch_entry e;
        int r;
        msgs = malloc(cap * sizeof(*msgs));
        n = 0;
        while (msgs && (r = mq_batch_next(req->body, req->body_len, &pos, &e)) == 1) {
            if (n == MAX_BATCH || e.body_len == 0) {
                r = -EBADMSG;
                break;
            }
            if (n == cap) {
                struct mq_msg *p = realloc(msgs, (cap *= 2) * sizeof(*p));
                if (!p) {
                    r = -ENOMEM;
                    break;
                }
                msgs = p;
            }
            struct mq_msg *m = &msgs[n++];
            *m = tmpl;
            m->flag = e.flag;
            m->body = e.body;
            m->body_len = (uint32_t)e.body_len;
            m->props = e.props;
            m->props_len = (uint16_t)e.props_len;
        }
        if (!msgs || r != 0 || n == 0) {
            free(msgs == &one ? NULL : msgs);
            mq_buf_destroy(&nprops);
            *resp = brk__resp(req, RPC_MESSAGE_ILLEGAL, "malformed batch body");
            return RPC_REPLY;
        }
    } else {
        one.body = req->body;
        one.body_len = (uint32_t)req->body_len;
        one.props = h.props;
        one.props_len = (uint16_t)props_len;
        one.flag = h.flag;
    }
    struct store_put_result *res = calloc(n, sizeof(*res));
    int64_t end = 0;
    store_dispatch_defer(b->store); /* dispatched at the end of this read: send_read_done */
    int stored = res ? store_put_batch(b->store, msgs, n, res, &end) : -ENOMEM;
    int rc = RPC_REPLY;
    if (stored < 0 || (size_t)stored < n) {
        /* Nothing partial is acknowledged: a batch is one message to its sender. */
        int err = stored < 0 ? stored : res[stored].status;
        *resp = err == -EBADMSG ? brk__resp(req, RPC_MESSAGE_ILLEGAL,
                                            "malformed message properties: each must be NAME "
                                            "0x01 VALUE 0x02, with a name and no NUL byte")
                                : brk__resp_errno(req, err, "put message");
    } else {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += msgs[i].body_len;
        atomic_fetch_add(&b->stat_puts, n);
        atomic_fetch_add(&b->stat_put_bytes, bytes);
        /* A batch answers with every offset message id, comma-separated (RocketMQ does). */
        char host[40];
        size_t hlen = (size_t)mq_msgid_host(&b->conf.store.store_host, host);
        char *ids = malloc(n * (hlen + 17)), *p = ids;
        for (size_t i = 0; ids && i < n; i++) {
            memcpy(p, host, hlen);
            mq_msgid_offset(res[i].phys_offset, p + hlen);
            p += hlen + 16;
            *p++ = ',';
        }
        if (ids)
            p[-1] = 0;
        *resp = ids ? success(req, ids, h.queue_id, res[0].queue_offset) : NULL;
        free(ids);
        if (*resp)
            rc = reply_when_visible(b, conn, store_topic, store_qid, res[n - 1].queue_offset, end,
                                    1, resp);
        else
            rc = -ENOMEM;
    }
    free(res);
    if (msgs != &one)
        free(msgs);
    mq_buf_destroy(&nprops);
    return rc;
}

/* ---- CONSUMER_SEND_MSG_BACK ---- */

static int on_send_back(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                        void *arg)
{
    struct broker *b = arg;
    int64_t phys = -1;
    int32_t max = b->conf.max_reconsume_times, delay = 0;
    const char *group = brk__need(req, "group", resp);
    if (!group)
        return RPC_REPLY;
    if (rpc_cmd_ext_get_int64(req, "offset", &phys) || phys < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "the request header lacks a valid 'offset'");
        return RPC_REPLY;
    }
    (void)rpc_cmd_ext_get_int32(req, "maxReconsumeTimes", &max);
    (void)rpc_cmd_ext_get_int32(req, "delayLevel", &delay);
    const char *origin_id = rpc_cmd_ext_get(req, "originMsgId");
    struct brk_group g;
    if (brk__ensure_group(b, group, &g)) {
        *resp = brk__resp(req, 26 /* SUBSCRIPTION_GROUP_NOT_EXIST */,
                          "subscription group "
                          "does not exist");
        return RPC_REPLY;
    }
    struct store_get_result *got = NULL;
    struct mq_msg old;
    int rc = store_get_by_phys(b->store, phys, &got);
    if (rc == 0 && mq_msg_decode(got->msgs[0].data, got->msgs[0].len, 0, 0, &old) <= 0)
        rc = MQ_ECORRUPT;
    if (rc) {
        store_release(b->store, got);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "look message by offset failed");
        return RPC_REPLY;
    }
    /* The new message: same body and properties, RETRY_TOPIC and ORIGIN_MESSAGE_ID added,
     * RECONSUMETIMES + 1, to %RETRY%<group> after the delay of level delayLevel (0: 3 +
     * RECONSUMETIMES, RocketMQ's back-off: 10 s, 30 s, 1 min, ...) — or at once to
     * %DLQ%<group> past the limit or for a negative level. */
    char topic[BRK_NAME_MAX];
    int dead = old.reconsume_times >= max || delay < 0;
    snprintf(topic, sizeof(topic), "%s%s", dead ? BRK_DLQ_PREFIX : BRK_RETRY_PREFIX, group);
    int levels = brk__sched_levels(b->sched);
    /* in 64 bits: RECONSUMETIMES is the sender's, up to INT32_MAX */
    int64_t want = dead ? 0 : delay > 0 ? delay : 3 + (int64_t)old.reconsume_times;
    int level = want > levels ? levels : want < 0 ? 0 : (int)want;
    char old_topic[BRK_NAME_MAX];
    snprintf(old_topic, sizeof(old_topic), "%.*s", (int)old.topic_len, old.topic);
    const char *v;
    size_t vlen;
    struct brk_topic t;
    struct mq_buf extra, props;
    mq_buf_init(&extra);
    mq_buf_init(&props);
    rc = brk__ensure_topic(b, topic, 1, 1, &t);
    if (rc == 0 && mq_props_get(old.props, old.props_len, "RETRY_TOPIC", &v, &vlen) != 0)
        rc = mq_props_add(&extra, "RETRY_TOPIC", old_topic);
    if (rc == 0 && origin_id &&
        mq_props_get(old.props, old.props_len, "ORIGIN_MESSAGE_ID", &v, &vlen) != 0)
        rc = mq_props_add(&extra, "ORIGIN_MESSAGE_ID", origin_id);
    if (rc == 0) { /* the old properties, then the added ones */
        struct mq_buf all;
        mq_buf_init(&all);
        rc = mq_buf_append(&all, old.props, old.props_len);
        if (rc == 0 && old.props_len && old.props[old.props_len - 1] != '\002')
            rc = mq_buf_append(&all, "\002", 1); /* the last pair may lack its 0x02 */
        if (rc == 0)
            rc = mq_buf_append(&all, extra.data, extra.len);
        if (rc == 0 && level > 0)
            rc = brk__parked_props((const char *)all.data, all.len, topic, 0, level, &props);
        else if (rc == 0)
            rc = mq_props_copy_except((const char *)all.data, all.len, NULL, 0, &props);
        mq_buf_destroy(&all);
    }
    mq_buf_destroy(&extra);
    if (rc == 0 && props.len > 32767)
        rc = -EMSGSIZE;
    struct store_put_result res;
    int64_t end = 0;
    if (rc == 0) {
        struct mq_msg m = old;
        if (mq_sysflag_tx_hidden(m.sysflag))
            m.sysflag &= ~MQ_SYSFLAG_TX_MASK; /* the copy must be deliverable */
        m.topic = level > 0 ? MQ_SCHEDULE_TOPIC : topic;
        m.topic_len = (uint16_t)strlen(m.topic);
        m.queue_id = level > 0 ? level - 1 : 0;
        m.props = (const char *)props.data;
        m.props_len = (uint16_t)props.len;
        m.reconsume_times = old.reconsume_times + (old.reconsume_times < INT32_MAX);
        brk__parse_host(rpc_conn_peer(conn), &m.born_host);
        int n = store_put_batch(b->store, &m, 1, &res, &end);
        rc = n == 1 ? 0 : (n < 0 ? n : res.status);
    }
    store_release(b->store, got);
    mq_buf_destroy(&props);
    if (rc) {
        *resp = brk__resp_errno(req, rc, "send back");
        return RPC_REPLY;
    }
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    return *resp ? reply_when_visible(b, conn, level > 0 ? MQ_SCHEDULE_TOPIC : topic,
                                      level > 0 ? level - 1 : 0, res.queue_offset, end, 0, resp)
                 : -ENOMEM;
}

/* After the requests of one read: dispatch the sends among them here, so that their replies
 * (and the pulls they wake) go out now, from this thread, without waking the dispatch thread
 * and being handed back. */
static void send_read_done(struct rpc_conn *conn, void *arg)
{
    struct broker *b = arg;
    store_dispatch_now(b->store);
    for (size_t i = 0; i < late.n; i++) {
        struct late_send *l = &late.v[i];
        if (store_max_offset(b->store, l->topic, strlen(l->topic), l->queue_id) > l->last_qoff)
            pending_done(l->ps); /* visible: the reply goes out with this read's others */
        else
            wait_visible(b, l->ps, l->topic, l->queue_id, l->last_qoff);
    }
    /* freed each time: nothing is left for a leak check when the thread ends */
    free(late.v);
    late.v = NULL;
    late.n = late.cap = 0;
}

void brk__register_send_handlers(struct broker *b)
{
    rpc_server_on_read_done(b->srv, send_read_done, b);
    rpc_server_handle(b->srv, REQ_CONSUMER_SEND_MSG_BACK, on_send_back, b, 0);
    rpc_server_handle(b->srv, REQ_SEND_MESSAGE, on_send, b, 0);
    rpc_server_handle(b->srv, REQ_SEND_MESSAGE_V2, on_send, b, 0);
    rpc_server_handle(b->srv, REQ_SEND_BATCH_MESSAGE, on_send, b, 0);
}

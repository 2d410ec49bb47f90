/* consumer_svc.c — the consumer's service thread and lifecycle: heartbeats to the brokers of its
 * topics, rebalancing (GET_CONSUMER_LIST_BY_GROUP + average allocation; at once on
 * NOTIFY_CONSUMER_IDS_CHANGED), starting offsets for newly owned queues, offset commits, and
 * the single-shot mqc_pull. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/consumer_int.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"

enum {
    REQ_QUERY_CONSUMER_OFFSET = 14,
    REQ_UPDATE_CONSUMER_OFFSET = 15,
    REQ_SEARCH_OFFSET_BY_TIMESTAMP = 29,
    REQ_GET_MAX_OFFSET = 30,
    REQ_HEART_BEAT = 34,
    REQ_UNREGISTER_CLIENT = 35,
    REQ_CONSUMER_SEND_MSG_BACK = 36,
    REQ_GET_CONSUMER_LIST_BY_GROUP = 38,
    REQ_NOTIFY_CONSUMER_IDS_CHANGED = 40,
    REQ_CHECK_CLIENT_CONFIG = 46,
};
#define CALL_TIMEOUT_MS 3000

static int64_t now_ms(void)
{
    return mq_mono_us() / 1000;
}

/* A sync call with a few header fields; on 0 the caller owns *resp. */
static int call(struct mqc_consumer *c, const char *addr, int code, const char *const *kv,
                size_t nkv, struct rpc_cmd **resp)
{
    struct rpc_cmd *req = rpc_cmd_new(code);
    int rc = req ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i + 1 < nkv; i += 2)
        rc = rpc_cmd_ext_set(req, kv[i], kv[i + 1]);
    if (rc == 0)
        rc = rpc_client_call(c->inst->rpc, addr, req, CALL_TIMEOUT_MS, resp);
    rpc_cmd_free(req);
    return rc;
}

/* ---- heartbeat ---- */

/* One subscription as RocketMQ's SubscriptionData. */
static json_t *sub_json(const struct sub *s)
{
    json_t *tags = json_array(), *codes = json_array();
    for (size_t t = 0; t < s->tags.n; t++) {
        json_array_append_new(tags, json_string(s->tags.tags[t]));
        json_array_append_new(codes, json_integer(s->tags.codes[t]));
    }
    return json_pack("{s:b, s:s, s:s, s:o, s:o, s:I, s:s}", "classFilterMode", 0, "topic", s->topic,
                     "subString", s->expr, "tagsSet", tags, "codeSet", codes, "subVersion",
                     (json_int_t)s->version, "expressionType", s->sql ? "SQL92" : "TAG");
}

static json_t *heartbeat_body(struct mqc_consumer *c)
{
    static const char *const from_names[] = {"CONSUME_FROM_FIRST_OFFSET",
                                             "CONSUME_FROM_LAST_OFFSET", "CONSUME_FROM_TIMESTAMP"};
    json_t *subs = json_array();
    for (size_t i = 0; i < c->nsubs; i++)
        json_array_append_new(subs, sub_json(&c->subs[i]));
    json_t *cd =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "groupName", c->group, "consumeType",
                  "CONSUME_ACTIVELY", "messageModel", "CLUSTERING", "consumeFromWhere",
                  from_names[c->opts.from % 3], "subscriptionDataSet", subs, "unitMode", 0);
    return json_pack("{s:s, s:[o], s:[]}", "clientID", c->client_id, "consumerDataSet", cd,
                     "producerDataSet");
}

/* Adds the master addresses of the brokers serving topic to out[*n..max) (deduplicated). */
static void topic_brokers(struct mqc_consumer *c, const char *topic, char (*out)[MQC_ADDR_MAX],
                          size_t max, size_t *n)
{
    struct mqc_mq *qs = NULL;
    size_t nq = 0;
    if (mqc__queues(c->inst, topic, 0, &qs, &nq))
        return;
    for (size_t k = 0; k < nq; k++) {
        char addr[MQC_ADDR_MAX];
        if (mqc__broker_addr(c->inst, qs[k].broker, addr))
            continue;
        size_t j = 0;
        while (j < *n && strcmp(out[j], addr) != 0)
            j++;
        if (j == *n && *n < max)
            memcpy(out[(*n)++], addr, MQC_ADDR_MAX);
    }
    free(qs);
}

/* The master addresses of every broker serving a subscribed topic (deduplicated). */
static size_t broker_addrs(struct mqc_consumer *c, char (*out)[MQC_ADDR_MAX], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nsubs; i++)
        topic_brokers(c, c->subs[i].topic, out, max, &n);
    return n;
}

/* As a stock client's start (checkClientInBroker): each SQL92 subscription is shown to every
 * broker serving its topic with CHECK_CLIENT_CONFIG, so that a broker that cannot filter by it
 * (enablePropertyFilter=false) or does not accept the expression fails the start, with the
 * broker's remark logged, instead of refusing every pull later. Unreachable brokers are not a
 * failure (their pulls are retried as for any consumer). */
static int check_sql_subs(struct mqc_consumer *c)
{
    for (size_t i = 0; i < c->nsubs; i++) {
        if (!c->subs[i].sql)
            continue;
        char addrs[32][MQC_ADDR_MAX];
        size_t n = 0;
        topic_brokers(c, c->subs[i].topic, addrs, 32, &n);
        json_t *body = json_pack("{s:s, s:s, s:o}", "clientId", c->client_id, "group", c->group,
                                 "subscriptionData", sub_json(&c->subs[i]));
        int rc = body ? 0 : -ENOMEM;
        for (size_t k = 0; k < n && rc == 0; k++) {
            struct rpc_cmd *req = rpc_cmd_new(REQ_CHECK_CLIENT_CONFIG), *resp = NULL;
            rc = req ? rpc_cmd_set_body_json(req, body) : -ENOMEM;
            if (rc == 0 && rpc_client_call(c->inst->rpc, addrs[k], req, CALL_TIMEOUT_MS, &resp))
                resp = NULL; /* unreachable: not this check's failure */
            if (rc == 0 && resp && resp->code != RPC_SUCCESS) {
                mq_error("consumer %s: broker %s refuses the SQL92 subscription of %s: %s",
                         c->group, addrs[k], c->subs[i].topic,
                         rpc_cmd_remark(resp) ? rpc_cmd_remark(resp) : "(no remark)");
                rc = resp->code == RPC_SUBSCRIPTION_PARSE_FAILED ? -EINVAL : -EOPNOTSUPP;
            }
            rpc_cmd_free(req);
            rpc_cmd_free(resp);
        }
        json_decref(body);
        if (rc)
            return rc;
    }
    return 0;
}

static void send_heartbeats(struct mqc_consumer *c)
{
    char addrs[32][MQC_ADDR_MAX];
    size_t n = broker_addrs(c, addrs, 32);
    json_t *body = heartbeat_body(c);
    for (size_t i = 0; i < n && body; i++) {
        struct rpc_cmd *req = rpc_cmd_new(REQ_HEART_BEAT), *resp = NULL;
        if (!req || rpc_cmd_set_body_json(req, body)) {
            rpc_cmd_free(req);
            break;
        }
        int rc = rpc_client_call(c->inst->rpc, addrs[i], req, CALL_TIMEOUT_MS, &resp);
        if (rc || resp->code != RPC_SUCCESS)
            mq_debug("heartbeat to %s failed: %s", addrs[i], rc ? mq_strerror(rc) : "refused");
        rpc_cmd_free(req);
        rpc_cmd_free(resp);
    }
    json_decref(body);
}

/* ---- offsets ---- */

static int64_t resp_offset(struct rpc_cmd *resp)
{
    int64_t off = -1;
    if (resp->code != RPC_SUCCESS || rpc_cmd_ext_get_int64(resp, "offset", &off))
        off = -1;
    return off;
}

/* Where a newly owned queue starts: the group's committed offset, else per consume-from. */
static int64_t start_offset(struct mqc_consumer *c, const char *addr, const struct mqc_mq *mq)
{
    char qid[16], ts[32];
    snprintf(qid, sizeof(qid), "%d", mq->queue_id);
    const char *q[] = {"consumerGroup", c->group, "topic", mq->topic, "queueId", qid};
    struct rpc_cmd *resp = NULL;
    if (call(c, addr, REQ_QUERY_CONSUMER_OFFSET, q, 6, &resp))
        return -1;
    int64_t off = resp_offset(resp);
    int code = resp->code;
    rpc_cmd_free(resp);
    if (off >= 0 || code != RPC_QUERY_NOT_FOUND)
        return off;
    if (c->opts.from == MQC_FROM_FIRST)
        return 0; /* the broker answers OFFSET_MOVED with the real minimum */
    const char *m[] = {"topic", mq->topic, "queueId", qid, "timestamp", ts};
    snprintf(ts, sizeof(ts), "%lld", (long long)c->opts.from_timestamp_ms);
    int code2 = c->opts.from == MQC_FROM_LAST ? REQ_GET_MAX_OFFSET : REQ_SEARCH_OFFSET_BY_TIMESTAMP;
    if (call(c, addr, code2, m, c->opts.from == MQC_FROM_LAST ? 4 : 6, &resp))
        return -1;
    off = resp_offset(resp);
    rpc_cmd_free(resp);
    return off;
}

/* Sends one queue's consumed offset if it changed. Lock NOT held. */
static int commit_one(struct mqc_consumer *c, const char *addr, const struct mqc_mq *mq,
                      int64_t offset)
{
    char qid[16], off[32];
    snprintf(qid, sizeof(qid), "%d", mq->queue_id);
    snprintf(off, sizeof(off), "%lld", (long long)offset);
    const char *kv[] = {"consumerGroup", c->group, "topic",        mq->topic,
                        "queueId",       qid,      "commitOffset", off};
    struct rpc_cmd *resp = NULL;
    int rc = call(c, addr, REQ_UPDATE_CONSUMER_OFFSET, kv, 8, &resp);
    if (rc == 0 && resp->code != RPC_SUCCESS)
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    rpc_cmd_free(resp);
    return rc;
}

struct pending_commit {
    struct mqc_mq mq;
    char addr[MQC_ADDR_MAX];
    int64_t offset;
};

int mqc_consumer_commit(struct mqc_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = 0, k = 0;
    for (struct pq *q = c->queues; q; q = q->next)
        n++;
    struct pending_commit *todo = calloc(n ? n : 1, sizeof(*todo));
    for (struct pq *q = c->queues; q && todo; q = q->next) {
        if (q->consumed >= 0 && q->consumed != q->committed) {
            todo[k].mq = q->mq;
            memcpy(todo[k].addr, q->addr, MQC_ADDR_MAX);
            todo[k].offset = q->consumed;
            k++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!todo)
        return -ENOMEM;
    int first_err = 0;
    for (size_t i = 0; i < k; i++) {
        int rc = commit_one(c, todo[i].addr, &todo[i].mq, todo[i].offset);
        if (rc && !first_err)
            first_err = rc;
        if (rc)
            continue;
        pthread_mutex_lock(&c->lock);
        for (struct pq *q = c->queues; q; q = q->next)
            if (mqc_queue_cmp(&q->mq, &todo[i].mq) == 0 && q->committed < todo[i].offset)
                q->committed = todo[i].offset;
        pthread_mutex_unlock(&c->lock);
    }
    free(todo);
    return first_err;
}

/* ---- rebalance ---- */

static int consumer_ids(struct mqc_consumer *c, const char *addr, char ***ids, size_t *n)
{
    const char *kv[] = {"consumerGroup", c->group};
    struct rpc_cmd *resp = NULL;
    int rc = call(c, addr, REQ_GET_CONSUMER_LIST_BY_GROUP, kv, 2, &resp);
    if (rc)
        return rc;
    json_t *root =
        resp->code == RPC_SUCCESS && resp->body ? rpc_json_loads(resp->body, resp->body_len) : NULL;
    rpc_cmd_free(resp);
    json_t *list = json_object_get(root, "consumerIdList");
    if (!json_is_array(list)) {
        json_decref(root);
        return -ENOENT;
    }
    *n = 0;
    *ids = calloc(json_array_size(list) + 1, sizeof(char *));
    for (size_t i = 0; *ids && i < json_array_size(list); i++) {
        const char *s = json_string_value(json_array_get(list, i));
        if (s && ((*ids)[*n] = strdup(s)) != NULL)
            (*n)++;
    }
    json_decref(root);
    return *ids ? 0 : -ENOMEM;
}

/* The group's members from the first broker of the topic that answers: every broker learns
 * them from the heartbeats, and one broker that is down or cut off (still in the route until
 * the NameServers expire it) must not stop the whole rebalance. */
static int consumer_ids_any(struct mqc_consumer *c, const struct mqc_mq *qs, size_t nq, char ***ids,
                            size_t *n)
{
    int rc = -ENOENT;
    for (size_t i = 0; i < nq; i++) {
        char addr[MQC_ADDR_MAX];
        if ((i > 0 && strcmp(qs[i].broker, qs[i - 1].broker) == 0) ||
            mqc__broker_addr(c->inst, qs[i].broker, addr))
            continue;
        if ((rc = consumer_ids(c, addr, ids, n)) == 0)
            return 0;
        mq_debug("%s: members of %s from %s: %s", c->inst->client_id, c->inst->group, addr,
                 mq_strerror(rc));
    }
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns 0, or -1 when no broker told the group's members (the owned queues stay as they
 * were). Adds to *awaited the queues allocated to c that another consumer of its instance
 * still holds.
 *
 * Hand-over (lease.c): a queue no longer ours is dropped — unless a message of it is taken and
 * not yet acked (it may be half delivered): then it hands out nothing more and is dropped once
 * that message is acked or nacked — its consumed offset committed, then its lease let go of,
 * handing that offset to a consumer of this instance waiting for it. A newly allocated queue
 * is taken only with its lease, and starts at the handed offset or the broker's, whichever is
 * further. */
static int rebalance_topic(struct mqc_consumer *c, const struct sub *s, size_t *awaited)
{
    (void)mqc__route_refresh(c->inst, s->topic, 0);
    struct mqc_mq *qs = NULL;
    size_t nq = 0;
    char **ids = NULL;
    size_t nids = 0;
    size_t *mine = NULL, nmine = 0;
    int failed = 0;
    if (mqc__queues(c->inst, s->topic, 0, &qs, &nq) || nq == 0)
        goto out; /* no queues known: nothing to own */
    if (consumer_ids_any(c, qs, nq, &ids, &nids)) {
        failed = -1;
        goto out;
    }
    qsort(ids, nids, sizeof(*ids), cmp_str);
    mine = calloc(nq, sizeof(*mine));
    if (!mine)
        goto out;
    nmine = mqc_allocate_averagely(nq, (const char *const *)ids, nids, c->client_id, mine);
    mq_debug("%s: rebalance of %s: %zu queues, %zu consumers, %zu mine", c->client_id, s->topic, nq,
             nids, nmine);

    /* Drop queues no longer ours (commit their offsets first). */
    pthread_mutex_lock(&c->lock);
    for (struct pq *q = c->queues, *next; q; q = next) {
        next = q->next;
        if (strcmp(q->mq.topic, s->topic) != 0)
            continue;
        int keep = 0;
        for (size_t i = 0; i < nmine && !keep; i++)
            keep = mqc_queue_cmp(&qs[mine[i]], &q->mq) == 0;
        if (keep && q->releasing) { /* ours again before it could go */
            q->releasing = 0;
            mqc__pq_pull(c, q);
        } else if (!keep && q->taken) {
            q->releasing = 1;
        } else if (!keep) {
            struct pending_commit pc = {q->mq, "", q->consumed};
            memcpy(pc.addr, q->addr, MQC_ADDR_MAX);
            int dirty = q->consumed >= 0 && q->consumed != q->committed;
            mqc__pq_drop(c, q);
            pthread_mutex_unlock(&c->lock);
            if (dirty)
                (void)commit_one(c, pc.addr, &pc.mq, pc.offset);
            mqc__lease_release(c, &pc.mq, pc.offset);
            pthread_mutex_lock(&c->lock);
            next = c->queues; /* the list may have changed while unlocked */
        }
    }
    pthread_mutex_unlock(&c->lock);

    /* Add newly allocated queues. */
    for (size_t i = 0; i < nmine; i++) {
        const struct mqc_mq *mq = &qs[mine[i]];
        pthread_mutex_lock(&c->lock);
        int have = 0;
        for (struct pq *q = c->queues; q && !have; q = q->next)
            have = mqc_queue_cmp(&q->mq, mq) == 0;
        pthread_mutex_unlock(&c->lock);
        char baddr[MQC_ADDR_MAX];
        if (have || mqc__broker_addr(c->inst, mq->broker, baddr))
            continue;
        int64_t handed, off;
        int rc = mqc__lease_acquire(c, mq, &handed);
        if (rc == -EBUSY)
            (*awaited)++; /* woken when its holder lets go */
        if (rc)
            continue;
        off = start_offset(c, baddr, mq);
        if (handed > off)
            off = handed; /* the broker may not have the last commit (or not answer) */
        struct pq *q = off >= 0 ? calloc(1, sizeof(*q)) : NULL;
        if (!q) {
            mqc__lease_release(c, mq, handed);
            continue; /* retried at the next rebalance */
        }
        q->owner = c;
        q->mq = *mq;
        q->sub = s;
        memcpy(q->addr, baddr, MQC_ADDR_MAX);
        q->refs = 1;
        q->next_pull = q->consumed = q->committed = off;
        pthread_mutex_lock(&c->lock);
        q->next = c->queues;
        c->queues = q;
        mqc__pq_pull(c, q);
        pthread_mutex_unlock(&c->lock);
        mq_debug("%s now owns %s/%s:%d from offset %lld", c->client_id, mq->topic, mq->broker,
                 mq->queue_id, (long long)off);
    }
out:
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    free(mine);
    free(qs);
    return failed;
}

/* `rebalanced` (which mqc_consumer_caught_up requires) is set only by a rebalance that learned
 * every topic's members: owning no queue because the rebalance failed is not being caught up. */
static void rebalance(struct mqc_consumer *c)
{
    int failed = 0;
    size_t awaited = 0;
    for (size_t i = 0; i < c->nsubs; i++)
        failed |= rebalance_topic(c, &c->subs[i], &awaited);
    pthread_mutex_lock(&c->lock);
    if (!failed)
        c->rebalanced = 1;
    c->awaited = awaited;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the service thread ---- */

static void *svc_main(void *arg)
{
    struct mqc_consumer *c = arg;
    int64_t t = now_ms();
    int64_t next_hb = t + c->opts.heartbeat_ms, next_rb = t + c->opts.rebalance_ms;
    int64_t next_persist = t + c->opts.persist_ms;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        t = now_ms();
        /* Pulls that failed are retried once their delay passed. */
        int64_t next_retry = INT64_MAX;
        for (struct pq *q = c->queues; q; q = q->next) {
            if (q->retry_at && q->retry_at <= t) {
                q->retry_at = 0;
                mqc__pq_pull(c, q);
            }
            if (q->retry_at && q->retry_at < next_retry)
                next_retry = q->retry_at;
        }
        int do_rb = c->rebalance_now || t >= next_rb, do_hb = t >= next_hb;
        int do_persist = t >= next_persist;
        if (!do_rb && !do_hb && !do_persist) {
            int64_t wake = next_hb < next_rb ? next_hb : next_rb;
            if (next_persist < wake)
                wake = next_persist;
            if (next_retry < wake)
                wake = next_retry;
            struct timespec ts;
            mq_deadline(&ts, CLOCK_REALTIME, (wake - t) * 1000);
            pthread_cond_timedwait(&c->svc_cond, &c->lock, &ts);
            continue;
        }
        c->rebalance_now = 0;
        pthread_mutex_unlock(&c->lock);
        if (do_hb) {
            send_heartbeats(c);
            next_hb = now_ms() + c->opts.heartbeat_ms;
        }
        if (do_rb) {
            rebalance(c);
            next_rb = now_ms() + c->opts.rebalance_ms;
        }
        if (do_persist) {
            (void)mqc_consumer_commit(c);
            next_persist = now_ms() + c->opts.persist_ms;
        }
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static int on_notify(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct mqc_consumer *c = arg;
    pthread_mutex_lock(&c->lock);
    c->rebalance_now = 1;
    pthread_cond_signal(&c->svc_cond);
    pthread_mutex_unlock(&c->lock);
    *resp = NULL; /* a oneway notification: no answer */
    return RPC_REPLY;
}

void mqc__consumer_register_notify(struct mqc_consumer *c)
{
    (void)rpc_client_handle(c->inst->rpc, REQ_NOTIFY_CONSUMER_IDS_CHANGED, on_notify, c);
}

int mqc_consumer_start(struct mqc_consumer *c)
{
    if (c->started)
        return -EBUSY;
    if (c->nsubs == 0)
        return -EINVAL;
    char retry[MQC_NAME_MAX + 8];
    snprintf(retry, sizeof(retry), "%%RETRY%%%s", c->group);
    int rc;
    for (size_t i = 0; i < c->nsubs; i++)
        (void)mqc__route_refresh(c->inst, c->subs[i].topic, 0);
    if ((rc = check_sql_subs(c)) != 0)
        return rc;
    if (c->opts.retry && (rc = mqc_consumer_subscribe(c, retry, "*")) != 0)
        return rc;
    send_heartbeats(c);
    if (c->opts.retry) /* the first heartbeat of a group creates its retry topic */
        (void)mqc__route_refresh(c->inst, retry, 0);
    rebalance(c);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 << 10); /* one per consumer: mqfs opens many */
    rc = pthread_create(&c->svc, &attr, svc_main, c);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -EAGAIN;
    c->started = 1;
    return 0;
}

int mqc_consumer_retry_later(struct mqc_consumer *c, struct mqc_msg *m, int delay_level)
{
    char addr[MQC_ADDR_MAX], phys[24], level[16];
    const char *id = m->msg_id, *v;
    size_t vlen;
    char uniq[64];
    if (mqc_msg_prop(m, "UNIQ_KEY", &v, &vlen) == 0 && vlen < sizeof(uniq)) {
        memcpy(uniq, v, vlen); /* the id a stock client reports (MessageClientExt.getMsgId) */
        uniq[vlen] = '\0';
        id = uniq;
    }
    snprintf(phys, sizeof(phys), "%lld", (long long)m->phys_offset);
    snprintf(level, sizeof(level), "%d", delay_level);
    struct rpc_cmd *resp = NULL;
    int rc = delay_level < 0 ? -EINVAL : mqc__broker_addr(c->inst, m->mq.broker, addr);
    if (rc == 0) {
        struct rpc_cmd *req = rpc_cmd_new(REQ_CONSUMER_SEND_MSG_BACK);
        if (!req || rpc_cmd_ext_set(req, "group", c->group) ||
            rpc_cmd_ext_set(req, "offset", phys) || rpc_cmd_ext_set(req, "delayLevel", level) ||
            rpc_cmd_ext_set(req, "originMsgId", id) ||
            rpc_cmd_ext_set(req, "originTopic", m->mq.topic) ||
            rpc_cmd_ext_set(req, "maxReconsumeTimes", "16"))
            rc = -ENOMEM;
        else
            rc = rpc_client_call(c->inst->rpc, addr, req, CALL_TIMEOUT_MS, &resp);
        rpc_cmd_free(req);
    }
    if (rc == 0 && resp->code != RPC_SUCCESS)
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    rpc_cmd_free(resp);
    if (rc == 0)
        mqc_consumer_ack(c, m);
    else
        mqc_consumer_nack(c, m);
    return rc;
}

void mqc_consumer_free(struct mqc_consumer *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->stopping = 1;
        pthread_cond_broadcast(&c->svc_cond);
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->svc, NULL);
        (void)mqc_consumer_commit(c);
        char addrs[32][MQC_ADDR_MAX];
        size_t n = broker_addrs(c, addrs, 32);
        for (size_t i = 0; i < n; i++) {
            const char *kv[] = {"clientID", c->client_id, "consumerGroup", c->group};
            struct rpc_cmd *resp = NULL;
            if (call(c, addrs[i], REQ_UNREGISTER_CLIENT, kv, 4, &resp) == 0)
                rpc_cmd_free(resp);
        }
    }
    mqc__lease_forget(c); /* after the last commit: hands the final offsets over */
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cond);
    while (c->cb_active) /* an on_ready call in progress: the caller frees its state next */
        pthread_cond_wait(&c->cond, &c->lock);
    while (c->queues)
        mqc__pq_drop(c, c->queues);
    pthread_mutex_unlock(&c->lock);
    /* An own instance fails the pulls in flight now (their callbacks drop their references);
     * with a shared one they finish within the suspend time and the last frees the consumer. */
    if (c->own_inst)
        mqc__instance_free(c->inst);
    mqc__consumer_unref(c);
}

static int pull_once(struct mqc_consumer *c, const struct mqc_mq *mq, const char *expr, int sql,
                     int64_t offset, int max_msgs, int suspend_ms, int64_t commit_offset,
                     struct mqc_pull_result *out)
{
    char addr[MQC_ADDR_MAX];
    if (mqc__broker_addr(c->inst, mq->broker, addr)) {
        int rc = mqc__route_refresh(c->inst, mq->topic, 0);
        if (rc || mqc__broker_addr(c->inst, mq->broker, addr))
            return rc ? rc : -ENOENT;
    }
    struct mq_tags tags = {.all = 1}; /* SQL92: the broker filters, nothing is re-checked */
    int rc = sql ? 0 : mq_tags_parse(expr, &tags);
    if (rc)
        return rc;
    struct rpc_cmd *req = mqc__pull_request(c->group, mq, expr, sql, offset, max_msgs, suspend_ms,
                                            commit_offset),
                   *resp = NULL;
    rc = req ? rpc_client_call(c->inst->rpc, addr, req, suspend_ms + CALL_TIMEOUT_MS, &resp)
             : -ENOMEM;
    rpc_cmd_free(req);
    if (rc == 0)
        rc = mqc__pull_parse(resp, mq, &tags, out);
    mq_tags_destroy(&tags);
    return rc;
}

int mqc_pull(struct mqc_consumer *c, const struct mqc_mq *mq, const char *expr, int64_t offset,
             int max_msgs, int suspend_ms, int64_t commit_offset, struct mqc_pull_result *out)
{
    return pull_once(c, mq, expr, 0, offset, max_msgs, suspend_ms, commit_offset, out);
}

int mqc_pull_sql(struct mqc_consumer *c, const struct mqc_mq *mq, const char *sql, int64_t offset,
                 int max_msgs, int suspend_ms, int64_t commit_offset, struct mqc_pull_result *out)
{
    if (!sql || !*sql)
        return -EINVAL;
    return pull_once(c, mq, sql, 1, offset, max_msgs, suspend_ms, commit_offset, out);
}

/* producer.c — sends: sync with retries across brokers, async with bounded in-flight bytes,
 * oneway, batch, and ordered sends through a selector (RocketMQ's DefaultMQProducerImpl).
 * Requests are SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE with the short header names (FORMATS.md
 * Part 2); bodies over compress_over are compressed (zstd or zlib) and flagged in the sysflag. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "client/client_int.h"
#include "common/mq_batch.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"

#define REQ_SEND_MESSAGE_V2      310
#define REQ_SEND_BATCH_MESSAGE   320
#define SYSFLAG_COMPRESSED       0x1
#define SYSFLAG_ZSTD             0x200 /* compression type bits 8-10 (RocketMQ 5.x) */
#define RESP_FLUSH_SLAVE_TIMEOUT 12

#define REQ_HEART_BEAT           34
#define ONEWAY_PEERS_MAX         64

struct mqc_producer {
    struct mqc_instance *inst;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t async_bytes; /* unacknowledged async bytes, under lock */
    size_t async_calls;
    /* Brokers that got oneway sends, under lock: flushed by a round trip at free. */
    char oneway_peers[ONEWAY_PEERS_MAX][MQC_ADDR_MAX];
    size_t n_oneway_peers;
};

int mqc_producer_new(const struct mqc_config *cfg, struct mqc_producer **out)
{
    struct mqc_producer *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int rc = mqc__instance_new(cfg, "DEFAULT_PRODUCER", &p->inst);
    if (rc) {
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    *out = p;
    return 0;
}

/* Oneway frames may still sit in a connection's output queue, which rpc_client_free drops.
 * Requests of one connection are written in order, so a producer heartbeat answered by each
 * broker that got oneway sends proves those were written (and read by the broker). */
static void flush_oneways(struct mqc_producer *p)
{
    struct mqc_instance *inst = p->inst;
    json_t *body = p->n_oneway_peers
                       ? json_pack("{s:s, s:[{s:s}], s:[]}", "clientID", inst->client_id,
                                   "producerDataSet", "groupName", inst->group, "consumerDataSet")
                       : NULL;
    for (size_t i = 0; body && i < p->n_oneway_peers; i++) {
        struct rpc_cmd *req = rpc_cmd_new(REQ_HEART_BEAT), *resp = NULL;
        if (req && rpc_cmd_set_body_json(req, body) == 0 &&
            rpc_client_call(inst->rpc, p->oneway_peers[i], req, inst->cfg.send_timeout_ms, &resp) !=
                0)
            mq_debug("oneway flush to %s failed", p->oneway_peers[i]);
        rpc_cmd_free(req);
        rpc_cmd_free(resp);
    }
    json_decref(body);
}

static void note_oneway_peer(struct mqc_producer *p, const char *addr)
{
    pthread_mutex_lock(&p->lock);
    size_t i = 0;
    while (i < p->n_oneway_peers && strcmp(p->oneway_peers[i], addr) != 0)
        i++;
    if (i == p->n_oneway_peers && i < ONEWAY_PEERS_MAX)
        snprintf(p->oneway_peers[p->n_oneway_peers++], MQC_ADDR_MAX, "%s", addr);
    pthread_mutex_unlock(&p->lock);
}

void mqc_producer_free(struct mqc_producer *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    while (p->async_calls > 0)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    flush_oneways(p);
    mqc__instance_free(p->inst);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* NUL-terminates header properties in place (not counted in len), so that make_cmd can hand
 * them to rpc_cmd_ext_add without a copy. */
static int props_terminate(struct mq_buf *b)
{
    int rc = mq_buf_reserve(b, 1);
    if (rc == 0)
        b->data[b->len] = 0;
    return rc;
}

static int validate(struct mqc_producer *p, const struct mqc_message *m)
{
    if (!m->topic || mq_check_topic(m->topic, strlen(m->topic)))
        return -EINVAL;
    if (!m->body || m->body_len == 0)
        return -EINVAL;
    if (m->body_len > p->inst->cfg.max_message_size)
        return -EMSGSIZE;
    if (m->delay_level < 0)
        return -EINVAL;
    return 0;
}

/* Compresses a body when it is over the threshold; on success *out is malloc'd. Returns 1 if
 * compressed, 0 if not (keep the original), or -ENOMEM. */
static int maybe_compress(struct mqc_producer *p, const void *body, size_t len, void **out,
                          size_t *olen, int *sysflag)
{
    const struct mqc_config *cfg = &p->inst->cfg;
    if (cfg->compress_over == 0 || len <= cfg->compress_over)
        return 0;
    if (cfg->compress_type != MQC_COMPRESS_ZLIB) {
        size_t cap = ZSTD_compressBound(len);
        void *buf = malloc(cap);
        if (!buf)
            return -ENOMEM;
        size_t n = ZSTD_compress(buf, cap, body, len, 3);
        if (ZSTD_isError(n) || n >= len) {
            free(buf);
            return 0;
        }
        *out = buf;
        *olen = n;
        *sysflag |= SYSFLAG_COMPRESSED | SYSFLAG_ZSTD;
        return 1;
    }
    uLongf cap = compressBound((uLong)len);
    void *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    if (compress2(buf, &cap, body, (uLong)len, 5) != Z_OK || cap >= len) {
        free(buf);
        return 0;
    }
    *out = buf;
    *olen = cap;
    *sysflag |= SYSFLAG_COMPRESSED; /* zlib: what RocketMQ 4.x clients decompress */
    return 1;
}

/* A prepared request: header fields that do not depend on the queue, and the body. */
struct send_req {
    char topic[MQC_NAME_MAX];
    size_t topic_len;
    char uniq[33];
    int code;
    int sysflag;
    int32_t flag;
    int64_t born_ms;
    int batch;
    const char *props_str; /* header properties, NUL-terminated: props_small or props */
    size_t props_len;
    char props_small[192];
    struct mq_buf props;
    const void *body_ref; /* a sync send's body, borrowed from the caller (not in body) */
    size_t body_ref_len;
    struct mq_buf body; /* empty once shared */
    struct shared_body *shared;
};

/* A large body handed to the remoting client by reference (no copy of a batch of megabytes):
 * each request of a send holds a reference, as does the send_req; the last one frees it. */
struct shared_body {
    atomic_int refs;
    uint8_t *data;
    size_t len;
};

static void shared_put(void *arg)
{
    struct shared_body *sb = arg;
    if (atomic_fetch_sub(&sb->refs, 1) == 1) {
        free(sb->data);
        free(sb);
    }
}

/* Moves r's body into a shared block; on -ENOMEM r is unchanged (and sent by copy). */
static void share_body(struct send_req *r)
{
    struct shared_body *sb = malloc(sizeof(*sb));
    if (!sb)
        return;
    atomic_init(&sb->refs, 1);
    sb->data = mq_buf_steal(&r->body, &sb->len);
    r->shared = sb;
}

static void send_req_destroy(struct send_req *r)
{
    mq_buf_destroy(&r->props);
    mq_buf_destroy(&r->body);
    if (r->shared)
        shared_put(r->shared);
}

/* Prepares a single message. copy_body: the body must outlive the call (async); a sync send
 * borrows the caller's. */
static int prepare_one(struct mqc_producer *p, const struct mqc_message *m, struct send_req *r,
                       int copy_body)
{
    r->shared = NULL;
    r->body_ref = NULL;
    r->body_ref_len = 0;
    r->sysflag = 0;
    r->batch = 0;
    mq_buf_init(&r->props);
    mq_buf_init(&r->body);
    int rc = validate(p, m);
    if (rc)
        return rc;
    r->topic_len = mq_str_copy(r->topic, sizeof(r->topic), m->topic, sizeof(r->topic));
    r->code = REQ_SEND_MESSAGE_V2;
    r->flag = m->flag;
    r->born_ms = mq_now_ms();
    mqc_uniq_id_at(r->uniq, r->born_ms);
    size_t kl = m->keys ? strlen(m->keys) : 0, tl = m->tags ? strlen(m->tags) : 0;
    char delay[32]; /* "DELAY\1<level>\2" */
    size_t dl = m->delay_level ? (size_t)snprintf(delay, sizeof(delay), "%s\001%d\002",
                                                  MQ_PROP_DELAY, m->delay_level)
                               : 0;
    size_t need = mqc__props_len(m->props_len, kl, tl) + dl;
    char *w = r->props_small;
    if (need >= sizeof(r->props_small)) {
        if ((rc = mq_buf_reserve(&r->props, need + 1)) != 0)
            return rc;
        w = (char *)r->props.data;
    }
    r->props_str = w;
    r->props_len = (size_t)((char *)mqc__props_put((uint8_t *)w, m, kl, tl, r->uniq) - w);
    memcpy(w + r->props_len, delay, dl);
    r->props_len += dl;
    w[r->props_len] = 0;
    r->props.len = w == r->props_small ? 0 : r->props_len;
    if (r->props_len > 32767)
        return -EMSGSIZE;
    void *z = NULL;
    size_t zlen = 0;
    rc = maybe_compress(p, m->body, m->body_len, &z, &zlen, &r->sysflag);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        r->body.data = z;
        r->body.len = r->body.cap = zlen;
        return 0;
    }
    if (!copy_body) {
        r->body_ref = m->body;
        r->body_ref_len = m->body_len;
        return 0;
    }
    return mq_buf_append(&r->body, m->body, m->body_len);
}

static int add_i64(struct rpc_cmd *c, const char *key, int64_t v)
{
    char n[24];
    const char *t = rpc_i64_text(v, n);
    return rpc_cmd_ext_addn(c, key, 1, t, (size_t)(n + 23 - t));
}

/* Header fields as text without snprintf, appended without a duplicate search (the keys are
 * fresh): formatting and lookups were a visible share of a send's client CPU. */
static struct rpc_cmd *make_cmd(struct mqc_producer *p, const struct send_req *r,
                                const struct mqc_mq *q)
{
    struct rpc_cmd *c = rpc_cmd_new(r->code);
    if (!c)
        return NULL;
    int rc = rpc_cmd_ext_add(c, "a", p->inst->cfg.group);
    rc = rc ? rc : rpc_cmd_ext_addn(c, "b", 1, r->topic, r->topic_len);
    rc = rc ? rc : rpc_cmd_ext_addn(c, "c", 1, MQC_DEFAULT_TOPIC, sizeof(MQC_DEFAULT_TOPIC) - 1);
    rc = rc ? rc : add_i64(c, "d", MQC_DEFAULT_TOPIC_QNUM);
    rc = rc ? rc : add_i64(c, "e", q->queue_id);
    rc = rc ? rc : add_i64(c, "f", r->sysflag);
    rc = rc ? rc : add_i64(c, "g", r->born_ms);
    rc = rc ? rc : add_i64(c, "h", r->flag);
    rc = rc ? rc : rpc_cmd_ext_addn(c, "i", 1, r->props_str, r->props_len);
    rc = rc ? rc : rpc_cmd_ext_addn(c, "j", 1, "0", 1);
    rc = rc ? rc : rpc_cmd_ext_addn(c, "k", 1, "false", 5);
    rc = rc ? rc : rpc_cmd_ext_addn(c, "m", 1, r->batch ? "true" : "false", r->batch ? 4 : 5);
    if (rc) {
        rpc_cmd_free(c);
        return NULL;
    }
    if (r->shared) {
        atomic_fetch_add(&r->shared->refs, 1);
        rpc_cmd_set_body_ref(c, r->shared->data, r->shared->len, shared_put, r->shared);
    } else if (r->body_ref) {
        rpc_cmd_set_body_ref(c, r->body_ref, r->body_ref_len, NULL, NULL);
    } else {
        rpc_cmd_set_body_ref(c, r->body.data, r->body.len, NULL, NULL);
    }
    return c;
}

/* Interprets a send response. Returns 0 (res filled), or a negative errno. */
static int parse_response(const struct rpc_cmd *resp, const struct send_req *r,
                          const struct mqc_mq *q, struct mqc_send_result *res)
{
    int code = resp->code;
    enum mqc_send_status st = MQC_SEND_OK;
    if (code == RPC_FLUSH_DISK_TIMEOUT)
        st = MQC_FLUSH_DISK_TIMEOUT;
    else if (code == RESP_FLUSH_SLAVE_TIMEOUT)
        st = MQC_FLUSH_SLAVE_TIMEOUT;
    else if (code == RPC_SLAVE_NOT_AVAILABLE)
        st = MQC_SLAVE_NOT_AVAILABLE;
    else if (code != RPC_SUCCESS)
        return mqc__errno_of_response(code, rpc_cmd_remark(resp));
    if (!res)
        return 0;
    memset(res, 0, sizeof(*res));
    res->status = st;
    mq_str_copy(res->msg_id, sizeof(res->msg_id), r->uniq, sizeof(r->uniq));
    mq_str_copy(res->broker, sizeof(res->broker), q->broker, sizeof(q->broker));
    res->queue_id = q->queue_id;
    res->queue_offset = -1;
    /* one pass over the reply's fields (SendMessageResponseHeader); later ones win */
    const char *oid = "", *qid = NULL, *qoff = NULL;
    for (uint32_t i = 0; i < resp->ext_n; i++) {
        const char *k = rpc_cmd_ext_key(resp, i);
        if (k[0] == 'm' && strcmp(k, "msgId") == 0)
            oid = rpc_cmd_ext_val(resp, i);
        else if (k[0] == 'q' && strcmp(k, "queueId") == 0)
            qid = rpc_cmd_ext_val(resp, i);
        else if (k[0] == 'q' && strcmp(k, "queueOffset") == 0)
            qoff = rpc_cmd_ext_val(resp, i);
    }
    mq_str_copy(res->offset_msg_id, sizeof(res->offset_msg_id), oid, 32);
    int64_t v;
    if (qid && rpc_i64_parse(qid, &v) == 0 && v >= INT32_MIN && v <= INT32_MAX)
        res->queue_id = (int32_t)v;
    if (qoff && rpc_i64_parse(qoff, &v) == 0)
        res->queue_offset = v;
    return 0;
}

/* A send's latency clock: monotonic milliseconds at the kernel tick's resolution. Fault
 * avoidance starts at 50 ms, and this read costs a fraction of a precise one (two per send). */
static int64_t coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Errors worth another attempt on another broker. */
static int retryable(int err)
{
    return err == -EIO || err == -ETIMEDOUT || err == -ECONNRESET || err == -ECONNREFUSED ||
           err == -ENOENT || err == -EBUSY || err == -ENOTCONN || err == -EPIPE;
}

/* Sends a prepared request synchronously: to `fixed` when given (no retry), else to a queue
 * chosen per attempt, with the configured retries. */
static int send_sync(struct mqc_producer *p, const struct send_req *r, const struct mqc_mq *fixed,
                     struct mqc_send_result *res)
{
    struct mqc_instance *inst = p->inst;
    int attempts = fixed ? 1 : 1 + (inst->cfg.retries > 0 ? inst->cfg.retries : 0);
    char last_failed[MQC_NAME_MAX] = "";
    int rc = -EIO;
    for (int a = 0; a < attempts; a++) {
        struct mqc_mq q;
        char addr[MQC_ADDR_MAX];
        if (fixed) {
            q = *fixed;
            rc = mqc__broker_addr(inst, q.broker, addr);
        } else {
            rc = mqc__pick_queue(inst, r->topic, last_failed[0] ? last_failed : NULL,
                                 inst->cfg.fault_avoidance, &q, addr);
        }
        if (rc)
            return rc;
        struct rpc_cmd *cmd = make_cmd(p, r, &q), *resp = NULL;
        if (!cmd)
            return -ENOMEM;
        int64_t t0 = coarse_ms();
        rc = rpc_client_call(inst->rpc, addr, cmd, inst->cfg.send_timeout_ms, &resp);
        rpc_cmd_free(cmd);
        int64_t lat_ms = coarse_ms() - t0;
        if (rc == 0) {
            rc = parse_response(resp, r, &q, res);
            rpc_cmd_free(resp);
        }
        mqc__report_latency(inst, q.broker, lat_ms, rc != 0 && retryable(rc));
        if (rc == 0 || !retryable(rc))
            return rc;
        mq_debug("send to %s (%s) failed: %s", q.broker, addr, mq_strerror(rc));
        snprintf(last_failed, sizeof(last_failed), "%s", q.broker);
        (void)mqc__route_refresh(inst, r->topic, 1);
    }
    return rc == -ENOENT ? -ENOENT : (rc == -ENOSPC ? rc : -EIO);
}

int mqc_send(struct mqc_producer *p, const struct mqc_message *m, struct mqc_send_result *res)
{
    struct send_req r;
    int rc = prepare_one(p, m, &r, 0);
    if (rc == 0)
        rc = send_sync(p, &r, NULL, res);
    send_req_destroy(&r);
    return rc;
}

int mqc_send_oneway(struct mqc_producer *p, const struct mqc_message *m)
{
    struct send_req r;
    int rc = prepare_one(p, m, &r, 0); /* the request is encoded before rpc_client_oneway returns */
    struct mqc_mq q;
    char addr[MQC_ADDR_MAX];
    if (rc == 0)
        rc = mqc__pick_queue(p->inst, r.topic, NULL, p->inst->cfg.fault_avoidance, &q, addr);
    if (rc == 0) {
        struct rpc_cmd *cmd = make_cmd(p, &r, &q);
        rc = cmd ? rpc_client_oneway(p->inst->rpc, addr, cmd) : -ENOMEM;
        rpc_cmd_free(cmd);
        if (rc == 0)
            note_oneway_peer(p, addr);
    }
    send_req_destroy(&r);
    return rc;
}

/* The request around a batch body that batch_enc.c encoded into r->body (rc its result). */
static int batch_req(struct send_req *r, const char *topic, int rc)
{
    if (rc)
        return rc;
    r->topic_len = mq_str_copy(r->topic, sizeof(r->topic), topic, sizeof(r->topic));
    r->code = REQ_SEND_BATCH_MESSAGE;
    r->batch = 1;
    r->born_ms = mq_now_ms();
    rc = mq_props_add(&r->props, "WAIT", "true");
    if (rc == 0 && (rc = props_terminate(&r->props)) == 0) {
        r->props_str = (const char *)r->props.data;
        r->props_len = r->props.len;
    }
    return rc;
}

static int prepare_batch(struct mqc_producer *p, const struct mqc_message *m, size_t n,
                         struct send_req *r)
{
    memset(r, 0, sizeof(*r));
    mq_buf_init(&r->props);
    mq_buf_init(&r->body);
    int rc = mqc__batch_encode(m, n, p->inst->cfg.max_message_size, &r->body, r->uniq);
    return batch_req(r, n ? m[0].topic : NULL, rc);
}

/* A sync batch send, its body handed to the remoting client without a copy. */
static int send_batch_sync(struct mqc_producer *p, struct send_req *r, int rc,
                           struct mqc_send_result *res)
{
    if (rc == 0) {
        share_body(r);
        rc = send_sync(p, r, NULL, res);
    }
    send_req_destroy(r);
    return rc;
}

int mqc_send_batch_bodies(struct mqc_producer *p, const struct mqc_message *tmpl,
                          const struct mqc_body *bodies, size_t n, struct mqc_send_result *res)
{
    struct send_req r;
    memset(&r, 0, sizeof(r));
    mq_buf_init(&r.props);
    mq_buf_init(&r.body);
    int rc =
        mqc__batch_encode_bodies(tmpl, bodies, n, p->inst->cfg.max_message_size, &r.body, r.uniq);
    return send_batch_sync(p, &r, batch_req(&r, tmpl->topic, rc), res);
}

int mqc_send_batch(struct mqc_producer *p, const struct mqc_message *m, size_t n,
                   struct mqc_send_result *res)
{
    struct send_req r;
    return send_batch_sync(p, &r, prepare_batch(p, m, n, &r), res);
}

int mqc_send_select(struct mqc_producer *p, const struct mqc_message *m, mqc_selector_fn sel,
                    void *arg, struct mqc_send_result *res)
{
    struct mqc_mq *qs = NULL;
    size_t n = 0;
    int rc = mqc__queues(p->inst, m->topic ? m->topic : "", 1, &qs, &n);
    if (rc == -ENOENT) { /* a new topic: the default route lets the broker create it */
        rc = mqc__route_refresh(p->inst, m->topic, 1);
        if (rc == 0)
            rc = mqc__queues(p->inst, m->topic, 1, &qs, &n);
    }
    if (rc)
        return rc;
    if (n == 0) {
        free(qs);
        return -ENOENT;
    }
    size_t pick = sel(qs, n, m, arg);
    struct send_req r;
    rc = pick < n ? prepare_one(p, m, &r, 0) : -EINVAL;
    if (rc == 0)
        rc = send_sync(p, &r, &qs[pick], res);
    if (pick < n)
        send_req_destroy(&r);
    free(qs);
    return rc;
}

int mqc_producer_queues(struct mqc_producer *p, const char *topic, int for_send,
                        struct mqc_mq **out, size_t *n)
{
    return mqc__queues(p->inst, topic, for_send, out, n);
}

/* ---- async sends ---- */

struct async_send {
    struct mqc_producer *p;
    struct send_req r;
    size_t bytes;
    int attempts_left;
    char last_failed[MQC_NAME_MAX];
    struct mqc_mq q;
    int64_t t0; /* coarse_ms() */
    mqc_send_cb cb;
    void *arg;
};

static void async_done(struct async_send *st, int err, const struct mqc_send_result *res)
{
    struct mqc_producer *p = st->p;
    st->cb(err, err ? NULL : res, st->arg);
    send_req_destroy(&st->r);
    pthread_mutex_lock(&p->lock);
    p->async_bytes -= st->bytes;
    p->async_calls--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    free(st);
}

static void async_cb(int err, struct rpc_cmd *resp, void *arg);

/* Starts one attempt. Runs on the caller's thread first, then on the client's loop thread for
 * retries (where only cached routes can be used). */
static int async_attempt(struct async_send *st)
{
    struct mqc_instance *inst = st->p->inst;
    char addr[MQC_ADDR_MAX];
    int rc = mqc__pick_queue(inst, st->r.topic, st->last_failed[0] ? st->last_failed : NULL,
                             inst->cfg.fault_avoidance, &st->q, addr);
    if (rc)
        return rc;
    struct rpc_cmd *cmd = make_cmd(st->p, &st->r, &st->q);
    if (!cmd)
        return -ENOMEM;
    st->t0 = coarse_ms();
    rc = rpc_client_call_async(inst->rpc, addr, cmd, inst->cfg.send_timeout_ms, async_cb, st);
    rpc_cmd_free(cmd); /* encoded before the call returns */
    return rc;
}

static void async_cb(int err, struct rpc_cmd *resp, void *arg)
{
    struct async_send *st = arg;
    struct mqc_send_result res;
    int64_t lat_ms = coarse_ms() - st->t0;
    if (err == 0) {
        err = parse_response(resp, &st->r, &st->q, &res);
        rpc_cmd_free(resp);
    }
    mqc__report_latency(st->p->inst, st->q.broker, lat_ms, err != 0 && retryable(err));
    while (err && retryable(err) && st->attempts_left > 0) {
        st->attempts_left--;
        snprintf(st->last_failed, sizeof(st->last_failed), "%s", st->q.broker);
        err = async_attempt(st);
        if (err == 0)
            return; /* the next attempt's callback finishes the send */
    }
    if (err && retryable(err) && err != -ENOENT && err != -ENOSPC)
        err = -EIO;
    async_done(st, err, &res);
}

/* Starts a prepared async send (takes st->r); on failure st is freed. */
static int send_async_req(struct mqc_producer *p, struct async_send *st, mqc_send_cb cb, void *arg)
{
    st->p = p;
    st->cb = cb;
    st->arg = arg;
    st->bytes = st->r.body.len + st->r.props_len;
    st->attempts_left = p->inst->cfg.retries > 0 ? p->inst->cfg.retries : 0;

    const struct mqc_config *cfg = &p->inst->cfg;
    pthread_mutex_lock(&p->lock);
    while (p->async_bytes > 0 && p->async_bytes + st->bytes > cfg->max_async_bytes) {
        if (cfg->async_fail_fast) {
            pthread_mutex_unlock(&p->lock);
            send_req_destroy(&st->r);
            free(st);
            return -EAGAIN;
        }
        pthread_cond_wait(&p->cond, &p->lock);
    }
    p->async_bytes += st->bytes;
    p->async_calls++;
    pthread_mutex_unlock(&p->lock);

    int rc = async_attempt(st);
    if (rc) {
        pthread_mutex_lock(&p->lock);
        p->async_bytes -= st->bytes;
        p->async_calls--;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        send_req_destroy(&st->r);
        free(st);
    }
    return rc;
}

int mqc_send_async(struct mqc_producer *p, const struct mqc_message *m, mqc_send_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    struct async_send *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    int rc = prepare_one(p, m, &st->r, 1);
    if (rc) {
        send_req_destroy(&st->r);
        free(st);
        return rc;
    }
    return send_async_req(p, st, cb, arg);
}

int mqc_send_batch_async(struct mqc_producer *p, const struct mqc_message *m, size_t n,
                         mqc_send_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    struct async_send *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    int rc = prepare_batch(p, m, n, &st->r);
    if (rc) {
        send_req_destroy(&st->r);
        free(st);
        return rc;
    }
    return send_async_req(p, st, cb, arg);
}

/* transaction.c — transactional messages (RocketMQ 4.9's TransactionalMessageService,
 * EndTransactionProcessor and TransactionalMessageCheckService). A send flagged
 * TRANSACTION_PREPARED is stored as a half message in RMQ_SYS_TRANS_HALF_TOPIC queue 0 (its own
 * topic and queue in REAL_TOPIC / REAL_QID, no transaction bits: handle_send.c asks
 * brk__parked_props), invisible to consumers of its topic. END_TRANSACTION from the producer
 * commits it — a copy under its real topic and queue, flagged TRANSACTION_COMMIT — or rolls it
 * back; either way an op message (body: the half message's queue offset, tag "d") in
 * RMQ_SYS_TRANS_OP_HALF_TOPIC records that it is resolved. A thread, brk-tx-check, asks a
 * producer of the half message's group (CHECK_TRANSACTION_STATE, oneway) about every half
 * message older than transactionTimeOut that is still open, every transactionCheckInterval, at
 * most transactionCheckMax times (a round without a connected producer counts); then it is
 * dropped (logged, and an op written). The check thread's progress (the first half offset not
 * known resolved) is the consumer offset of group CID_RMQ_SYS_TRANS on the half topic; resolved
 * offsets past it are rebuilt from the op queue at start. Check counts are kept in memory: a
 * restart starts them again. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"
#include "common/mq_util.h"

#define HALF_TOPIC         "RMQ_SYS_TRANS_HALF_TOPIC"
#define OP_TOPIC           "RMQ_SYS_TRANS_OP_HALF_TOPIC"
#define CHECK_GROUP        "CID_RMQ_SYS_TRANS"
#define PROP_TRAN          "TRAN_MSG"
#define PROP_PGROUP        "PGROUP"
#define PRODUCERS_MAX      4096
#define PRODUCERS_PER_CONN 256 /* one connection cannot take the whole table */

struct producer {
    char group[BRK_NAME_MAX];
    char id[256];
    struct rpc_conn *conn;
    int64_t last_ms;
};

struct check_count {
    int64_t off;
    int n;
};

struct brk_tx {
    struct broker *b;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int stop, started;
    struct producer *prods; /* live producers by group (heartbeats) */
    size_t nprods;
    int64_t check_off; /* first half offset not known resolved */
    int64_t *done;     /* resolved half offsets > check_off, sorted */
    size_t ndone, capdone;
    struct check_count *checks; /* checks sent per open half offset */
    size_t nchecks, capchecks;
};

/* ---- resolved offsets (lock held) ---- */

static size_t done_find(const struct brk_tx *tx, int64_t off)
{
    size_t lo = 0, hi = tx->ndone;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tx->done[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int is_done(const struct brk_tx *tx, int64_t off)
{
    if (off < tx->check_off)
        return 1;
    size_t i = done_find(tx, off);
    return i < tx->ndone && tx->done[i] == off;
}

/* Moves check_off over every resolved offset it reaches (to at least `floor`) and forgets
 * the resolved offsets below it; commits it when it moved. */
static void advance(struct brk_tx *tx, int64_t floor)
{
    int64_t was = tx->check_off;
    if (tx->check_off < floor)
        tx->check_off = floor;
    size_t k = 0;
    while (k < tx->ndone && tx->done[k] <= tx->check_off) {
        if (tx->done[k] == tx->check_off)
            tx->check_off++;
        k++;
    }
    if (k) {
        memmove(tx->done, tx->done + k, (tx->ndone - k) * sizeof(*tx->done));
        tx->ndone -= k;
    }
    if (tx->check_off != was)
        (void)brk_offsets_commit(tx->b->offsets, CHECK_GROUP, HALF_TOPIC, 0, tx->check_off);
}

/* Records off as resolved. */
static void mark_done(struct brk_tx *tx, int64_t off)
{
    if (is_done(tx, off))
        return;
    if (tx->ndone == tx->capdone) {
        size_t cap = tx->capdone ? tx->capdone * 2 : 64;
        int64_t *p = realloc(tx->done, cap * sizeof(*p));
        if (!p)
            return; /* checked again later: a producer answers the same */
        tx->done = p;
        tx->capdone = cap;
    }
    size_t i = done_find(tx, off);
    memmove(tx->done + i + 1, tx->done + i, (tx->ndone - i) * sizeof(*tx->done));
    tx->done[i] = off;
    tx->ndone++;
    advance(tx, 0);
    for (size_t k = 0; k < tx->nchecks; k++)
        if (tx->checks[k].off == off)
            tx->checks[k] = tx->checks[--tx->nchecks];
}

/* ---- records ---- */

/* The half message at queue offset qoff (one-record result in *got), or NULL. */
static const struct store_slice *half_at(struct broker *b, int64_t qoff,
                                         struct store_get_result **got)
{
    *got = NULL;
    if (store_get_messages(b->store, HALF_TOPIC, strlen(HALF_TOPIC), 0, qoff, 1, 1, NULL, 0, got) !=
        0)
        return NULL;
    return (*got)->count == 1 && (*got)->msgs[0].queue_offset == qoff ? &(*got)->msgs[0] : NULL;
}

/* A property as a NUL-terminated string in buf; 0 or -ENOENT. */
static int prop_str(const struct mq_msg *m, const char *name, char *buf, size_t cap)
{
    const char *v;
    size_t vlen;
    if (mq_props_get(m->props, m->props_len, name, &v, &vlen) != 0 || vlen >= cap)
        return -ENOENT;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return 0;
}

/* Writes the op message resolving half offset qoff. */
static int put_op(struct broker *b, int64_t qoff)
{
    char body[24], props[] = "TAGS\001d\002";
    int n = snprintf(body, sizeof(body), "%" PRId64, qoff);
    struct mq_msg op;
    memset(&op, 0, sizeof(op));
    op.topic = OP_TOPIC;
    op.topic_len = (uint16_t)strlen(OP_TOPIC);
    op.body = (const uint8_t *)body;
    op.body_len = (uint32_t)n;
    op.props = props;
    op.props_len = (uint16_t)strlen(props);
    op.born_ts = mq_now_ms();
    struct store_put_result res;
    return store_put(b->store, &op, &res);
}

/* Stores the committed copy of half message m (RocketMQ's endMessageTransaction); with a DELAY
 * level, into the schedule topic first, as RocketMQ's put of the committed copy does. */
static int put_commit(struct broker *b, const struct mq_msg *m, int64_t phys)
{
    char topic[BRK_NAME_MAX];
    int qid;
    if (brk__parked_dest(m, topic, &qid))
        return -EINVAL;
    static const char *const drop[] = {MQ_PROP_REAL_TOPIC, MQ_PROP_REAL_QID, PROP_TRAN};
    struct mq_buf props, delayed;
    mq_buf_init(&props);
    mq_buf_init(&delayed);
    int rc = mq_props_copy_except(m->props, m->props_len, drop, 3, &props);
    int level = rc == 0 ? brk__delay_level(b, (const char *)props.data, props.len) : 0;
    if (level > 0 && (rc = brk__parked_props((const char *)props.data, props.len, topic, qid, level,
                                             &delayed)) == 0) {
        mq_buf_destroy(&props);
        props = delayed;
        mq_buf_init(&delayed);
    }
    if (rc == 0) {
        struct mq_msg c = *m;
        c.topic = level > 0 ? MQ_SCHEDULE_TOPIC : topic;
        c.topic_len = (uint16_t)strlen(c.topic);
        c.queue_id = level > 0 ? level - 1 : qid;
        c.sysflag = (m->sysflag & ~MQ_SYSFLAG_TX_MASK) | MQ_SYSFLAG_TX_COMMIT;
        c.prepared_tx_offset = phys;
        c.props = (const char *)props.data;
        c.props_len = (uint16_t)props.len;
        struct store_put_result res;
        rc = store_put(b->store, &c, &res);
    }
    mq_buf_destroy(&props);
    mq_buf_destroy(&delayed);
    return rc;
}

/* ---- END_TRANSACTION (37) ---- */

static int on_end_tx(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct broker *b = arg;
    struct brk_tx *tx = b->tx;
    const char *group = brk__need(req, "producerGroup", resp);
    int64_t qoff = -1, phys = -1;
    int32_t how = -1;
    if (!group)
        return RPC_REPLY;
    if (rpc_cmd_ext_get_int64(req, "tranStateTableOffset", &qoff) ||
        rpc_cmd_ext_get_int64(req, "commitLogOffset", &phys) ||
        rpc_cmd_ext_get_int32(req, "commitOrRollback", &how) ||
        (how != MQ_SYSFLAG_TX_NOT && how != MQ_SYSFLAG_TX_COMMIT &&
         how != MQ_SYSFLAG_TX_ROLLBACK)) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "tranStateTableOffset, commitLogOffset and commitOrRollback (0, 8, 12) "
                          "are required");
        return RPC_REPLY;
    }
    if (how == MQ_SYSFLAG_TX_NOT) { /* the producer does not know yet: checked again later */
        *resp = brk__resp(req, RPC_SUCCESS, NULL);
        return RPC_REPLY;
    }
    const char *err = NULL;
    struct store_get_result *got = NULL;
    struct mq_msg m;
    char pgroup[BRK_NAME_MAX];
    if (store_get_by_phys(b->store, phys, &got) != 0 ||
        mq_msg_decode(got->msgs[0].data, got->msgs[0].len, 0, 0, &m) <= 0 ||
        m.topic_len != strlen(HALF_TOPIC) || memcmp(m.topic, HALF_TOPIC, m.topic_len) != 0)
        err = "Find prepared transaction message failed";
    else if (prop_str(&m, PROP_PGROUP, pgroup, sizeof(pgroup)) || strcmp(pgroup, group) != 0)
        err = "The producer group wrong";
    else if (m.queue_offset != qoff)
        err = "The transaction state table offset wrong";
    int rc = 0;
    if (!err) {
        pthread_mutex_lock(&tx->lock);
        if (!is_done(tx, qoff)) { /* resolved once: a repeated answer changes nothing */
            rc = how == MQ_SYSFLAG_TX_COMMIT ? put_commit(b, &m, phys) : 0;
            if (rc == 0)
                rc = put_op(b, qoff);
            if (rc == 0)
                mark_done(tx, qoff);
        }
        pthread_mutex_unlock(&tx->lock);
    }
    store_release(b->store, got);
    if (err)
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, err);
    else
        *resp = rc ? brk__resp_errno(req, rc, "end transaction") : brk__resp(req, 0, NULL);
    return RPC_REPLY;
}

/* ---- producers (from heartbeats) ---- */

void brk__tx_producers(struct brk_tx *tx, const struct brk_heartbeat *hb, struct rpc_conn *conn,
                       int64_t now_ms)
{
    if (!tx || hb->nproducers == 0)
        return;
    pthread_mutex_lock(&tx->lock);
    size_t mine = 0; /* entries on this connection */
    for (size_t i = 0; i < tx->nprods; i++)
        mine += tx->prods[i].conn == conn;
    for (size_t g = 0; g < hb->nproducers; g++) {
        struct producer *p = NULL;
        for (size_t i = 0; i < tx->nprods && !p; i++)
            if (strcmp(tx->prods[i].group, hb->producer_groups[g]) == 0 &&
                strcmp(tx->prods[i].id, hb->client_id) == 0)
                p = &tx->prods[i];
        if (!p && tx->nprods < PRODUCERS_MAX && mine < PRODUCERS_PER_CONN) {
            struct producer *grown = realloc(tx->prods, (tx->nprods + 1) * sizeof(*grown));
            if (!grown)
                break;
            tx->prods = grown;
            p = &tx->prods[tx->nprods++];
            memset(p, 0, sizeof(*p));
            snprintf(p->group, sizeof(p->group), "%s", hb->producer_groups[g]);
            snprintf(p->id, sizeof(p->id), "%s", hb->client_id);
        }
        if (!p)
            continue;
        if (p->conn != conn) {
            if (p->conn)
                rpc_conn_unref(p->conn);
            p->conn = rpc_conn_ref(conn);
            mine++;
        }
        p->last_ms = now_ms;
    }
    pthread_mutex_unlock(&tx->lock);
}

/* Forgets the producers of a closed connection (conn) or silent since before cutoff. */
void brk__tx_producers_prune(struct brk_tx *tx, struct rpc_conn *conn, int64_t cutoff_ms)
{
    if (!tx)
        return;
    pthread_mutex_lock(&tx->lock);
    for (size_t i = tx->nprods; i-- > 0;) {
        struct producer *p = &tx->prods[i];
        if ((conn && p->conn == conn) || (!conn && p->last_ms < cutoff_ms)) {
            rpc_conn_unref(p->conn);
            tx->prods[i] = tx->prods[--tx->nprods];
        }
    }
    pthread_mutex_unlock(&tx->lock);
}

/* ---- the check-back ---- */

/* A connection (referenced) to a live producer of half message m's group, or NULL. Lock held. */
static struct rpc_conn *producer_conn(struct brk_tx *tx, const struct mq_msg *m)
{
    char group[BRK_NAME_MAX];
    if (prop_str(m, PROP_PGROUP, group, sizeof(group)))
        return NULL;
    for (size_t i = 0; i < tx->nprods; i++)
        if (tx->prods[i].conn && strcmp(tx->prods[i].group, group) == 0)
            return rpc_conn_ref(tx->prods[i].conn);
    return NULL;
}

/* Asks the producer on conn whether the transaction of half message (qoff, phys) committed:
 * CHECK_TRANSACTION_STATE (39), oneway, body = the message with its real topic and queue.
 * Returns 1 when asked. */
static int ask_producer(struct rpc_conn *conn, const struct mq_msg *m, int64_t qoff, int64_t phys)
{
    char topic[BRK_NAME_MAX], uniq[64] = "", offid[57];
    int qid;
    if (brk__parked_dest(m, topic, &qid))
        return 0;
    (void)prop_str(m, MQ_PROP_UNIQ_KEY, uniq, sizeof(uniq));
    mq_msgid_encode(&m->store_host, phys, offid);
    struct mq_msg e = *m;
    e.topic = topic;
    e.topic_len = (uint16_t)strlen(topic);
    e.queue_id = qid;
    int64_t size = mq_msg_record_size(&e);
    uint8_t *body = size > 0 ? malloc((size_t)size) : NULL;
    struct rpc_cmd *req = rpc_cmd_new(39 /* CHECK_TRANSACTION_STATE */);
    int ok = body && req && mq_msg_encode(&e, body, (size_t)size) == size &&
             rpc_cmd_ext_set_int64(req, "tranStateTableOffset", qoff) == 0 &&
             rpc_cmd_ext_set_int64(req, "commitLogOffset", phys) == 0 &&
             rpc_cmd_ext_set(req, "msgId", uniq) == 0 &&
             rpc_cmd_ext_set(req, "transactionId", uniq) == 0 &&
             rpc_cmd_ext_set(req, "offsetMsgId", offid) == 0 &&
             rpc_cmd_set_body_copy(req, body, (size_t)size) == 0;
    free(body);
    if (!ok) {
        rpc_cmd_free(req);
        return 0;
    }
    return rpc_conn_send_oneway(conn, req) == 0;
}

/* The bookkeeping of one check of open half message off: counts it, or drops it after
 * transactionCheckMax checks. Returns the producer to ask (referenced), or NULL. Lock held. */
static struct rpc_conn *count_check(struct brk_tx *tx, const struct mq_msg *m, int64_t off,
                                    int64_t phys)
{
    struct broker *b = tx->b;
    struct check_count *cc = NULL;
    for (size_t i = 0; i < tx->nchecks && !cc; i++)
        if (tx->checks[i].off == off)
            cc = &tx->checks[i];
    if (!cc && tx->nchecks == tx->capchecks) {
        size_t cap = tx->capchecks ? tx->capchecks * 2 : 16;
        struct check_count *p = realloc(tx->checks, cap * sizeof(*p));
        if (p) {
            tx->checks = p;
            tx->capchecks = cap;
        }
    }
    if (!cc && tx->nchecks < tx->capchecks) {
        cc = &tx->checks[tx->nchecks++];
        cc->off = off;
        cc->n = 0;
    }
    if (!cc)
        return NULL;
    if (cc->n >= b->conf.tx_check_max) {
        mq_warn("transaction: half message %" PRId64 " (commitlog %" PRId64
                ") still open after %d checks; dropped",
                off, phys, cc->n);
        if (put_op(b, off) == 0)
            mark_done(tx, off);
        return NULL;
    }
    cc->n++; /* counted asked or not, as RocketMQ: a group gone for good ends */
    struct rpc_conn *conn = producer_conn(tx, m);
    if (!conn)
        mq_debug("transaction: no producer to check half message %" PRId64, off);
    return conn;
}

/* One round: every open half message older than transactionTimeOut is checked. The lock is
 * held for each message's bookkeeping only: reading a half message (from the disk, for an old
 * one) and sending its check happen without it, so that END_TRANSACTION and heartbeats on the
 * I/O threads do not wait for a round over many open transactions. */
static void check_round(struct brk_tx *tx)
{
    struct broker *b = tx->b;
    int64_t max = store_max_offset(b->store, HALF_TOPIC, strlen(HALF_TOPIC), 0);
    int64_t min = store_min_offset(b->store, HALF_TOPIC, strlen(HALF_TOPIC), 0);
    pthread_mutex_lock(&tx->lock);
    advance(tx, min); /* below min: retention took them */
    int64_t off = tx->check_off;
    pthread_mutex_unlock(&tx->lock);
    for (; off < max; off++) {
        pthread_mutex_lock(&tx->lock);
        int stop = tx->stop, done = is_done(tx, off);
        pthread_mutex_unlock(&tx->lock);
        if (stop)
            break;
        if (done)
            continue;
        struct store_get_result *got;
        const struct store_slice *sl = half_at(b, off, &got);
        struct mq_msg m;
        if (!sl || mq_msg_decode(sl->data, sl->len, 0, 0, &m) <= 0) {
            store_release(b->store, got);
            continue;
        }
        if (mq_now_ms() - m.born_ts < b->conf.tx_timeout_ms) {
            store_release(b->store, got);
            break; /* the later ones are younger */
        }
        struct rpc_conn *conn = NULL;
        pthread_mutex_lock(&tx->lock);
        if (!is_done(tx, off)) /* an answer may have come meanwhile */
            conn = count_check(tx, &m, off, sl->phys_offset);
        pthread_mutex_unlock(&tx->lock);
        if (conn) {
            (void)ask_producer(conn, &m, off, sl->phys_offset);
            rpc_conn_unref(conn);
        }
        store_release(b->store, got);
    }
}

static void *check_main(void *arg)
{
    struct brk_tx *tx = arg;
    pthread_setname_np(pthread_self(), "brk-tx-check");
    pthread_mutex_lock(&tx->lock);
    while (!tx->stop) {
        struct timespec ts;
        mq_deadline(&ts, CLOCK_REALTIME, (int64_t)tx->b->conf.tx_check_interval_ms * 1000);
        pthread_cond_timedwait(&tx->cond, &tx->lock, &ts);
        if (tx->stop)
            break;
        pthread_mutex_unlock(&tx->lock);
        check_round(tx);
        pthread_mutex_lock(&tx->lock);
    }
    pthread_mutex_unlock(&tx->lock);
    return NULL;
}

/* ---- life ---- */

/* Rebuilds the resolved offsets past check_off from the op queue. */
static void replay_ops(struct brk_tx *tx)
{
    struct broker *b = tx->b;
    size_t tl = strlen(OP_TOPIC);
    int64_t off = store_min_offset(b->store, OP_TOPIC, tl, 0);
    int64_t max = store_max_offset(b->store, OP_TOPIC, tl, 0);
    while (off < max) {
        struct store_get_result *r = NULL;
        if (store_get_messages(b->store, OP_TOPIC, tl, 0, off, 256, 1 << 20, NULL, 0, &r) != 0 ||
            r->count == 0) {
            store_release(b->store, r);
            break;
        }
        for (size_t i = 0; i < r->count; i++) {
            struct mq_msg m;
            char num[24];
            if (mq_msg_decode(r->msgs[i].data, r->msgs[i].len, 0, 0, &m) > 0 && m.body_len > 0 &&
                m.body_len < sizeof(num)) {
                memcpy(num, m.body, m.body_len);
                num[m.body_len] = '\0';
                char *end;
                long long v = strtoll(num, &end, 10);
                if (!*end && v >= 0)
                    mark_done(tx, v);
            }
            off = r->msgs[i].queue_offset + 1;
        }
        store_release(b->store, r);
    }
}

int brk__tx_open(struct broker *b, struct brk_tx **out)
{
    struct brk_tx *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return -ENOMEM;
    tx->b = b;
    pthread_mutex_init(&tx->lock, NULL);
    pthread_cond_init(&tx->cond, NULL);
    int64_t off = brk_offsets_query(b->offsets, CHECK_GROUP, HALF_TOPIC, 0);
    tx->check_off = off > 0 ? off : 0;
    replay_ops(tx);
    if (pthread_create(&tx->thread, NULL, check_main, tx) != 0) {
        brk__tx_close(tx);
        return -EAGAIN;
    }
    tx->started = 1;
    *out = tx;
    return 0;
}

void brk__tx_close(struct brk_tx *tx)
{
    if (!tx)
        return;
    if (tx->started) {
        pthread_mutex_lock(&tx->lock);
        tx->stop = 1;
        pthread_cond_signal(&tx->cond);
        pthread_mutex_unlock(&tx->lock);
        pthread_join(tx->thread, NULL);
    }
    for (size_t i = 0; i < tx->nprods; i++)
        rpc_conn_unref(tx->prods[i].conn);
    free(tx->prods);
    free(tx->done);
    free(tx->checks);
    pthread_cond_destroy(&tx->cond);
    pthread_mutex_destroy(&tx->lock);
    free(tx);
}

void brk__register_tx_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_END_TRANSACTION, on_end_tx, b, 0);
}

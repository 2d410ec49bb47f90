/* consumer.c — a consumer in a group (RocketMQ's clustering consumption, pull style): heartbeats,
 * rebalancing by average allocation, one long-polling pull in flight per owned queue with a
 * bounded buffer of pulled messages, and offsets that advance only when the application acks a
 * message, committed to the broker periodically, on rebalance and at close. */
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/consumer_int.h"
#include "common/mq_err.h"
#include "common/mq_sql.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"

#define PULL_RETRY_DELAY_MS 3000 /* pullTimeDelayMillsWhenException */

static atomic_uint consumer_seq;

static int64_t now_ms(void)
{
    return mq_mono_us() / 1000;
}

static void pq_unref(struct mqc_consumer *c, struct pq *q);

/* ---- construction ---- */

int mqc_consumer_new(const struct mqc_config *cfg, const struct mqc_consumer_opts *opts,
                     struct mqc_consumer **out)
{
    if (!cfg || !cfg->group || mq_check_topic(cfg->group, strlen(cfg->group)))
        return -EINVAL;
    struct mqc_consumer *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (opts)
        c->opts = *opts;
    if (!c->opts.rebalance_ms)
        c->opts.rebalance_ms = 20000;
    if (!c->opts.heartbeat_ms)
        c->opts.heartbeat_ms = 30000;
    if (!c->opts.persist_ms)
        c->opts.persist_ms = 5000;
    if (!c->opts.suspend_ms)
        c->opts.suspend_ms = 20000;
    if (!c->opts.pull_batch)
        c->opts.pull_batch = 32;
    if (!c->opts.queue_buffer)
        c->opts.queue_buffer = 1000;
    /* Every consumer of a process is its own member of the group: ip@pid#sequence. */
    char inst_name[96];
    snprintf(inst_name, sizeof(inst_name), "%d#%u", (int)getpid(),
             atomic_fetch_add(&consumer_seq, 1));
    int rc;
    if (c->opts.shared) { /* the admin handle's NameServers, routes and connections */
        c->inst = c->opts.shared->inst;
        const char *at = strchr(c->inst->client_id, '@');
        int iplen = at ? (int)(at - c->inst->client_id) : 0;
        snprintf(c->client_id, sizeof(c->client_id), "%.*s@%s", iplen, c->inst->client_id,
                 cfg->instance_name ? cfg->instance_name : inst_name);
    } else {
        struct mqc_config mine = *cfg;
        if (!cfg->instance_name)
            mine.instance_name = inst_name;
        if ((rc = mqc__instance_new(&mine, cfg->group, &c->inst)) != 0) {
            free(c);
            return rc;
        }
        c->own_inst = 1;
        snprintf(c->client_id, sizeof(c->client_id), "%s", c->inst->client_id);
    }
    snprintf(c->group, sizeof(c->group), "%s", cfg->group);
    c->refs = 1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    pthread_cond_init(&c->svc_cond, NULL);
    if (c->own_inst)
        mqc__consumer_register_notify(c);
    *out = c;
    return 0;
}

static int subscribe(struct mqc_consumer *c, const char *topic, const char *expr, int sql)
{
    if (!topic || mq_check_topic(topic, strlen(topic)))
        return -EINVAL;
    if (c->started || c->nsubs == MQC_MAX_SUBS)
        return -EBUSY;
    struct sub *grown = realloc(c->subs, (c->nsubs + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    c->subs = grown;
    struct sub *s = &c->subs[c->nsubs];
    memset(s, 0, sizeof(*s));
    snprintf(s->topic, sizeof(s->topic), "%s", topic);
    snprintf(s->expr, sizeof(s->expr), "%s", expr && *expr ? expr : "*");
    s->sql = sql;
    if (sql)
        s->tags.all = 1; /* the broker filters; nothing is re-checked here */
    int rc = sql ? 0 : mq_tags_parse(s->expr, &s->tags);
    if (rc)
        return rc;
    s->version = mq_now_ms();
    c->nsubs++;
    return 0;
}

int mqc_consumer_subscribe(struct mqc_consumer *c, const char *topic, const char *expr)
{
    return subscribe(c, topic, expr, 0);
}

int mqc_consumer_subscribe_sql(struct mqc_consumer *c, const char *topic, const char *sql)
{
    if (!sql || strlen(sql) >= sizeof(c->subs[0].expr))
        return sql ? -E2BIG : -EINVAL;
    struct mq_sql *q;
    int rc = mq_sql_compile(sql, strlen(sql), &q, NULL, 0); /* refuse what the broker would */
    if (rc)
        return rc;
    mq_sql_free(q);
    return subscribe(c, topic, sql, 1);
}

const char *mqc_consumer_id(const struct mqc_consumer *c)
{
    return c->client_id;
}

void mqc_consumer_on_ready(struct mqc_consumer *c, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&c->lock);
    c->on_ready = fn;
    c->on_ready_arg = arg;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the buffer of pulled messages ---- */

static void chunk_free(struct chunk *k)
{
    mqc_pull_result_destroy(&k->res);
    free(k);
}

/* Frees fully consumed chunks at the head of q. Lock held. */
static void pq_trim(struct pq *q)
{
    while (q->head && q->head->next_msg == q->head->res.n && !q->taken) {
        struct chunk *k = q->head;
        q->head = k->next;
        if (!q->head)
            q->tail = NULL;
        chunk_free(k);
    }
}

static int pq_has_ready(const struct pq *q)
{
    return !q->dropped && !q->releasing && !q->taken && q->head &&
           q->head->next_msg < q->head->res.n;
}

int mqc_consumer_ready(struct mqc_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    int ready = 0;
    for (struct pq *q = c->queues; q && !ready; q = q->next)
        ready = pq_has_ready(q);
    pthread_mutex_unlock(&c->lock);
    return ready;
}

static void notify_ready_locked(struct mqc_consumer *c)
{
    pthread_cond_broadcast(&c->cond);
}

/* ---- pulls ---- */

static void pull_cb(int err, struct rpc_cmd *resp, void *arg);

/* Starts the queue's next pull unless one is in flight, it is paused or dropped. Lock held. */
void mqc__pq_pull(struct mqc_consumer *c, struct pq *q)
{
    if (q->pulling || q->dropped || q->releasing || c->stopping || q->next_pull < 0)
        return;
    if (q->buffered >= (size_t)c->opts.queue_buffer)
        return; /* resumed by take() when the buffer drains */
    if (q->retry_at && now_ms() < q->retry_at)
        return; /* the service thread retries */
    struct rpc_cmd *req =
        mqc__pull_request(c->group, &q->mq, q->sub->expr, q->sub->sql, q->next_pull,
                          c->opts.pull_batch, c->opts.suspend_ms, -1);
    if (!req)
        return;
    q->pulling = 1;
    q->refs++;
    c->refs++;
    int rc =
        rpc_client_call_async(c->inst->rpc, q->addr, req, c->opts.suspend_ms + 10000, pull_cb, q);
    rpc_cmd_free(req);
    if (rc) {
        q->pulling = 0;
        q->refs--;
        c->refs--;
        q->retry_at = now_ms() + PULL_RETRY_DELAY_MS;
    }
}

static void pull_handle(struct mqc_consumer *c, struct pq *q, int err, struct rpc_cmd *resp);

static void pull_cb(int err, struct rpc_cmd *resp, void *arg)
{
    struct pq *q = arg;
    struct mqc_consumer *c = q->owner;
    pull_handle(c, q, err, resp);
    mqc__consumer_unref(c); /* the reference the pull held */
}

static void pull_handle(struct mqc_consumer *c, struct pq *q, int err, struct rpc_cmd *resp)
{
    struct mqc_pull_result res;
    if (err == 0)
        err = mqc__pull_parse(resp, &q->mq, &q->sub->tags, &res); /* takes resp */
    pthread_mutex_lock(&c->lock);
    q->pulling = 0;
    if (q->dropped || c->stopping) {
        if (err == 0)
            mqc_pull_result_destroy(&res);
        pq_unref(c, q);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    if (err) {
        mq_debug("pull %s/%s:%d at %lld: %s", q->mq.topic, q->mq.broker, q->mq.queue_id,
                 (long long)q->next_pull, mq_strerror(err));
        q->retry_at = now_ms() + PULL_RETRY_DELAY_MS;
        pthread_cond_signal(&c->svc_cond);
        pq_unref(c, q);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    q->retry_at = 0;
    q->answered = 1;
    q->known_max = res.max_offset;
    int64_t next_offset = res.next_offset; /* res is destroyed below when nothing is kept */
    enum mqc_pull_status status = res.status;
    int became_ready = 0;
    if (res.status == MQC_PULL_OFFSET_ILLEGAL) {
        mq_warn("offset %lld of %s/%s:%d moved; continuing at %lld", (long long)q->next_pull,
                q->mq.topic, q->mq.broker, q->mq.queue_id, (long long)res.next_offset);
        if (!q->head && !q->taken)
            q->consumed = res.next_offset;
    }
    if (res.status == MQC_PULL_FOUND && res.n > 0) {
        struct chunk *k = calloc(1, sizeof(*k));
        if (!k) {
            mqc_pull_result_destroy(&res);
            q->retry_at = now_ms() + PULL_RETRY_DELAY_MS;
            pq_unref(c, q);
            pthread_mutex_unlock(&c->lock);
            return;
        }
        k->res = res;
        became_ready = !pq_has_ready(q);
        if (q->tail)
            q->tail->next = k;
        else
            q->head = k;
        q->tail = k;
        q->buffered += res.n;
    } else {
        /* Nothing to deliver: when the buffer is empty, the queue's consumed offset follows the
         * broker past filtered-out entries, so the group's offset does not lag behind. */
        if (!q->head && !q->taken && res.next_offset > q->consumed)
            q->consumed = res.next_offset;
        mqc_pull_result_destroy(&res);
    }
    q->next_pull = next_offset;
    if (status != MQC_PULL_FOUND && c->opts.suspend_ms < 1000) {
        /* Short holds (take-what-is-there readers): pause between empty pulls. */
        q->retry_at = now_ms() + 100;
        pthread_cond_signal(&c->svc_cond);
    } else {
        mqc__pq_pull(c, q);
    }
    if (became_ready)
        notify_ready_locked(c);
    void (*fn)(void *) = became_ready && !c->stopping ? c->on_ready : NULL;
    void *fn_arg = c->on_ready_arg;
    if (fn)
        c->cb_active++; /* mqc_consumer_free waits for it */
    pq_unref(c, q);
    pthread_mutex_unlock(&c->lock);
    if (fn) {
        fn(fn_arg);
        pthread_mutex_lock(&c->lock);
        c->cb_active--;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
}

void mqc__consumer_unref(struct mqc_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    for (size_t i = 0; i < c->nsubs; i++)
        mq_tags_destroy(&c->subs[i].tags);
    free(c->subs);
    pthread_cond_destroy(&c->svc_cond);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void pq_unref(struct mqc_consumer *c, struct pq *q)
{
    (void)c;
    if (--q->refs > 0)
        return;
    while (q->head) {
        struct chunk *k = q->head;
        q->head = k->next;
        chunk_free(k);
    }
    free(q);
}

/* Unlinks a queue from the consumer (rebalanced away or closing). Lock held. */
void mqc__pq_drop(struct mqc_consumer *c, struct pq *q)
{
    struct pq **pp = &c->queues;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    q->dropped = 1;
    pq_unref(c, q);
}

/* ---- taking and acking ---- */

int mqc_consumer_take(struct mqc_consumer *c, int timeout_ms, struct mqc_msg **out)
{
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    pthread_mutex_lock(&c->lock);
    unsigned wake_gen = c->wake_gen;
    int rc;
    for (;;) {
        if (c->stopping) {
            rc = -ESHUTDOWN;
            break;
        }
        /* Round robin over the owned queues, starting after the last one served. */
        struct pq *pick = NULL;
        size_t n = 0;
        for (struct pq *q = c->queues; q; q = q->next)
            n++;
        for (size_t i = 0; i < n && !pick; i++) {
            size_t k = (c->rr + i) % n, j = 0;
            struct pq *q = c->queues;
            while (j++ < k)
                q = q->next;
            if (pq_has_ready(q)) {
                pick = q;
                c->rr = k + 1;
            }
        }
        if (pick) {
            struct chunk *k = pick->head;
            pick->taken = &k->res.msgs[k->next_msg++];
            pick->buffered--;
            *out = pick->taken;
            if (pick->buffered < (size_t)c->opts.queue_buffer / 2)
                mqc__pq_pull(c, pick);
            rc = 0;
            break;
        }
        if (timeout_ms == 0) {
            rc = -EAGAIN;
            break;
        }
        if (c->wake_gen != wake_gen) {
            rc = -EINTR;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&c->cond, &c->lock);
        } else {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                rc = -EAGAIN;
                break;
            }
            struct timespec ts;
            mq_deadline(&ts, CLOCK_REALTIME, left * 1000);
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static struct pq *find_taken(struct mqc_consumer *c, const struct mqc_msg *m)
{
    for (struct pq *q = c->queues; q; q = q->next)
        if (q->taken == m)
            return q;
    return NULL;
}

/* A queue waiting for its taken message before it goes to another consumer can go now: the
 * service thread's rebalance drops it. Lock held. */
static void released_taken(struct mqc_consumer *c, struct pq *q)
{
    if (!q->releasing)
        return;
    c->rebalance_now = 1;
    pthread_cond_signal(&c->svc_cond);
}

void mqc_consumer_ack(struct mqc_consumer *c, struct mqc_msg *m)
{
    pthread_mutex_lock(&c->lock);
    struct pq *q = find_taken(c, m);
    if (q) {
        if (m->queue_offset + 1 > q->consumed)
            q->consumed = m->queue_offset + 1;
        q->taken = NULL;
        pq_trim(q);
        if (pq_has_ready(q))
            notify_ready_locked(c);
        released_taken(c, q);
    }
    pthread_mutex_unlock(&c->lock);
}

void mqc_consumer_nack(struct mqc_consumer *c, struct mqc_msg *m)
{
    pthread_mutex_lock(&c->lock);
    struct pq *q = find_taken(c, m);
    if (q && q->head) {
        q->head->next_msg--; /* the taken message is the last one handed out of the head */
        q->buffered++;
        q->taken = NULL;
        notify_ready_locked(c);
        released_taken(c, q);
    }
    pthread_mutex_unlock(&c->lock);
}

int mqc_consumer_caught_up(struct mqc_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    /* A queue another consumer still holds is not caught up; one this consumer is letting go
     * of is, once its taken message is done. */
    int up = c->started && c->rebalanced && c->awaited == 0;
    for (struct pq *q = c->queues; q && up; q = q->next)
        up = q->releasing
                 ? !q->taken
                 : q->answered && !q->taken && q->buffered == 0 && q->next_pull >= q->known_max;
    pthread_mutex_unlock(&c->lock);
    return up;
}

void mqc_consumer_wakeup(struct mqc_consumer *c)
{
    pthread_mutex_lock(&c->lock);
    c->wake_gen++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

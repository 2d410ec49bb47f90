/* produce.c — `mqbench produce`: N caller threads sending through C shared producers, in one
 * of four shapes: sync single sends (mqc_send, or mqc_send_select over the first Q queues),
 * sync batches (mqc_send_batch of K messages), async sends with a window of W in flight per
 * caller (mqc_send_async, or mqc_send_batch_async of K messages each), and oneway sends.
 *
 * Counting: each caller owns a bench_slot; async completions run on a producer's network
 * thread, so each producer has one more slot that only its callbacks write. Latency is per
 * call (per batch), and for async from the call to the callback. An async send's start time
 * travels in a per-caller ticket (a fixed array of W, recycled through a free list), so
 * nothing is allocated per message.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/mqclient.h"
#include "common/mq_err.h"
#include "tools/bench/bench_util.h"
#include "tools/mqbench/mqbench.h"

struct caller;

/* One async send in flight. */
struct ticket {
    struct caller *owner;
    uint64_t t0;
    uint64_t n;          /* messages in the send */
    struct ticket *next; /* free list, under owner->lock */
};

struct caller {
    const struct mb_opts *o;
    struct bench_run *run;
    struct bench_slot *slot, *cb_slot; /* cb_slot: the producer's callback slot */
    struct mqc_producer *p;
    pthread_t thread;
    int idx;
    char *body;
    struct mqc_message *msgs; /* batch of o->batch, all pointing at body */
    /* async window */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct ticket *tickets, *free_list;
    int in_flight, waiting;
};

/* sync single sends over the first Q queues: a caller-local round robin */
struct rr {
    unsigned next;
    int q;
};

static size_t pick_rr(const struct mqc_mq *queues, size_t n, const struct mqc_message *m, void *arg)
{
    struct rr *rr = arg;
    size_t lim = rr->q > 0 && (size_t)rr->q < n ? (size_t)rr->q : n;
    (void)queues;
    (void)m;
    return rr->next++ % lim;
}

static void on_async(int err, const struct mqc_send_result *res, void *arg)
{
    struct ticket *t = arg;
    struct caller *c = t->owner;
    (void)res;
    if (err) {
        bench_inc(&c->cb_slot->errors, t->n);
    } else {
        bench_hist_add(&c->cb_slot->hist, bench_now_ns() - t->t0);
        bench_inc(&c->cb_slot->msgs, t->n);
        bench_inc(&c->cb_slot->bytes, t->n * c->o->size);
    }
    pthread_mutex_lock(&c->lock);
    t->next = c->free_list;
    c->free_list = t;
    c->in_flight--;
    /* A caller waiting for a ticket is woken once a quarter of the window is free, not for
     * every completion: one wakeup per message would cost more than the send itself. */
    if (c->waiting && (c->in_flight == 0 || c->o->window - c->in_flight >= (c->o->window + 3) / 4))
        pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Takes a free ticket, waiting while W sends are in flight. */
static struct ticket *take_ticket(struct caller *c)
{
    pthread_mutex_lock(&c->lock);
    while (!c->free_list) {
        c->waiting = 1;
        pthread_cond_wait(&c->cond, &c->lock);
    }
    c->waiting = 0;
    struct ticket *t = c->free_list;
    c->free_list = t->next;
    c->in_flight++;
    pthread_mutex_unlock(&c->lock);
    return t;
}

static void drain(struct caller *c)
{
    pthread_mutex_lock(&c->lock);
    while (c->in_flight > 0) {
        c->waiting = 1;
        pthread_cond_wait(&c->cond, &c->lock);
    }
    c->waiting = 0;
    pthread_mutex_unlock(&c->lock);
}

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    const struct mb_opts *o = c->o;
    struct rr rr = {(unsigned)c->idx, o->queues};
    uint64_t n;
    int last_err = 0;
    while ((n = bench_claim(c->run, (uint64_t)o->batch)) > 0) {
        uint64_t t0 = bench_now_ns();
        int rc;
        if (o->batch > 1 && o->mode == MB_SYNC) {
            rc = mqc_send_batch(c->p, c->msgs, (size_t)n, NULL);
        } else if (o->mode == MB_ASYNC) {
            struct ticket *t = take_ticket(c);
            t->t0 = t0;
            t->n = n;
            rc = o->batch > 1 ? mqc_send_batch_async(c->p, c->msgs, (size_t)n, on_async, t)
                              : mqc_send_async(c->p, c->msgs, on_async, t);
            if (rc == 0)
                continue; /* counted by on_async */
            pthread_mutex_lock(&c->lock);
            t->next = c->free_list;
            c->free_list = t;
            c->in_flight--;
            pthread_mutex_unlock(&c->lock);
        } else if (o->mode == MB_ONEWAY) {
            rc = mqc_send_oneway(c->p, c->msgs);
        } else if (o->queues > 0) {
            rc = mqc_send_select(c->p, c->msgs, pick_rr, &rr, NULL);
        } else {
            rc = mqc_send(c->p, c->msgs, NULL);
        }
        if (rc) {
            bench_inc(&c->slot->errors, n);
            if (rc != last_err)
                fprintf(stderr, "mqbench produce: send failed: %s\n",
                        rc == -ENOENT ? "no route for the topic" : mq_strerror(rc));
            last_err = rc;
            continue;
        }
        bench_hist_add(&c->slot->hist, bench_now_ns() - t0);
        bench_inc(&c->slot->msgs, n);
        bench_inc(&c->slot->bytes, n * o->size);
    }
    drain(c);
    bench_worker_done(c->run);
    return NULL;
}

static int caller_init(struct caller *c, const struct mb_opts *o)
{
    c->o = o;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->body = malloc(o->size);
    c->msgs = calloc((size_t)o->batch, sizeof(*c->msgs));
    c->tickets = o->mode == MB_ASYNC ? calloc((size_t)o->window, sizeof(*c->tickets)) : NULL;
    if (!c->body || !c->msgs || (o->mode == MB_ASYNC && !c->tickets))
        return -ENOMEM;
    for (size_t i = 0; i < o->size; i++)
        c->body[i] = (char)('a' + i % 26);
    for (int i = 0; i < o->batch; i++)
        c->msgs[i] = (struct mqc_message){.topic = o->topic, .body = c->body, .body_len = o->size};
    for (int i = 0; c->tickets && i < o->window; i++) {
        c->tickets[i].owner = c;
        c->tickets[i].next = c->free_list;
        c->free_list = &c->tickets[i];
    }
    return 0;
}

static void caller_destroy(struct caller *c)
{
    if (!c->o)
        return; /* never initialized */
    free(c->body);
    free(c->msgs);
    free(c->tickets);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

/* Sends one message through each producer so that routes are fetched (and the topic created)
 * before the clock runs. */
static int warm_up(struct mqc_producer **ps, int np, const struct mb_opts *o)
{
    char b[16] = "warm-up";
    struct mqc_message m = {.topic = o->topic, .body = b, .body_len = strlen(b)};
    for (int i = 0; i < np; i++) {
        int rc = mqc_send(ps[i], &m, NULL);
        if (rc) {
            fprintf(stderr, "mqbench produce: first send to %s via %s failed: %s\n", o->topic,
                    o->namesrv,
                    rc == -ENOENT ? "the NameServers have no route for it (no such topic; "
                                    "create it with mqadmin updateTopic)"
                                  : mq_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int mb_produce(const struct mb_opts *o)
{
    static const char *const mode_names[] = {"sync", "async", "oneway"};
    int nt = o->threads, np = o->clients < nt ? o->clients : nt, started = 0, status = 1;
    struct mqc_producer **ps = calloc((size_t)np, sizeof(*ps));
    struct caller *cs = calloc((size_t)nt, sizeof(*cs));
    struct bench_run run;
    memset(&run, 0, sizeof(run));
    if (!ps || !cs || bench_run_init(&run, "produce", (size_t)(nt + np), nt))
        goto out;
    run.count = (uint64_t)o->count;
    run.duration_s = o->duration_s;
    run.show_latency = o->mode != MB_ONEWAY;
    struct mqc_config cfg = {.namesrv = o->namesrv,
                             .group = o->group,
                             .send_timeout_ms = o->timeout_ms,
                             .compress_over = 0};
    for (int i = 0; i < np; i++) {
        char inst[32];
        snprintf(inst, sizeof(inst), "mqbench-%d", i);
        cfg.instance_name = inst;
        int rc = mqc_producer_new(&cfg, &ps[i]);
        if (rc) {
            fprintf(stderr, "mqbench produce: producer: %s\n", mq_strerror(rc));
            goto out;
        }
    }
    if (warm_up(ps, np, o))
        goto out;
    for (int i = 0; i < nt; i++)
        if (caller_init(&cs[i], o))
            goto out;
    run.t0_ns = bench_now_ns();
    for (; started < nt; started++) {
        struct caller *c = &cs[started];
        c->idx = started;
        c->run = &run;
        c->slot = &run.slots[started];
        c->cb_slot = &run.slots[nt + started % np];
        c->p = ps[started % np];
        if (pthread_create(&c->thread, NULL, caller_main, c)) {
            atomic_store(&run.stop, 1);
            atomic_fetch_sub(&run.workers_left, nt - started);
            break;
        }
    }
    bench_monitor(&run);
    for (int i = 0; i < started; i++)
        pthread_join(cs[i].thread, NULL);
    char extra[160];
    snprintf(extra, sizeof(extra), "mode=%s batch=%d threads=%d clients=%d size=%zu",
             mode_names[o->mode], o->batch, nt, np, o->size);
    status = started == nt && bench_result(&run, extra) == 0 ? 0 : 1;
out:
    for (int i = 0; cs && i < nt; i++)
        caller_destroy(&cs[i]);
    for (int i = 0; ps && i < np; i++)
        mqc_producer_free(ps[i]);
    bench_run_destroy(&run);
    free(cs);
    free(ps);
    return status;
}

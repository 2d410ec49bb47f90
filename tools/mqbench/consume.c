/* consume.c — `mqbench consume`: either N group consumers (mqc_consumer_take / ack, the
 * library's own pulls, rebalance and offset commits) or, with --raw, N threads that each own
 * some of the topic's readable queues and read them from offset 0 with back-to-back mqc_pull
 * calls (no group offsets: the broker's read path alone).
 *
 * The clock starts at the first message (start-up and rebalance are not counted). A run ends at
 * --duration, after --count messages, or when no message came for --idle seconds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/mqclient.h"
#include "common/mq_err.h"
#include "tools/bench/bench_util.h"
#include "tools/mqbench/mqbench.h"

struct worker {
    const struct mb_opts *o;
    struct bench_run *run;
    struct bench_slot *slot;
    pthread_t thread;
    struct mqc_consumer *c; /* group: owned; raw: shared */
    struct mqc_mq *queues;  /* raw: the queues this worker reads (into a shared array) */
    int64_t *offsets;
    size_t nq, stride;
};

/* Whether a worker that last saw a message at `last` (0: never) should give up. */
static int idle_out(const struct worker *w, uint64_t last)
{
    uint64_t now = bench_now_ns();
    double limit = last ? w->o->idle_s : w->o->idle_s + 10;
    uint64_t since = last ? last : w->run->t0_ns;
    return (double)(now - since) / 1e9 > limit;
}

static void *group_main(void *arg)
{
    struct worker *w = arg;
    uint64_t last = 0;
    int done = 0;
    while (!done && !atomic_load_explicit(&w->run->stop, memory_order_relaxed)) {
        struct mqc_msg *m;
        int rc = mqc_consumer_take(w->c, 100, &m);
        if (rc == -EAGAIN || rc == -EINTR) {
            done = idle_out(w, last);
            continue;
        }
        if (rc) {
            fprintf(stderr, "mqbench consume: take: %s\n", mq_strerror(rc));
            bench_inc(&w->slot->errors, 1);
            break;
        }
        last = bench_now_ns();
        bench_mark(w->run, w->slot, last);
        bench_inc(&w->slot->msgs, 1);
        bench_inc(&w->slot->bytes, m->body_len);
        mqc_consumer_ack(w->c, m);
        done = bench_consumed(w->run, 1);
    }
    atomic_store(&w->run->stop, 1); /* one idle consumer means the topic is drained */
    bench_worker_done(w->run);
    return NULL;
}

static void *raw_main(void *arg)
{
    struct worker *w = arg;
    uint64_t last = 0;
    int done = 0;
    while (!done && !atomic_load_explicit(&w->run->stop, memory_order_relaxed)) {
        size_t found = 0;
        for (size_t i = 0; i < w->nq && !done; i++) {
            struct mqc_mq *q = &w->queues[i * w->stride];
            struct mqc_pull_result r;
            uint64_t t0 = bench_now_ns();
            int rc = mqc_pull(w->c, q, "*", w->offsets[i], w->o->pull_batch, 0, -1, &r);
            if (rc) {
                fprintf(stderr, "mqbench consume: pull %s:%d: %s\n", q->broker, q->queue_id,
                        mq_strerror(rc));
                bench_inc(&w->slot->errors, 1);
                done = 1;
                break;
            }
            uint64_t t1 = bench_now_ns();
            bench_hist_add(&w->slot->hist, t1 - t0);
            if (r.status == MQC_PULL_FOUND && r.n > 0) {
                uint64_t bytes = 0;
                for (size_t k = 0; k < r.n; k++)
                    bytes += r.msgs[k].body_len;
                bench_mark(w->run, w->slot, t1);
                bench_inc(&w->slot->msgs, r.n);
                bench_inc(&w->slot->bytes, bytes);
                found += r.n;
                last = t1;
                done = bench_consumed(w->run, r.n);
            }
            if (r.next_offset > w->offsets[i])
                w->offsets[i] = r.next_offset;
            mqc_pull_result_destroy(&r);
        }
        if (!found && !done) {
            done = idle_out(w, last);
            struct timespec nap = {0, 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    bench_worker_done(w->run);
    return NULL;
}

/* Group mode: n consumers, started before the clock. */
static int start_group(const struct mb_opts *o, struct worker *ws, int n)
{
    struct mqc_config cfg = {.namesrv = o->namesrv, .group = o->group};
    struct mqc_consumer_opts co = {.from = MQC_FROM_FIRST,
                                   .pull_batch = o->pull_batch,
                                   .queue_buffer =
                                       o->pull_batch * 4 > 1000 ? o->pull_batch * 4 : 1000};
    for (int i = 0; i < n; i++) {
        char inst[32];
        snprintf(inst, sizeof(inst), "mqbench-c%d", i);
        cfg.instance_name = inst;
        int rc = mqc_consumer_new(&cfg, &co, &ws[i].c);
        rc = rc ? rc : mqc_consumer_subscribe(ws[i].c, o->topic, "*");
        rc = rc ? rc : mqc_consumer_start(ws[i].c);
        if (rc) {
            fprintf(stderr, "mqbench consume: consumer: %s\n", mq_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Raw mode: the readable queues, dealt round-robin to n workers sharing one pull client. */
static int start_raw(const struct mb_opts *o, struct worker *ws, int *n, struct mqc_mq **qs,
                     struct mqc_consumer **pc)
{
    struct mqc_config cfg = {.namesrv = o->namesrv, .group = o->group};
    struct mqc_producer *p = NULL;
    size_t nq = 0;
    int rc = mqc_producer_new(&cfg, &p);
    rc = rc ? rc : mqc_producer_queues(p, o->topic, 0, qs, &nq);
    mqc_producer_free(p);
    if (rc == 0 && nq == 0)
        rc = -ENOENT;
    rc = rc ? rc : mqc_consumer_new(&cfg, NULL, pc);
    if (rc) {
        fprintf(stderr, "mqbench consume: queues of %s: %s\n", o->topic, mq_strerror(rc));
        return rc;
    }
    if ((size_t)*n > nq)
        *n = (int)nq;
    for (int i = 0; i < *n; i++) {
        ws[i].c = *pc;
        ws[i].queues = &(*qs)[i];
        ws[i].stride = (size_t)*n;
        ws[i].nq = (nq - (size_t)i + (size_t)*n - 1) / (size_t)*n;
        ws[i].offsets = calloc(ws[i].nq, sizeof(int64_t));
        if (!ws[i].offsets)
            return -ENOMEM;
    }
    return 0;
}

int mb_consume(const struct mb_opts *o)
{
    int n = o->threads, started = 0, status = 1;
    struct worker *ws = calloc((size_t)n, sizeof(*ws));
    struct mqc_mq *qs = NULL;
    struct mqc_consumer *pc = NULL;
    struct bench_run run;
    memset(&run, 0, sizeof(run));
    if (!ws)
        goto out;
    if (o->raw ? start_raw(o, ws, &n, &qs, &pc) : start_group(o, ws, n))
        goto out;
    if (bench_run_init(&run, "consume", (size_t)n, n))
        goto out;
    run.count = (uint64_t)o->count;
    run.duration_s = o->duration_s;
    run.show_latency = o->raw;
    run.clock_from_first = 1;
    for (; started < n; started++) {
        ws[started].o = o;
        ws[started].run = &run;
        ws[started].slot = &run.slots[started];
        if (pthread_create(&ws[started].thread, NULL, o->raw ? raw_main : group_main,
                           &ws[started])) {
            atomic_store(&run.stop, 1);
            atomic_fetch_sub(&run.workers_left, n - started);
            break;
        }
    }
    bench_monitor(&run);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    char extra[160];
    snprintf(extra, sizeof(extra), "mode=%s threads=%d pull_batch=%d", o->raw ? "raw" : "group", n,
             o->pull_batch);
    status = started == n && bench_result(&run, extra) == 0 ? 0 : 1;
out:
    for (int i = 0; ws && i < o->threads; i++) {
        if (!o->raw)
            mqc_consumer_free(ws[i].c);
        free(ws[i].offsets);
    }
    mqc_consumer_free(pc);
    free(qs);
    free(ws);
    bench_run_destroy(&run);
    return status;
}

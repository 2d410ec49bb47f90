/* flush.c — durability (RocketMQ FlushRealTimeService / GroupCommitService and
 * FlushConsumeQueueService). ASYNC_FLUSH: the flush thread msyncs the commitlog every
 * flushIntervalCommitLog ms when flushCommitLogLeastPages are dirty, fully every
 * flushCommitLogThoroughInterval, and at once when someone waits. SYNC_FLUSH: a commit thread runs
 * group commits — as soon as anyone waits for bytes no sync in flight covers, it syncs everything
 * appended so far, so all appenders waiting then share one sync. The flush thread also syncs the
 * consume queues, rendered and index files every flushIntervalConsumeQueue ms, then writes the
 * checkpoint. Blocked waiters sleep on one futex word that every flush attempt bumps and wakes
 * them all on (store_int.h, flush_seq); callback requests are completed by the thread whose
 * flush covered them. */
#include "store/store_int.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

int store__flush_clog(struct store *s, int64_t upto)
{
    int64_t off = atomic_load(&s->flushed);
    while (off < upto) {
        struct store__mfile *f = store__mlist_find(&s->clog, off);
        if (!f)
            break; /* deleted by retention: nothing left to flush there */
        int64_t fend = f->base + (int64_t)f->size;
        int64_t to = upto < fend ? upto : fend;
        int rc = store__mfile_sync(f, off, to);
        store__mfile_unref(f);
        if (rc) {
            mq_error("commitlog flush: %s", mq_strerror(rc));
            return rc;
        }
        off = to;
    }
    /* several threads flush at once with SYNC_FLUSH: the durable end only moves forward */
    int64_t cur = atomic_load(&s->flushed);
    while (upto > cur && !atomic_compare_exchange_weak(&s->flushed, &cur, upto))
        ;
    atomic_fetch_add(&s->flushes, 1);
    return 0;
}

struct logics_ctx {
    int rc;
    int64_t least_entries; /* skip queues with fewer new entries (0: flush all) */
    int skipped;
};

static void flush_queue(struct store *s, struct store__queue *q, void *arg)
{
    struct logics_ctx *c = arg;
    int64_t max = atomic_load(&q->max_off);
    (void)s;
    if (max - q->flushed_off < c->least_entries) {
        c->skipped += max > q->flushed_off;
        return;
    }
    for (int k = 0; k < 2 && q->flushed_off < max; k++) {
        struct store__mlist *l = k ? &q->ri : &q->cq;
        int64_t unit = k ? STORE__RI_UNIT : STORE__CQ_UNIT;
        int64_t off = q->flushed_off * unit, end = max * unit;
        while (off < end) {
            struct store__mfile *f = store__mlist_find(l, off);
            if (!f)
                break;
            int64_t fend = f->base + (int64_t)f->size, to = end < fend ? end : fend;
            int rc = store__mfile_sync(f, off, to);
            store__mfile_unref(f);
            if (rc) {
                c->rc = rc;
                return;
            }
            off = to;
        }
    }
    q->flushed_off = max;
}

int store__flush_logics(struct store *s, int thorough)
{
    int64_t ts = atomic_load(&s->disp_last_ts);
    /* FlushConsumeQueueService: queues with fewer than flushConsumeQueueLeastPages of new
     * entries wait for the thorough flush; the checkpoint only advances when all are flushed */
    struct logics_ctx c = {0, 0, 0};
    if (!thorough)
        c.least_entries =
            (int64_t)s->conf.flush_consume_queue_least_pages * STORE__PAGE / STORE__CQ_UNIT;
    store__qtab_foreach(s, flush_queue, &c);
    int rc = c.rc;
    if (!rc && s->conf.message_index_enable)
        rc = store__idx_sync(s);
    if (rc)
        return rc;
    if (c.skipped)
        return 1;
    s->logics_ts = ts;
    s->index_ts = ts;
    return 0;
}

/* Waiters and callback requests that still need a flush. flush_lock held. */
static int pending(struct store *s)
{
    int64_t flushed = atomic_load(&s->flushed);
    int n = atomic_load(&s->wait_max) > flushed;
    for (size_t i = 0; i < s->nreqs; i++)
        n += s->reqs[i].offset > flushed;
    return n;
}

/* A new waiter or request: wakes the commit thread (SYNC_FLUSH) when it sleeps, else the flush
 * thread when it may be idle (first pending one, or the count is being rebuilt). flush_lock
 * held. */
static void note_pending(struct store *s)
{
    if (s->commit_started) {
        if (s->commit_idle)
            pthread_cond_signal(&s->commit_cond);
        return;
    }
    if (s->npending >= 0)
        s->npending++;
    if (s->npending <= 1)
        pthread_cond_signal(&s->flush_cond);
}

/* Requests being completed by one thread (reused storage: each flushing thread has its own). */
struct done_list {
    struct store__flush_req *v;
    size_t cap;
};

/* Completes requests that are durable, failed or timed out. flush_lock held; callbacks are
 * called with it released. */
static void complete_reqs(struct store *s, int err, struct done_list *d)
{
    int64_t flushed = atomic_load(&s->flushed), now = mq_mono_us();
    for (;;) {
        /* one pass: finished requests move to the calling thread's done list */
        size_t nd = 0, keep = 0;
        if (d->cap < s->nreqs) {
            void *p = realloc(d->v, s->nreqs * sizeof(*d->v));
            if (p) {
                d->v = p;
                d->cap = s->nreqs;
            }
        }
        for (size_t i = 0; i < s->nreqs; i++) {
            struct store__flush_req *r = &s->reqs[i];
            int st = 1;
            if (r->offset <= flushed)
                st = 0;
            else if (err)
                st = err;
            else if (now >= r->deadline_us)
                st = -ETIMEDOUT;
            if (st != 1 && nd < d->cap) {
                d->v[nd] = *r;
                d->v[nd++].deadline_us = st; /* the status travels in the copy */
            } else {
                s->reqs[keep++] = *r;
            }
        }
        s->nreqs = keep;
        if (!nd)
            return;
        pthread_mutex_unlock(&s->flush_lock);
        for (size_t i = 0; i < nd; i++)
            d->v[i].cb(d->v[i].arg, d->v[i].offset, (int)d->v[i].deadline_us);
        pthread_mutex_lock(&s->flush_lock);
    }
}

/* After a flush attempt: wakes the blocked waiters (those it did not cover sleep again, or
 * return err when it failed), then completes the callback requests. flush_lock held. */
static void settle(struct store *s, int err, struct done_list *d)
{
    if (err) {
        /* every waiter so far returns err; those that come after ask again (not a hot loop of
         * failing retries for waiters already answered) */
        atomic_store(&s->wait_max, 0);
        atomic_store(&s->flush_err, err);
        atomic_store(&s->flush_err_seq, atomic_load(&s->flush_seq) + 1);
    }
    atomic_fetch_add(&s->flush_seq, 1);
    /* a waiter counts itself before it reads flush_seq: either it is counted here, or it read
     * the new value and will not sleep on the old one */
    if (atomic_load(&s->nwaiting))
        syscall(SYS_futex, (unsigned *)&s->flush_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    complete_reqs(s, err, d);
}

static void *flush_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "store-flush");
    struct done_list done = {NULL, 0};
    int64_t last_full = mq_mono_us(), last_logics = mq_mono_us(), last_logics_full = last_full;
    pthread_mutex_lock(&s->flush_lock);
    while (!s->flush_stop) {
        s->npending = s->commit_started ? 0 : pending(s);
        if (!s->npending) {
            struct timespec ts;
            int ms = s->conf.flush_interval_commit_log;
            if (s->sync_flush && ms > 10)
                ms = 10; /* GroupCommitService waits 10 ms */
            mq_deadline(&ts, CLOCK_REALTIME, (int64_t)ms * 1000);
            pthread_cond_timedwait(&s->flush_cond, &s->flush_lock, &ts);
            if (s->flush_stop)
                break;
        }
        s->npending = s->commit_started ? 0 : pending(s);
        int urgent = s->npending > 0;
        pthread_mutex_unlock(&s->flush_lock);

        int rc = store__clog_publish(s); /* records no group commit wrote (SYNC_FLUSH) */
        int64_t now = mq_mono_us(), wrote = atomic_load(&s->wrote);
        int64_t dirty = wrote - atomic_load(&s->flushed);
        int64_t least = (int64_t)s->conf.flush_commit_log_least_pages * STORE__PAGE;
        int full = now - last_full >= (int64_t)s->conf.flush_commit_log_thorough_interval * 1000;
        if (!rc && dirty > 0 && (urgent || s->sync_flush || dirty >= least || full)) {
            int64_t ts = atomic_load(&s->last_store_ts);
            rc = store__flush_clog(s, wrote);
            if (!rc)
                s->flushed_ts = ts;
            if (full)
                last_full = now;
        }
        if (now - last_logics >= (int64_t)s->conf.flush_interval_consume_queue * 1000) {
            int thorough = now - last_logics_full >=
                           (int64_t)s->conf.flush_consume_queue_thorough_interval * 1000;
            last_logics = now;
            if (thorough)
                last_logics_full = now;
            if (store__flush_logics(s, thorough) == 0)
                store__checkpoint_write(s);
        }

        pthread_mutex_lock(&s->flush_lock);
        s->npending = -1; /* recounted by the flush thread */
        settle(s, rc, &done);
    }
    pthread_mutex_unlock(&s->flush_lock);
    free(done.v);
    return NULL;
}

/* SYNC_FLUSH group commit (RocketMQ's GroupCommitService) on its own thread, apart from the
 * periodic consume-queue and checkpoint work: it takes everything appended so far as soon as
 * someone waits for bytes no sync in flight covers — no lingering for more appenders: those
 * that arrive during a sync are the next group. A sync that started after bytes were written
 * makes them durable however other syncs interleave (the flush thread's periodic one), so the
 * durable end is the largest end any successful sync took (store__flush_clog). Several commit
 * threads with overlapping syncs were measured slower on this project's test disk (each sync
 * took longer, groups shrank: docs/BENCHMARKS.md, "Group commit: one thread, no linger"). */
static int commit_needed(struct store *s)
{
    int64_t covered = atomic_load(&s->flushed);
    if (s->commit_upto > covered)
        covered = s->commit_upto;
    if (atomic_load(&s->wait_max) > covered)
        return 1;
    for (size_t i = 0; i < s->nreqs; i++)
        if (s->reqs[i].offset > covered)
            return 1;
    return 0;
}

static void *commit_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "store-commit");
    struct done_list done = {NULL, 0};
    pthread_mutex_lock(&s->flush_lock);
    while (!s->flush_stop) {
        /* idle is set before the nudge is read, and a put sets the nudge before it reads idle
         * (store__flush_note_staged): one of the two sees the other */
        atomic_store(&s->commit_idle, 1);
        int nudged = atomic_exchange(&s->commit_nudge, 0), need = commit_needed(s);
        if (!need && !nudged) {
            pthread_cond_wait(&s->commit_cond, &s->flush_lock);
            atomic_store(&s->commit_idle, 0);
            continue;
        }
        atomic_store(&s->commit_idle, 0);
        pthread_mutex_unlock(&s->flush_lock);
        int rc = store__clog_publish(s); /* the group's records, in one write */
        pthread_mutex_lock(&s->flush_lock);
        if (rc && need)
            settle(s, rc, &done);
        if (rc || !need)
            continue; /* failed: kept staged, written again by the next group or flush pass */
        int64_t upto = atomic_load(&s->wrote);
        if (upto > s->commit_upto)
            s->commit_upto = upto;
        pthread_mutex_unlock(&s->flush_lock);
        rc = store__flush_clog(s, upto);
        pthread_mutex_lock(&s->flush_lock);
        if (rc && s->commit_upto == upto)
            s->commit_upto = atomic_load(&s->flushed); /* not covered after all: retry */
        settle(s, rc, &done);
    }
    pthread_mutex_unlock(&s->flush_lock);
    free(done.v);
    return NULL;
}

void store__flush_note_staged(struct store *s)
{
    atomic_store(&s->commit_nudge, 1);
    if (!atomic_load(&s->commit_idle))
        return;
    pthread_mutex_lock(&s->flush_lock);
    pthread_cond_signal(&s->commit_cond);
    pthread_mutex_unlock(&s->flush_lock);
}

void store__flush_wake(struct store *s)
{
    pthread_mutex_lock(&s->flush_lock);
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->flush_lock);
}

/* A new waiter for offset: wakes the thread that will flush for it. */
static void note_waiter(struct store *s, int64_t offset)
{
    int64_t cur = atomic_load(&s->wait_max);
    while (offset > cur && !atomic_compare_exchange_weak(&s->wait_max, &cur, offset))
        ;
    if (s->sync_flush) {
        /* the commit thread sets idle before it reads wait_max (commit_main) */
        if (!atomic_load(&s->commit_idle))
            return;
        pthread_mutex_lock(&s->flush_lock);
        pthread_cond_signal(&s->commit_cond);
        pthread_mutex_unlock(&s->flush_lock);
        return;
    }
    pthread_mutex_lock(&s->flush_lock);
    note_pending(s);
    pthread_mutex_unlock(&s->flush_lock);
}

int store_wait_flushed(struct store *s, int64_t offset)
{
    if (atomic_load(&s->flushed) >= offset)
        return 0;
    struct timespec deadline;
    mq_deadline(&deadline, CLOCK_MONOTONIC, (int64_t)s->conf.sync_flush_timeout * 1000);
    atomic_fetch_add(&s->nwaiting, 1);
    unsigned seq0 = atomic_load(&s->flush_seq), seq = seq0;
    note_waiter(s, offset);
    int rc = 0;
    for (;;) {
        if (atomic_load(&s->flushed) >= offset)
            break;
        if (seq != seq0 && (int)(atomic_load(&s->flush_err_seq) - seq0) > 0) {
            rc = atomic_load(&s->flush_err); /* an attempt since we began waiting failed */
            break;
        }
        if (atomic_load(&s->flush_closed)) {
            rc = -ECANCELED; /* the store closed; its final flush did not cover us */
            break;
        }
        long r = syscall(SYS_futex, (unsigned *)&s->flush_seq, FUTEX_WAIT_BITSET_PRIVATE, seq,
                         &deadline, NULL, FUTEX_BITSET_MATCH_ANY);
        if (r < 0 && errno == ETIMEDOUT) {
            rc = atomic_load(&s->flushed) >= offset ? 0 : -ETIMEDOUT;
            break;
        }
        seq = atomic_load(&s->flush_seq);
    }
    atomic_fetch_sub(&s->nwaiting, 1);
    return rc;
}

int store_when_flushed(struct store *s, int64_t offset, store_flushed_fn cb, void *arg)
{
    if (atomic_load(&s->flushed) >= offset)
        return 1;
    pthread_mutex_lock(&s->flush_lock);
    if (s->nreqs == s->capreqs) {
        size_t cap = s->capreqs ? s->capreqs * 2 : 64;
        void *p = realloc(s->reqs, cap * sizeof(*s->reqs));
        if (!p) {
            pthread_mutex_unlock(&s->flush_lock);
            return -ENOMEM;
        }
        s->reqs = p;
        s->capreqs = cap;
    }
    s->reqs[s->nreqs++] = (struct store__flush_req){
        offset, mq_mono_us() + (int64_t)s->conf.sync_flush_timeout * 1000, cb, arg};
    note_pending(s);
    pthread_mutex_unlock(&s->flush_lock);
    return 0;
}

int store__flush_start(struct store *s)
{
    int rc = pthread_create(&s->flush_thread, NULL, flush_main, s);
    if (rc)
        return -rc;
    s->flush_started = 1;
    if (!s->sync_flush)
        return 0;
    rc = pthread_create(&s->commit_thread, NULL, commit_main, s);
    if (rc)
        return -rc;
    pthread_mutex_lock(&s->flush_lock);
    s->commit_started = 1;
    pthread_mutex_unlock(&s->flush_lock);
    return 0;
}

void store__flush_stop(struct store *s)
{
    struct done_list done = {NULL, 0};
    if (s->flush_started) {
        pthread_mutex_lock(&s->flush_lock);
        s->flush_stop = 1;
        pthread_cond_broadcast(&s->flush_cond);
        pthread_cond_broadcast(&s->commit_cond);
        pthread_mutex_unlock(&s->flush_lock);
        pthread_join(s->flush_thread, NULL);
        if (s->commit_started)
            pthread_join(s->commit_thread, NULL);
        s->commit_started = 0;
        s->flush_started = 0;
    }
    /* final flush on the caller's thread */
    int rc = store__clog_publish(s);
    int64_t ts = atomic_load(&s->last_store_ts);
    if (!rc)
        rc = store__flush_clog(s, atomic_load(&s->wrote));
    if (!rc)
        s->flushed_ts = ts;
    if (store__flush_logics(s, 1) == 0)
        store__checkpoint_write(s);
    pthread_mutex_lock(&s->flush_lock);
    atomic_store(&s->flush_closed, 1);
    settle(s, rc ? rc : -ECANCELED, &done);
    free(s->reqs);
    s->reqs = NULL;
    s->nreqs = s->capreqs = 0;
    free(done.v);
    pthread_mutex_unlock(&s->flush_lock);
}

/* dispatch.c — the dispatcher (RocketMQ ReputMessageService): reads the commitlog from the
 * reput offset and appends consume-queue, rendered-index and index entries, then publishes the
 * queues' new max offsets and calls the arrival listener. Woken by appends through a condition
 * variable, never a sleep loop. */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

#define DISPATCH_BATCH_BYTES (4 << 20) /* publish at least this often */
#define DISPATCH_LINGER_US   50
/* store_dispatch_now leaves more than this to the dispatch thread: batches of 1,000 100-byte
 * messages (~250 KiB) pipelined on two threads went 1.38-1.54 -> 1.64-1.83 M msgs/s, the I/O
 * thread's CPU per message 0.43-0.57 -> 0.28-0.37 us; single sends and batches of 100 stay
 * inline (docs/BENCHMARKS.md, "Batched sends: stalls behind the replies, and dispatch on its own
 * thread"). */
#define DISPATCH_INLINE_MAX (64 << 10)

static int scan_cb(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    struct store__props *p = arg;
#define PROP_IS(lit) (nlen == sizeof(lit) - 1 && !memcmp(name, lit, nlen))
    if (PROP_IS(MQ_PROP_TAGS)) {
        p->tags = val;
        p->tags_len = vlen;
    } else if (PROP_IS(MQ_PROP_KEYS)) {
        p->keys = val;
        p->keys_len = vlen;
    } else if (PROP_IS(MQ_PROP_UNIQ_KEY)) {
        p->uniq = val;
        p->uniq_len = vlen;
    }
#undef PROP_IS
    return 0;
}

void store__props_scan(const struct mq_msg *m, struct store__props *p)
{
    memset(p, 0, sizeof(*p));
    if (m->props_len && mq_props_foreach(m->props, m->props_len, scan_cb, p) < 0)
        memset(p, 0, sizeof(*p)); /* malformed: no tags, no keys */
}

/* When a message in SCHEDULE_TOPIC_XXXX is due: its store time + the delay of its DELAY level
 * (past the last level: the last; no level: its store time). */
static int64_t deliver_time(const struct store *s, const struct mq_msg *m)
{
    const char *v;
    size_t vlen;
    int level = 0;
    if (mq_props_get(m->props, m->props_len, MQ_PROP_DELAY, &v, &vlen) == 0)
        for (size_t i = 0; i < vlen && v[i] >= '0' && v[i] <= '9' && level < 1000; i++)
            level = level * 10 + (v[i] - '0');
    if (level > s->delay_levels)
        level = s->delay_levels;
    return m->store_ts + (level > 0 ? s->delay_ms[level - 1] : 0);
}

static int dispatch_record(struct store *s, const struct mq_msg *m, int64_t phys,
                           struct store__queue **touched)
{
    struct store__props p;
    store__props_scan(m, &p);
    if (!mq_sysflag_tx_hidden(m->sysflag)) {
        struct store__queue *q = s->disp_lastq;
        int rc = 0;
        if (!q || q->queue_id != m->queue_id || q->topic_len != m->topic_len ||
            memcmp(q->topic, m->topic, m->topic_len))
            rc = store__queue_open(s, m->topic, m->topic_len, m->queue_id, &q);
        if (rc == -EINVAL) { /* a name we cannot make a directory of: never servable */
            mq_warn("dispatch: record at %" PRId64 " has an invalid topic; skipped", phys);
            return 0;
        }
        if (rc)
            return rc;
        s->disp_lastq = q;
        /* tagsCode: Java hashCode of TAGS, 0 without (tagsString2tagsCode); for a delayed
         * message, its delivery time (CommitLog.checkMessageAndReturnSize) */
        int64_t tags = p.tags_len ? mq_java_hash(p.tags, p.tags_len) : 0;
        if (m->topic_len == sizeof(MQ_SCHEDULE_TOPIC) - 1 &&
            !memcmp(m->topic, MQ_SCHEDULE_TOPIC, m->topic_len))
            tags = deliver_time(s, m);
        rc = store__cq_append(s, q, m->queue_offset, phys, (int32_t)m->total_size, tags,
                              store__render_len(m));
        if (rc)
            return rc;
        if (!q->touched) {
            q->touched = 1;
            q->touched_next = *touched;
            *touched = q;
        }
    }
    /* As RocketMQ's IndexService: a key index that cannot grow leaves the message unindexed
     * rather than holding back every consumer (a consume queue that cannot grow does). */
    if (s->conf.message_index_enable)
        store__idx_put(s, m, &p, phys);
    return 0;
}

/* Dispatches up to limit bytes from reput. Returns bytes consumed or a negative errno. */
static int64_t dispatch_some(struct store *s, int64_t limit)
{
    struct store__mfile *f = NULL;
    struct store__queue *touched = NULL;
    int64_t last_ts = 0;
    int rc = 0;
    /* excludes store_delete_topic and another dispatching thread (store_dispatch_now) */
    pthread_mutex_lock(&s->disp_lock);
    int64_t reput = atomic_load(&s->reput), wrote = atomic_load(&s->wrote), start = reput;
    s->disp_lastq = NULL; /* it may have deleted the cached queue */
    while (reput < wrote && reput - start < limit) {
        if (!f || reput >= f->base + (int64_t)f->size) {
            store__mfile_unref(f);
            f = store__mlist_find(&s->clog, reput);
            if (!f) {
                mq_error("dispatch: no commitlog file for %" PRId64, reput);
                rc = MQ_CORRUPT_BKPT;
                break;
            }
        }
        size_t pos = (size_t)(reput - f->base);
        int64_t fend = f->base + (int64_t)f->size;
        size_t avail = (size_t)((fend < wrote ? fend : wrote) - reput);
        struct mq_msg m;
        int64_t n = mq_msg_decode(f->head + pos, avail, 0, 0, &m);
        if (n <= 0) {
            mq_error("dispatch: bad record at %" PRId64 ": %s", reput, mq_strerror((int)n));
            rc = MQ_CORRUPT_BKPT;
            break;
        }
        if (m.magic == MQ_MSG_MAGIC_BLANK) {
            reput = fend;
            continue;
        }
        rc = dispatch_record(s, &m, reput, &touched);
        if (rc) {
            /* Out of space for consume-queue or index blocks: refuse puts until dispatch gets
             * going again (the records stay in the commitlog; nothing acknowledged is lost). */
            if (rc == -ENOSPC && !atomic_exchange(&s->disp_nospace, 1))
                mq_error("dispatch at %" PRId64 ": %s; writes refused until there is space", reput,
                         mq_strerror(rc));
            else if (rc != -ENOSPC)
                mq_error("dispatch at %" PRId64 ": %s", reput, mq_strerror(rc));
            break;
        }
        if (atomic_load(&s->disp_nospace) && atomic_exchange(&s->disp_nospace, 0))
            mq_info("dispatch at %" PRId64 ": space again, writes accepted", reput);
        last_ts = m.store_ts;
        reput += n;
    }
    store__mfile_unref(f);
    if (s->conf.message_index_enable)
        store__idx_span_end(s); /* its keys visible before the span is */
    for (struct store__queue *q = touched; q; q = q->touched_next) {
        q->touched = 0;
        atomic_store(&q->max_off, q->disp_max);
    }
    if (last_ts)
        atomic_store(&s->disp_last_ts, last_ts);
    atomic_store(&s->reput, reput);
    pthread_cond_broadcast(&s->disp_done);
    /* under the lock: the touched list (and its queues) belong to this dispatching thread */
    if (s->listener)
        for (struct store__queue *q = touched; q; q = q->touched_next)
            s->listener(s->listener_arg, q->topic, q->topic_len, q->queue_id,
                        atomic_load(&q->max_off));
    pthread_mutex_unlock(&s->disp_lock);
    return rc ? rc : reput - start;
}

int store__dispatch_run(struct store *s)
{
    for (;;) {
        int64_t n = dispatch_some(s, INT64_MAX);
        if (n <= 0)
            return (int)n;
    }
}

static void *dispatch_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "store-dispatch");
    for (;;) {
        int64_t n = dispatch_some(s, DISPATCH_BATCH_BYTES);
        if (n > 0)
            continue;
        /* right after work, look again for a few microseconds before sleeping: under a stream
         * of single appends this saves a wakeup (futex call and context switch) per message.
         * Not with SYNC_FLUSH: records come a group commit at a time, a sync apart. */
        int64_t until = mq_mono_us() + (s->sync_flush ? 0 : DISPATCH_LINGER_US);
        while (n == 0 && atomic_load(&s->reput) >= atomic_load(&s->wrote) && !s->disp_stop &&
               mq_mono_us() < until)
            sched_yield();
        if (n == 0 && atomic_load(&s->reput) < atomic_load(&s->wrote))
            continue;
        pthread_mutex_lock(&s->disp_lock);
        atomic_store(&s->disp_sleeping, 1);
        if (n < 0 && !s->disp_stop) {
            /* a record we cannot dispatch: retry later, loudly */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->disp_cond, &s->disp_lock, &ts);
        } else if (!s->disp_stop && atomic_load(&s->reput) >= atomic_load(&s->wrote)) {
            pthread_cond_wait(&s->disp_cond, &s->disp_lock);
        }
        atomic_store(&s->disp_sleeping, 0);
        int stop = s->disp_stop && atomic_load(&s->reput) >= atomic_load(&s->wrote);
        pthread_mutex_unlock(&s->disp_lock);
        if (stop || (s->disp_stop && n < 0))
            break;
    }
    return NULL;
}

void store__dispatch_wake(struct store *s)
{
    if (!atomic_load(&s->disp_sleeping))
        return;
    pthread_mutex_lock(&s->disp_lock);
    pthread_cond_signal(&s->disp_cond);
    pthread_mutex_unlock(&s->disp_lock);
}

static _Thread_local const struct store *deferring; /* store_dispatch_defer */

int store__dispatch_deferred(const struct store *s)
{
    return deferring == s;
}

void store_dispatch_defer(struct store *s)
{
    deferring = s;
}

int store_dispatch_now(struct store *s)
{
    if (deferring != s)
        return 0;
    deferring = NULL;
    int64_t lag = atomic_load(&s->wrote) - atomic_load(&s->reput);
    if (lag <= 0)
        return 0; /* the dispatch thread got there first */
    if (lag > DISPATCH_INLINE_MAX) {
        store__dispatch_wake(s);
        return 0;
    }
    int64_t n = dispatch_some(s, DISPATCH_BATCH_BYTES);
    if (n < 0 || atomic_load(&s->reput) < atomic_load(&s->wrote))
        store__dispatch_wake(s); /* more than a batch, or an error: the thread goes on */
    return n < 0 ? (int)n : 0;
}

int store__dispatch_start(struct store *s)
{
    int rc = pthread_create(&s->disp_thread, NULL, dispatch_main, s);
    if (rc)
        return -rc;
    s->disp_started = 1;
    return 0;
}

void store__dispatch_stop(struct store *s)
{
    if (!s->disp_started)
        return;
    pthread_mutex_lock(&s->disp_lock);
    s->disp_stop = 1;
    pthread_cond_signal(&s->disp_cond);
    pthread_mutex_unlock(&s->disp_lock);
    pthread_join(s->disp_thread, NULL);
    s->disp_started = 0;
}

int store_dispatch_wait(struct store *s)
{
    int rc = store__clog_publish(s);
    if (rc)
        return rc;
    int64_t target = atomic_load(&s->wrote);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&s->disp_lock);
    while (atomic_load(&s->reput) < target && rc == 0)
        rc = pthread_cond_timedwait(&s->disp_done, &s->disp_lock, &ts);
    pthread_mutex_unlock(&s->disp_lock);
    return atomic_load(&s->reput) >= target ? 0 : -ETIMEDOUT;
}

/* view.c — lookups behind the file interface's topic view (docs/FORMATS.md Part 3): the topic
 * file shows a topic's messages in commitlog order, so the broker needs, per queue, where a
 * commitlog position falls in the queue. Consume-queue entries of one queue are in commitlog
 * order, so this is a binary search. Several brokers' topic views merge by store time: the
 * watermark and the per-time lookups below serve that. */
#include "store/store_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/mq_err.h"
#include "common/mq_util.h"

int64_t store_offset_by_phys(struct store *s, const char *topic, size_t topic_len, int queue_id,
                             int64_t phys)
{
    struct store__queue *q = store__queue_get(s, topic, topic_len, queue_id);
    if (!q)
        return 0;
    int64_t lo = atomic_load(&q->min_off), hi = atomic_load(&q->max_off);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, p = 0;
        int32_t size = 0;
        if (store__cq_entry(q, mid, &p, &size, NULL) != 0)
            return lo; /* deleted under us by retention: the caller sees OFFSET_MOVED next */
        if (p >= phys)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int64_t store_dispatched_offset(struct store *s)
{
    return atomic_load(&s->reput);
}

/* ---- the merged multi-broker topic view (FORMATS.md Part 3, MQFS_RENDER_AT_TIME) ---- */

int64_t store_watermark(struct store *s)
{
    pthread_mutex_lock(&s->put_lock);
    /* now + 1: a record stored later in this millisecond is then stamped now + 1 (at most 1 ms
     * ahead of the clock) rather than making W wait a millisecond for it. */
    int64_t w = mq_now_ms() + 1;
    if (w < s->ts_floor)
        w = s->ts_floor;
    s->ts_floor = w; /* later records are stored at w or after, whatever the clock does */
    /* disp_last_ts is read before reput: every record stored before it lies before reput. */
    int64_t d = atomic_load(&s->disp_last_ts);
    if (atomic_load(&s->reput) < s->write_pos && d < w)
        w = d; /* records stored at d or after may be undispatched (or still staged) */
    if (w < s->wm_last)
        w = s->wm_last; /* an earlier answer holds still: it never goes back */
    s->wm_last = w;
    pthread_mutex_unlock(&s->put_lock);
    return w;
}

int64_t store_newest_time(struct store *s, const char *topic, size_t topic_len, int queue_id,
                          int64_t below)
{
    struct store__queue *q = store__queue_get(s, topic, topic_len, queue_id);
    if (!q)
        return -1;
    int64_t last = below == INT64_MAX ? atomic_load(&q->max_off)
                                      : store_offset_by_phys(s, topic, topic_len, queue_id, below);
    if (--last < atomic_load(&q->min_off))
        return -1;
    return store__cq_entry_time(s, q, last); /* -1 when retention took it meanwhile */
}

int store_topic_at_time(struct store *s, const char *topic, size_t topic_len, int nq, int64_t ts,
                        int64_t *file_offset, int64_t *next_ts, int64_t *prev_ts)
{
    int64_t sum = 0, next = -1, prev = -1;
    for (int qid = 0; qid < nq; qid++) {
        struct store__queue *q = store__queue_get(s, topic, topic_len, qid);
        if (!q)
            continue;
        int64_t qoff = store_offset_by_time(s, topic, topic_len, qid, ts), fo = 0, base = 0;
        int rc = store_render_offset(s, topic, topic_len, qid, qoff, &fo);
        if (rc == MQ_EOFFSET_MOVED) /* retention took the queue's head meanwhile */
            rc = store_rendered_size(s, topic, topic_len, qid, &fo, &base);
        if (rc && rc != -ENXIO)
            return rc;
        if (rc == 0)
            sum += fo;
        if (qoff < atomic_load(&q->max_off)) {
            int64_t t = store__cq_entry_time(s, q, qoff);
            if (t >= 0 && (next < 0 || t < next))
                next = t;
        }
        if (prev_ts && qoff > atomic_load(&q->min_off)) { /* the queue's last entry before ts */
            int64_t t = store__cq_entry_time(s, q, qoff - 1);
            prev = t > prev ? t : prev;
        }
    }
    *file_offset = sum;
    *next_ts = next;
    if (prev_ts)
        *prev_ts = prev;
    return 0;
}

int64_t store_retained_since(struct store *s)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int64_t min = store_clog_min_offset(s);
        if (min <= 0)
            return 0; /* nothing deleted yet */
        struct store__mfile *f;
        struct mq_msg m;
        if (store__clog_read(s, min, &f, &m) == 0) {
            store__mfile_unref(f);
            return m.store_ts;
        } /* else retention deleted that file meanwhile: the new minimum */
    }
    return -EAGAIN;
}

int store_topic_times(struct store *s, const char *topic, size_t topic_len, int nq, int64_t from,
                      int64_t below, int max, int64_t *times, int64_t *offs, int64_t *end)
{
    struct qpos {
        struct store__queue *q;
        int64_t idx, ts, ro; /* first entry stored at or after the current time; its time; its
                                rendered start */
    } *p = calloc(nq > 0 ? (size_t)nq : 1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int64_t sum = 0, base;
    int n = 0, rc = 0;
    for (int i = 0; i < nq && rc == 0; i++) {
        p[i].q = store__queue_get(s, topic, topic_len, i);
        p[i].ts = INT64_MAX;
        if (!p[i].q)
            continue;
        p[i].idx = store_offset_by_time(s, topic, topic_len, i, from);
        if (p[i].idx < atomic_load(&p[i].q->max_off))
            p[i].ts = store__cq_entry_time(s, p[i].q, p[i].idx);
        rc = store_render_offset(s, topic, topic_len, i, p[i].idx, &p[i].ro);
        if (rc == MQ_EOFFSET_MOVED)
            rc = store_rendered_size(s, topic, topic_len, i, &p[i].ro, &base);
        sum += p[i].ro;
    }
    while (rc == 0 && n < max) {
        int64_t t = INT64_MAX;
        for (int i = 0; i < nq; i++)
            t = p[i].ts >= 0 && p[i].ts < t ? p[i].ts : t;
        if (t == INT64_MAX || t >= below)
            break;
        times[n] = t;
        offs[n++] = sum;
        for (int i = 0; i < nq && rc == 0; i++) { /* past the entries stored at t */
            if (p[i].ts != t)
                continue;
            int64_t max_off = atomic_load(&p[i].q->max_off);
            while (++p[i].idx < max_off &&
                   (p[i].ts = store__cq_entry_time(s, p[i].q, p[i].idx)) == t)
                ;
            if (p[i].idx >= max_off)
                p[i].ts = INT64_MAX;
            int64_t ro;
            rc = store_render_offset(s, topic, topic_len, i, p[i].idx, &ro);
            sum += rc == 0 ? ro - p[i].ro : 0;
            p[i].ro = ro;
        }
    }
    free(p);
    *end = sum;
    return rc ? rc : n;
}

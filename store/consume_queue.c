/* consume_queue.c — consume queues (RocketMQ ConsumeQueue.java): the queue table, 20-byte
 * entries (FORMATS.md 1.2) in files of mappedFileSizeConsumeQueue bytes under
 * consumequeue/{topic}/{queueId}/, min/max offsets, lookups by offset and store time, and
 * recovery of a queue's written length. */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

_Static_assert(STORE__CQ_UNIT == 8 + 4 + 8, "consume-queue entry, FORMATS.md 1.2");

static struct store__queue *lookup(struct store *s, uint64_t h, const char *topic, size_t tlen,
                                   int qid)
{
    struct store__qtab *t = &s->qtab;
    if (!t->nbuckets)
        return NULL;
    for (struct store__queue *q = t->buckets[h & (t->nbuckets - 1)]; q; q = q->next)
        if (q->hash == h && q->queue_id == qid && q->topic_len == tlen &&
            !memcmp(q->topic, topic, tlen))
            return q;
    return NULL;
}

struct store__queue *store__queue_get(struct store *s, const char *topic, size_t tlen, int qid)
{
    uint64_t h = store__tq_hash(topic, tlen, qid);
    pthread_rwlock_rdlock(&s->qtab.lock);
    struct store__queue *q = lookup(s, h, topic, tlen, qid);
    pthread_rwlock_unlock(&s->qtab.lock);
    return q;
}

static int rehash(struct store__qtab *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
    struct store__queue **b = calloc(nb, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct store__queue *q = t->buckets[i], *next;
        for (; q; q = next) {
            next = q->next;
            q->next = b[q->hash & (nb - 1)];
            b[q->hash & (nb - 1)] = q;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return 0;
}

int store__queue_open(struct store *s, const char *topic, size_t tlen, int qid,
                      struct store__queue **out)
{
    uint64_t h = store__tq_hash(topic, tlen, qid);
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    int rc = 0;
    char dir[STORE__PATH_MAX];
    if (q) {
        *out = q;
        return 0;
    }
    if (tlen == 0 || tlen > MQ_MSG_TOPIC_MAX || memchr(topic, '/', tlen) ||
        (tlen <= 2 && topic[0] == '.'))
        return -EINVAL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    memcpy(q->topic, topic, tlen);
    q->topic_len = (uint16_t)tlen;
    q->queue_id = qid;
    q->hash = h;
    size_t cqsize = (size_t)s->conf.mapped_file_size_consume_queue / STORE__CQ_UNIT;
    snprintf(dir, sizeof(dir), "%s/consumequeue/%s/%d", s->root, q->topic, qid);
    store__mlist_init(&q->cq, dir, cqsize * STORE__CQ_UNIT,
                      STORE__MF_PREALLOC | STORE__MF_SEQUENTIAL);
    snprintf(dir, sizeof(dir), "%s/renderindex/%s/%d", s->root, q->topic, qid);
    store__mlist_init(&q->ri, dir, cqsize * STORE__RI_UNIT,
                      STORE__MF_PREALLOC | STORE__MF_SEQUENTIAL);
    rc = store__mlist_load(&q->cq);
    if (!rc)
        rc = store__mlist_load(&q->ri);
    if (rc)
        goto out;
    pthread_rwlock_wrlock(&s->qtab.lock);
    struct store__queue *again = lookup(s, h, topic, tlen, qid);
    if (!again && (s->qtab.count + 1) * 2 > s->qtab.nbuckets)
        rc = rehash(&s->qtab);
    if (!again && !rc) {
        size_t b = h & (s->qtab.nbuckets - 1);
        q->next = s->qtab.buckets[b];
        s->qtab.buckets[b] = q;
        s->qtab.count++;
    }
    pthread_rwlock_unlock(&s->qtab.lock);
    if (again) {
        rc = 0;
        store__mlist_destroy(&q->cq);
        store__mlist_destroy(&q->ri);
        free(q);
        q = again;
    }
    if (!rc)
        *out = q;
    return rc;
out:
    mq_error("queue %.*s/%d: %s", (int)tlen, topic, qid, mq_strerror(rc));
    store__mlist_destroy(&q->cq);
    store__mlist_destroy(&q->ri);
    free(q);
    return rc;
}

int store__qtab_load(struct store *s)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/consumequeue", s->root);
    int rc = store__mkdirs(dir);
    if (rc)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) > MQ_MSG_TOPIC_MAX)
            continue;
        char sub[STORE__PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        DIR *qd = opendir(sub);
        if (!qd)
            continue;
        struct dirent *qe;
        while (!rc && (qe = readdir(qd))) {
            char *end;
            long qid = strtol(qe->d_name, &end, 10);
            if (qe->d_name[0] == '.' || *end || qid < 0 || qid > 65535)
                continue;
            struct store__queue *q;
            rc = store__queue_open(s, e->d_name, strlen(e->d_name), (int)qid, &q);
        }
        closedir(qd);
    }
    closedir(d);
    return rc;
}

/* Deletes q's next files made ahead and not used. */
static void drop_spares(struct store__queue *q)
{
    for (int k = 0; k < 2; k++)
        store__mlist_spare_drop(atomic_exchange(&q->spare[k], NULL));
}

static void queue_free(struct store__queue *q)
{
    drop_spares(q);
    store__mfile_unref(q->cq_last);
    store__mfile_unref(q->ri_last);
    store__mlist_destroy(&q->cq);
    store__mlist_destroy(&q->ri);
    free(q);
}

void store__qtab_free(struct store *s)
{
    struct store__qtab *t = &s->qtab;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct store__queue *q = t->buckets[i], *next;
        for (; q; q = next) {
            next = q->next;
            queue_free(q);
        }
    }
    for (struct store__queue *q = t->graveyard, *next; q; q = next) {
        next = q->next;
        queue_free(q);
    }
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
    t->graveyard = NULL;
}

void store__qtab_foreach(struct store *s,
                         void (*fn)(struct store *s, struct store__queue *q, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&s->qtab.lock);
    for (size_t i = 0; i < s->qtab.nbuckets; i++)
        for (struct store__queue *q = s->qtab.buckets[i]; q; q = q->next)
            fn(s, q, arg);
    pthread_rwlock_unlock(&s->qtab.lock);
}

/* Moves every queue of topic to the graveyard and removes its files (dispatch must not be
 * writing them: the caller holds the dispatch lock). */
int store__qtab_delete_topic(struct store *s, const char *topic, size_t tlen)
{
    int found = 0;
    pthread_rwlock_wrlock(&s->qtab.lock);
    for (size_t i = 0; i < s->qtab.nbuckets; i++) {
        struct store__queue **pp = &s->qtab.buckets[i];
        while (*pp) {
            struct store__queue *q = *pp;
            if (q->topic_len != tlen || memcmp(q->topic, topic, tlen)) {
                pp = &q->next;
                continue;
            }
            *pp = q->next;
            s->qtab.count--;
            atomic_store(&q->deleted, 1);
            drop_spares(q); /* none is made after: that takes the read lock and sees deleted */
            store__mlist_remove_all(&q->cq);
            store__mlist_remove_all(&q->ri);
            q->next = s->qtab.graveyard;
            s->qtab.graveyard = q;
            found = 1;
        }
    }
    pthread_rwlock_unlock(&s->qtab.lock);
    if (found) {
        char dir[STORE__PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/consumequeue/%.*s", s->root, (int)tlen, topic);
        store__rmdirs(dir);
        snprintf(dir, sizeof(dir), "%s/renderindex/%.*s", s->root, (int)tlen, topic);
        store__rmdirs(dir);
    }
    return found ? 0 : MQ_ENOTFOUND;
}

#define WARM_STEP     (128 << 10)      /* entry pages prefaulted ahead of the writer */
#define SPARE_BUSY_MS (10 * 60 * 1000) /* spare_ahead */

/* Returns the file for byte offset pos of list l, taking the one made ahead (*spare) or
 * creating it (fallocated whole); cached in *cache (dispatch), when it started in *since_ms.
 * NULL with *err set (-ENOSPC on a full disk). */
static uint8_t *slot(struct store__mlist *l, struct store__mfile **cache,
                     _Atomic(struct store__mfile *) *spare, int64_t *since_ms, int64_t pos,
                     int *err)
{
    struct store__mfile *c = *cache;
    if (c && pos >= c->base && pos - c->base < (int64_t)l->file_size)
        return c->map + (pos - c->base); /* the common case: no division */
    int64_t base = pos / (int64_t)l->file_size * (int64_t)l->file_size;
    if (!*cache || (*cache)->base != base) {
        struct store__mfile *f = store__mlist_find(l, base);
        if (!f && (f = atomic_exchange(spare, NULL)) != NULL &&
            (f->base != base || store__mlist_adopt(l, f) != 0)) {
            store__mlist_spare_drop(f);
            f = NULL;
        }
        if (!f) {
            int rc = store__mlist_create(l, base, &f);
            if (rc) {
                mq_error("%s: cannot create %020" PRId64 ": %s", l->dir, base, mq_strerror(rc));
                *err = rc;
                return NULL;
            }
        }
        store__mfile_unref(*cache);
        *cache = f;
        *since_ms = mq_mono_us() / 1000;
    }
    return (*cache)->map + (pos - base);
}

/* Half way through file f of q's list `list`: asks for the next one to be made ahead (a new
 * file's fallocate waited up to 75 ms here for block bitmaps read behind the writeback) — for
 * a queue that got there within SPARE_BUSY_MS: a broker with thousands of slow queues does not
 * hold a second file for each (6 MB of consume queue, 2.4 MB of rendered index). */
static void spare_ahead(struct store *s, struct store__queue *q, int list, struct store__mfile *f,
                        int64_t pos)
{
    int64_t next = f->base + (int64_t)f->size;
    if (pos - f->base < (int64_t)f->size / 2 || q->spare_asked[list] >= next)
        return;
    q->spare_asked[list] = next;
    if (mq_mono_us() / 1000 - q->file_since_ms[list] <= SPARE_BUSY_MS)
        (void)store__warm_spare(s, q, list, next);
}

int store__cq_append(struct store *s, struct store__queue *q, int64_t qoff, int64_t phys,
                     int32_t size, int64_t tags, int64_t render_len)
{
    if (qoff < q->disp_max)
        return 0; /* already there: dispatched again after recovery */
    if (qoff > q->disp_max)
        mq_warn("queue %s/%d: gap %" PRId64 "..%" PRId64, q->topic, q->queue_id, q->disp_max, qoff);
    int err = -EIO;
    uint8_t *e =
        slot(&q->cq, &q->cq_last, &q->spare[0], &q->file_since_ms[0], qoff * STORE__CQ_UNIT, &err);
    uint8_t *r = e ? slot(&q->ri, &q->ri_last, &q->spare[1], &q->file_since_ms[1],
                          qoff * STORE__RI_UNIT, &err)
                   : NULL;
    if (!e || !r)
        return err;
    spare_ahead(s, q, 0, q->cq_last, qoff * STORE__CQ_UNIT);
    spare_ahead(s, q, 1, q->ri_last, qoff * STORE__RI_UNIT);
    store__warm_ahead(s, q->cq_last, qoff * STORE__CQ_UNIT, &q->cq_warm, WARM_STEP);
    store__warm_ahead(s, q->ri_last, qoff * STORE__RI_UNIT, &q->ri_warm, WARM_STEP);
    mq_put_be64(r, (uint64_t)(q->render_end + render_len));
    mq_put_be64(e, (uint64_t)phys);
    mq_put_be32(e + 8, (uint32_t)size);
    mq_put_be64(e + 12, (uint64_t)tags);
    q->render_end += render_len;
    q->disp_max = qoff + 1;
    q->max_phys_end = phys + size;
    return 0;
}

int store__cq_entry(struct store__queue *q, int64_t i, int64_t *phys, int32_t *size, int64_t *tags)
{
    struct store__mfile *f = store__mlist_find(&q->cq, i * STORE__CQ_UNIT);
    if (!f)
        return -ENOENT;
    const uint8_t *e = f->map + (i * STORE__CQ_UNIT - f->base);
    *phys = (int64_t)mq_get_be64(e);
    *size = (int32_t)mq_get_be32(e + 8);
    if (tags)
        *tags = (int64_t)mq_get_be64(e + 12);
    store__mfile_unref(f);
    return *size > 0 ? 0 : -ENOENT;
}

/* Entries written in the last file of l (unit bytes each, nonzero test by fn). */
static int64_t scan_len(struct store__mlist *l, size_t unit, int is_cq)
{
    struct store__mfile *f = store__mlist_last(l);
    if (!f)
        return 0;
    size_t i = 0, n = f->size / unit;
    for (; i < n; i++) {
        const uint8_t *e = f->map + i * unit;
        if (is_cq ? mq_get_be32(e + 8) == 0 : mq_get_be64(e) == 0)
            break;
    }
    int64_t v = f->base / (int64_t)unit + (int64_t)i;
    store__mfile_unref(f);
    return v;
}

static void zero_entry(struct store__mlist *l, size_t unit, int64_t i)
{
    struct store__mfile *f = store__mlist_find(l, i * (int64_t)unit);
    if (f) {
        memset(f->map + (i * (int64_t)unit - f->base), 0, unit);
        store__mfile_unref(f);
    }
}

int store__queue_recover(struct store *s, struct store__queue *q, int64_t clog_end)
{
    (void)s;
    int64_t cq = scan_len(&q->cq, STORE__CQ_UNIT, 1), ri = scan_len(&q->ri, STORE__RI_UNIT, 0);
    int64_t max = cq < ri ? cq : ri, end = cq > ri ? cq : ri, phys = 0;
    int32_t size = 0;
    while (max > 0) {
        if (store__cq_entry(q, max - 1, &phys, &size, NULL) == 0 && phys + size <= clog_end)
            break;
        max--;
    }
    for (int64_t i = max; i < end; i++) {
        zero_entry(&q->cq, STORE__CQ_UNIT, i);
        zero_entry(&q->ri, STORE__RI_UNIT, i);
    }
    if (end > max)
        mq_info("queue %s/%d: cut %" PRId64 " entries past the commitlog end", q->topic,
                q->queue_id, end - max);
    int64_t rend = max > 0 ? store__ri_end(q, max - 1) : 0;
    q->render_end = rend > 0 ? rend : 0;
    q->disp_max = max;
    q->max_phys_end = max > 0 ? phys + size : 0;
    atomic_store(&q->max_off, max);
    return 0;
}

void store__queue_correct_min(struct store *s, struct store__queue *q, int64_t clog_min)
{
    int64_t max = atomic_load(&q->max_off);
    int64_t lo = store__mlist_min_offset(&q->cq);
    lo = lo < 0 ? max : lo / STORE__CQ_UNIT;
    int64_t hi = max;
    /* physical offsets grow with queue offsets: binary search the first entry >= clog_min */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, phys;
        int32_t size;
        if (store__cq_entry(q, mid, &phys, &size, NULL) == 0 && phys >= clog_min)
            hi = mid;
        else
            lo = mid + 1;
    }
    int64_t base = q->render_end;
    if (lo < max) {
        int64_t prev = lo > 0 ? store__ri_end(q, lo - 1) : 0;
        int64_t phys;
        int32_t size;
        struct store__mfile *f;
        struct mq_msg m;
        if (lo == 0) {
            base = 0;
        } else if (prev > 0) {
            base = prev;
        } else if (store__cq_entry(q, lo, &phys, &size, NULL) == 0 &&
                   store__clog_read(s, phys, &f, &m) == 0) {
            base = store__ri_end(q, lo) - store__render_len(&m);
            store__mfile_unref(f);
        }
    } else if (max > 0) {
        int64_t e = store__ri_end(q, max - 1);
        base = e > 0 ? e : base;
    }
    atomic_store(&q->render_base, base);
    atomic_store(&q->min_off, lo);
}

int64_t store_min_offset(struct store *s, const char *topic, size_t tlen, int qid)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    return q ? atomic_load(&q->min_off) : 0;
}

int64_t store_max_offset(struct store *s, const char *topic, size_t tlen, int qid)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    return q ? atomic_load(&q->max_off) : 0;
}

int64_t store__cq_entry_time(struct store *s, struct store__queue *q, int64_t i)
{
    int64_t phys;
    int32_t size;
    struct store__mfile *f;
    struct mq_msg m;
    if (store__cq_entry(q, i, &phys, &size, NULL) || store__clog_read(s, phys, &f, &m))
        return -1;
    store__mfile_unref(f);
    return m.store_ts;
}

int64_t store_message_time(struct store *s, const char *topic, size_t tlen, int qid, int64_t offset)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    if (!q || offset < atomic_load(&q->min_off) || offset >= atomic_load(&q->max_off))
        return -1;
    return store__cq_entry_time(s, q, offset);
}

int64_t store_offset_by_time(struct store *s, const char *topic, size_t tlen, int qid, int64_t ts)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    if (!q)
        return 0;
    int64_t lo = atomic_load(&q->min_off), hi = atomic_load(&q->max_off);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int64_t t = store__cq_entry_time(s, q, mid);
        if (t >= ts)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int64_t store_earliest_time(struct store *s, const char *topic, size_t tlen, int qid)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    if (!q || atomic_load(&q->min_off) >= atomic_load(&q->max_off))
        return -1;
    return store__cq_entry_time(s, q, atomic_load(&q->min_off));
}

/* Deletes the queue's CQ and rendered files wholly below clog_min (retention). */
static int cq_keep(struct store__mfile *f, void *arg)
{
    int64_t clog_min = *(int64_t *)arg;
    const uint8_t *last = f->map + f->size - STORE__CQ_UNIT;
    int64_t phys = (int64_t)mq_get_be64(last);
    return mq_get_be32(last + 8) == 0 || phys + (int64_t)mq_get_be32(last + 8) > clog_min;
}

int store__queue_trim(struct store *s, struct store__queue *q, int64_t clog_min)
{
    int n = 0;
    for (;;) {
        struct store__mfile *f = store__mlist_first(&q->cq);
        if (!f)
            break;
        int64_t base = f->base;
        int keep = cq_keep(f, &clog_min);
        store__mfile_unref(f);
        if (keep || store__mlist_delete_front(&q->cq, 1, cq_keep, &clog_min) != 1)
            break;
        /* the rendered file with the same entries goes too */
        int64_t ri_base = base / STORE__CQ_UNIT * STORE__RI_UNIT;
        struct store__mfile *r = store__mlist_first(&q->ri);
        int match = r && r->base == ri_base;
        store__mfile_unref(r);
        if (match)
            store__mlist_delete_front(&q->ri, 1, NULL, NULL);
        n++;
    }
    store__queue_correct_min(s, q, clog_min);
    return n;
}

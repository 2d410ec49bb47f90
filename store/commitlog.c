/* commitlog.c — the commitlog (RocketMQ CommitLog.java): one writer appends records
 * (FORMATS.md 1.1) into segmented mapped files under the put lock, assigning queue offsets
 * from a topic-queue hash table, rolling with a blank record; reads by physical offset;
 * recovery of the write position by validating records. */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "store/store_io.h"

/* ---- topic-queue → next queue offset (put lock) ---- */

uint64_t store__tq_hash(const char *topic, size_t tlen, int qid)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < tlen; i++)
        h = (h ^ (uint8_t)topic[i]) * 1099511628211ull;
    h = (h ^ (uint32_t)qid) * 1099511628211ull;
    h ^= h >> 29;
    return h | 1; /* 0 marks an empty slot */
}

static int tq_grow(struct store *s)
{
    size_t cap = s->tq_cap ? s->tq_cap * 2 : 256;
    struct store__tqoff *t = calloc(cap, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < s->tq_cap; i++) {
        struct store__tqoff *e = &s->tq[i];
        if (!e->hash)
            continue;
        size_t j = e->hash & (cap - 1);
        while (t[j].hash)
            j = (j + 1) & (cap - 1);
        t[j] = *e;
    }
    free(s->tq);
    s->tq = t;
    s->tq_cap = cap;
    return 0;
}

/* Finds or adds the entry for topic/qid. NULL on -ENOMEM. */
static struct store__tqoff *tq_get(struct store *s, const char *topic, size_t tlen, int qid)
{
    uint64_t h = store__tq_hash(topic, tlen, qid);
    if ((s->tq_count + 1) * 2 > s->tq_cap && tq_grow(s))
        return NULL;
    size_t j = h & (s->tq_cap - 1);
    for (;; j = (j + 1) & (s->tq_cap - 1)) {
        struct store__tqoff *e = &s->tq[j];
        if (!e->hash)
            break;
        if (e->hash == h && e->queue_id == qid && e->topic_len == tlen &&
            !memcmp(e->topic, topic, tlen))
            return e;
    }
    struct store__tqoff *e = &s->tq[j];
    e->hash = h;
    e->queue_id = qid;
    e->topic_len = (uint16_t)tlen;
    memcpy(e->topic, topic, tlen);
    e->next = 0;
    s->tq_count++;
    return e;
}

int store__tq_set(struct store *s, const char *topic, size_t tlen, int qid, int64_t next)
{
    pthread_mutex_lock(&s->put_lock);
    struct store__tqoff *e = tq_get(s, topic, tlen, qid);
    if (e && next > e->next)
        e->next = next;
    pthread_mutex_unlock(&s->put_lock);
    return e ? 0 : -ENOMEM;
}

void store__tq_delete_topic(struct store *s, const char *topic, size_t tlen)
{
    pthread_mutex_lock(&s->put_lock);
    struct store__tqoff *old = s->tq;
    size_t cap = s->tq_cap;
    s->tq = NULL;
    s->tq_cap = s->tq_count = 0;
    for (size_t i = 0; i < cap; i++) {
        struct store__tqoff *e = &old[i];
        if (!e->hash || (e->topic_len == tlen && !memcmp(e->topic, topic, tlen)))
            continue;
        struct store__tqoff *n = tq_get(s, e->topic, e->topic_len, e->queue_id);
        if (n)
            n->next = e->next;
    }
    free(old);
    pthread_mutex_unlock(&s->put_lock);
}

void store__tq_free(struct store *s)
{
    free(s->tq);
    s->tq = NULL;
}

/* ---- append ----
 *
 * Records are encoded into a staging buffer under the put lock and written with one pwrite per
 * batch and file when the batch is at least a page (not through the mapping: a write fault
 * dirties the whole page-cache folio, with large folios up to megabytes that the next sync
 * then writes, and every writeback write-protects the pages again, a TLB shootdown and a fault
 * per page); smaller stages are copied into the mapping, cheaper than a system call.
 * Readers use the mapping, which sees the same page cache, below the published `wrote`.
 *
 * With SYNC_FLUSH a put leaves its records staged (up to STAGE_DEFER_MAX): the group commit
 * writes everything staged with one pwrite just before its sync (store__clog_publish), so 64
 * appenders make one write per group instead of one each, and hold the put lock only to
 * encode. Staged records are not yet visible to readers; they are once the group's write is
 * (a put nobody waits for nudges the commit thread to write it). A failed write keeps earlier
 * puts' records staged, to be written again; their waiters learn the error from the flush. */

#define STAGE_DEFER_MAX  (64 << 10)
#define STAGE_MIN        (1 << 20)
#define STAGE_PWRITE_MIN 4096
#define STAGE_PUBLISH    (256 << 10) /* a batch publishes its records at least this often */

/* Writes the staged bytes at stage_pos of the current file and publishes them (wrote,
 * last_store_ts). Put lock held. */
static int stage_write(struct store *s)
{
    if (!s->stage_len)
        return 0;
    struct store__mfile *f = s->clog_cur;
    if (s->stage_len < STAGE_PWRITE_MIN && !s->sync_flush) {
        memcpy(f->map + (s->stage_pos - f->base), s->stage, s->stage_len);
    } else {
        ssize_t rc =
            store_io.pwrite(f->fd, s->stage, s->stage_len, (off_t)(s->stage_pos - f->base));
        if (rc < 0) {
            mq_error("commitlog write at %" PRId64 ": %s", s->stage_pos, mq_strerror((int)rc));
            return (int)rc;
        }
    }
    s->stage_pos += (int64_t)s->stage_len;
    s->stage_len = 0;
    atomic_store(&s->stage_deferred, 0);
    atomic_store(&s->last_store_ts, s->stage_ts);
    atomic_store(&s->wrote, s->stage_pos);
    return 0;
}

int store__clog_publish(struct store *s)
{
    if (!atomic_load(&s->stage_deferred))
        return 0;
    pthread_mutex_lock(&s->put_lock);
    int rc = stage_write(s);
    pthread_mutex_unlock(&s->put_lock);
    if (!rc)
        store__dispatch_wake(s);
    return rc;
}

static int stage_reserve(struct store *s, size_t n)
{
    if (s->stage_len + n <= s->stage_cap)
        return 0;
    if (s->stage_len) {
        int rc = stage_write(s);
        if (rc)
            return rc;
    }
    if (n > s->stage_cap) {
        size_t cap = n > STAGE_MIN ? n : STAGE_MIN;
        uint8_t *p = realloc(s->stage, cap);
        if (!p)
            return -ENOMEM;
        s->stage = p;
        s->stage_cap = cap;
    }
    return 0;
}

/* Starts the next file; writes the blank record at the end of the current one (FORMATS.md
 * 1.1) only once the new file exists, so a failed roll leaves nothing behind. Put lock held;
 * the stage is empty. */
static int roll(struct store *s)
{
    struct store__mfile *cur = s->clog_cur, *nf;
    int64_t fsize = (int64_t)s->clog.file_size;
    int64_t base = cur ? cur->base + fsize : s->write_pos / fsize * fsize;
    int rc = -ENOENT;
    nf = atomic_exchange(&s->clog_spare, NULL); /* made ahead by the warm thread */
    if (nf && (nf->base != base || (rc = store__mlist_adopt(&s->clog, nf)) != 0)) {
        store__mlist_spare_drop(nf);
        nf = NULL;
    }
    if (rc)
        rc = store__mlist_create(&s->clog, base, &nf);
    if (rc) {
        mq_error("commitlog roll to %020" PRId64 ": %s", base, mq_strerror(rc));
        return rc;
    }
    if (cur) {
        uint8_t blank[8];
        size_t pos = (size_t)(s->write_pos - cur->base);
        mq_put_be32(blank, (uint32_t)(cur->size - pos));
        mq_put_be32(blank + 4, MQ_MSG_MAGIC_BLANK);
        ssize_t w = store_io.pwrite(cur->fd, blank, sizeof(blank), (off_t)pos);
        if (w < 0) {
            store__mlist_delete_from(&s->clog, base);
            store__mfile_unref(nf);
            return (int)w;
        }
        store__mfile_unref(cur);
    }
    s->clog_cur = nf;
    s->write_pos = base;
    s->stage_pos = base;
    return 0;
}

/* Validates one message and sizes its record; topic_ok: its topic was checked already (the
 * previous message of the batch has the same one). */
static int check_msg(struct store *s, const struct mq_msg *in, int topic_ok,
                     struct store_put_result *r)
{
    struct mq_msg m = *in;
    m.store_host = s->conf.store_host;
    int64_t size = mq_msg_record_size(&m);
    if (size < 0)
        return (int)size;
    if (!topic_ok && mq_check_topic(in->topic, in->topic_len)) /* topics name directories */
        return -EINVAL;
    /* What crash recovery would reject is never acknowledged (it would cut the commitlog
     * there, and every later record with it) */
    if (mq_props_check(in->props, in->props_len))
        return -EBADMSG;
    if (in->body_len > (uint32_t)s->conf.max_message_size ||
        size + MQ_MSG_BLANK_MIN > (int64_t)s->clog.file_size)
        return -EMSGSIZE;
    r->wrote_bytes = (int32_t)size;
    r->phys_offset = mq_crc32(in->body, in->body_len); /* parked until the lock */
    return 0;
}

/* Un-assigns the queue offsets of results [from, to) that were staged but not written. */
static void unassign(struct store *s, const struct mq_msg *msgs, struct store_put_result *res,
                     size_t from, size_t to)
{
    for (size_t i = to; i-- > from;) {
        if (mq_sysflag_tx_hidden(msgs[i].sysflag))
            continue;
        struct store__tqoff *e = tq_get(s, msgs[i].topic, msgs[i].topic_len, msgs[i].queue_id);
        if (e)
            e->next = res[i].queue_offset;
    }
}

/* A write failed: the batch's staged records (results [staged_from, to)) are lost; back to the
 * end of the kept_len bytes earlier puts had staged at kept_pos (SYNC_FLUSH), which stay staged
 * unless a write since (stage_pos moved) took them. Returns how many records of the batch stay
 * written. Put lock held. */
static size_t drop_stage(struct store *s, const struct mq_msg *msgs, struct store_put_result *res,
                         size_t staged_from, size_t to, int64_t kept_pos, size_t kept_len)
{
    size_t kept = s->stage_pos == kept_pos ? kept_len : 0;
    unassign(s, msgs, res, staged_from, to);
    s->stage_len = kept;
    s->write_pos = s->stage_pos + (int64_t)kept;
    return staged_from;
}

/* After a recovery that could not reserve the rest of the current commitlog file: tries again.
 * Appending through the mapping into unreserved pages would raise SIGBUS on a full disk. */
static int clog_reserved(struct store *s)
{
    if (!atomic_load(&s->clog_holes))
        return 0;
    pthread_mutex_lock(&s->put_lock);
    int rc = 0;
    if (atomic_load(&s->clog_holes) && s->clog_cur)
        rc = store__mfile_reserve(s->clog_cur, s->write_pos);
    if (rc == 0 && atomic_exchange(&s->clog_holes, 0))
        mq_info("commitlog: space again, writes accepted");
    pthread_mutex_unlock(&s->put_lock);
    return rc;
}

int store_put_batch(struct store *s, const struct mq_msg *msgs, size_t n,
                    struct store_put_result *res, int64_t *end_offset)
{
    static const struct store_put_result zero_res; /* copied: no `rep stos` per message */
    size_t ok = 0, i, staged_from = 0;
    int first_err = 0;
    int full = atomic_load(&s->disk_full) || atomic_load(&s->disp_nospace) ||
               (n > 0 && clog_reserved(s) != 0);
    for (i = 0; i < n; i++) {
        res[i] = zero_res;
        int same_topic = i > 0 && msgs[i].topic_len == msgs[i - 1].topic_len &&
                         (msgs[i].topic == msgs[i - 1].topic ||
                          !memcmp(msgs[i].topic, msgs[i - 1].topic, msgs[i].topic_len));
        int rc = full ? -ENOSPC : check_msg(s, &msgs[i], same_topic, &res[i]);
        if (rc) {
            first_err = rc;
            break;
        }
    }
    size_t valid = first_err ? 0 : i; /* one refused message refuses the batch: none stored */

    pthread_mutex_lock(&s->put_lock);
    /* Store times never decrease in commitlog order, even when the clock steps back: the
     * merged multi-broker topic view (store_watermark; FORMATS.md Part 3, MQFS_RENDER_AT_TIME)
     * relies on it. */
    int64_t now = mq_now_ms();
    if (now < s->ts_floor)
        now = s->ts_floor;
    struct store__tqoff *tq = NULL;
    if (!s->stage_len)
        s->stage_pos = s->write_pos;
    /* records earlier puts left staged (SYNC_FLUSH): kept if this batch's write fails */
    int64_t kept_pos = s->stage_pos;
    size_t kept_len = s->stage_len;
    for (i = 0; i < valid; i++) {
        struct store_put_result *r = &res[i];
        struct mq_msg m = msgs[i];
        int64_t size = r->wrote_bytes;
        uint32_t crc = (uint32_t)r->phys_offset;
        int rc = 0;
        if (!s->clog_cur || s->write_pos + size + MQ_MSG_BLANK_MIN >
                                s->clog_cur->base + (int64_t)s->clog.file_size) {
            rc = s->clog_cur ? stage_write(s) : 0;
            if (!rc) {
                staged_from = i;
                rc = roll(s);
            }
        }
        if (!rc)
            rc = stage_reserve(s, (size_t)size);
        if (rc) {
            ok = drop_stage(s, msgs, res, staged_from, i, kept_pos, kept_len);
            first_err = rc;
            break;
        }
        if (s->stage_len == 0)
            staged_from = i;
        if (!tq || tq->queue_id != m.queue_id || tq->topic_len != m.topic_len ||
            memcmp(tq->topic, m.topic, m.topic_len)) {
            tq = tq_get(s, m.topic, m.topic_len, m.queue_id);
            if (!tq) {
                first_err = -ENOMEM;
                break;
            }
        }
        int no_cq = mq_sysflag_tx_hidden(m.sysflag);
        m.queue_offset = no_cq ? 0 : tq->next;
        m.phys_offset = s->write_pos;
        m.store_ts = now;
        s->stage_ts = now;
        m.store_host = s->conf.store_host;
        (void)mq_msg_encode_crc(&m, crc, s->stage + s->stage_len, (size_t)size);
        s->stage_len += (size_t)size;
        if (!no_cq)
            tq->next++;
        r->phys_offset = s->write_pos;
        r->queue_offset = m.queue_offset;
        s->write_pos += size;
        ok++;
        if (s->stage_len >= STAGE_PUBLISH && i + 1 < valid) {
            /* A large batch: write and publish what is staged, so the dispatcher works on it
             * while the rest is encoded (a failure later in the batch keeps these records,
             * as a failed roll does). */
            int wrc = stage_write(s);
            if (wrc) {
                ok = drop_stage(s, msgs, res, staged_from, ok, kept_pos, kept_len);
                first_err = wrc;
                break;
            }
            staged_from = ok;
            store__dispatch_wake(s);
        }
    }
    int defer = s->sync_flush && s->stage_len <= STAGE_DEFER_MAX;
    int wrc = s->stage_len && !defer ? stage_write(s) : 0;
    if (wrc) {
        ok = drop_stage(s, msgs, res, staged_from, ok, kept_pos, kept_len);
        first_err = wrc;
    }
    int64_t end = s->write_pos;
    if (ok)
        s->ts_floor = now;
    defer = s->stage_len > 0;
    if (defer)
        atomic_store(&s->stage_deferred, 1);
    pthread_mutex_unlock(&s->put_lock);

    int64_t bytes = 0;
    for (i = 0; i < ok; i++)
        bytes += res[i].wrote_bytes;
    for (i = ok; i < n; i++) {
        res[i].status = i == ok && first_err ? first_err : -ECANCELED;
        res[i].wrote_bytes = 0;
        res[i].phys_offset = -1;
        res[i].queue_offset = -1;
    }
    if (ok) {
        atomic_fetch_add(&s->puts, (int64_t)ok);
        atomic_fetch_add(&s->put_bytes, bytes);
        if (defer)
            store__flush_note_staged(s);
        else if (!store__dispatch_deferred(s))
            store__dispatch_wake(s);
        store__warm_wake(s);
    }
    if (end_offset)
        *end_offset = end;
    return ok ? (int)ok : (first_err ? first_err : 0);
}

int store_put(struct store *s, const struct mq_msg *msg, struct store_put_result *res)
{
    int rc = store_put_batch(s, msg, 1, res, NULL);
    return rc == 1 ? 0 : res->status;
}

/* ---- read ---- */

int store__clog_is_record(struct store *s, int64_t phys)
{
    int64_t wrote = atomic_load(&s->wrote);
    if (phys < 0 || phys + MQ_MSG_HDR_V4 > wrote)
        return 0;
    struct store__mfile *f = store__mlist_find(&s->clog, phys);
    if (!f)
        return 0;
    size_t pos = (size_t)(phys - f->base);
    int ok = pos + MQ_MSG_HDR_V4 <= f->size;
    if (ok) {
        const uint8_t *p = f->map + pos;
        uint32_t magic = mq_get_be32(p + 4);
        ok = (magic == MQ_MSG_MAGIC_V1 || magic == MQ_MSG_MAGIC_V2) &&
             (int64_t)mq_get_be64(p + 28) == phys; /* PHYSICALOFFSET names its own place */
    }
    store__mfile_unref(f);
    return ok;
}

int store__clog_read(struct store *s, int64_t phys, struct store__mfile **fp, struct mq_msg *m)
{
    int64_t wrote = atomic_load(&s->wrote);
    if (phys < 0 || phys >= wrote)
        return MQ_ENOTFOUND;
    struct store__mfile *f = store__mlist_find(&s->clog, phys);
    if (!f)
        return MQ_ENOTFOUND;
    size_t pos = (size_t)(phys - f->base);
    size_t avail = f->size - pos;
    if (f->base + (int64_t)f->size > wrote)
        avail = (size_t)(wrote - phys);
    int64_t rc = mq_msg_decode(f->map + pos, avail, 0, 0, m);
    if (rc < 0 || m->magic == MQ_MSG_MAGIC_BLANK) {
        store__mfile_unref(f);
        return rc < 0 ? (int)rc : MQ_ENOTFOUND;
    }
    *fp = f;
    return 0;
}

/* ---- recovery (FORMATS.md 1.7) ---- */

/* Is file f a safe place to start abnormal recovery (RocketMQ isMappedFileMatchedRecover)? */
static int file_matches(struct store *s, struct store__mfile *f, int64_t min_ts)
{
    struct mq_msg m;
    int64_t rc =
        mq_msg_decode(f->map, f->size, (uint32_t)s->conf.max_message_size, MQ_MSG_CHECK_CRC, &m);
    if (rc <= 0 || m.magic == MQ_MSG_MAGIC_BLANK || m.store_ts == 0)
        return 0;
    return m.store_ts <= min_ts - 3000;
}

int store__clog_recover(struct store *s, int64_t ckpt_min_ts, int64_t *reput_from)
{
    struct store__mlist *l = &s->clog;
    size_t n = l->n, start;
    if (n == 0) {
        s->write_pos = 0;
        atomic_store(&s->wrote, 0);
        *reput_from = 0;
        return 0;
    }
    if (!s->abnormal) {
        start = n > 3 ? n - 3 : 0;
    } else {
        start = 0;
        for (size_t i = n; i-- > 0;) {
            if (file_matches(s, l->files[i], ckpt_min_ts)) {
                start = i;
                break;
            }
        }
    }
    int64_t valid_end = l->files[start]->base, last_ts = 0, count = 0;
    for (size_t i = start; i < n; i++) {
        struct store__mfile *f = l->files[i];
        size_t pos = 0;
        int blank = 0;
        valid_end = f->base;
        while (pos + MQ_MSG_BLANK_MIN <= f->size) {
            struct mq_msg m;
            int64_t rc =
                mq_msg_decode(f->map + pos, f->size - pos, (uint32_t)s->conf.max_message_size,
                              MQ_MSG_CHECK_CRC | MQ_MSG_CHECK_STRICT, &m);
            if (rc > 0 && m.magic == MQ_MSG_MAGIC_BLANK && (size_t)rc == f->size - pos) {
                blank = 1;
                break;
            }
            if (rc <= 0 || m.magic == MQ_MSG_MAGIC_BLANK || m.phys_offset != f->base + (int64_t)pos)
                break;
            pos += (size_t)rc;
            last_ts = m.store_ts;
            count++;
        }
        valid_end = f->base + (int64_t)pos;
        if (!blank)
            break;
        valid_end = f->base + (int64_t)f->size;
        if (i + 1 == n)
            break;
    }
    mq_info("commitlog recovery (%s): %" PRId64 " records valid from %020" PRId64
            ", write position %" PRId64,
            s->abnormal ? "after crash" : "clean", count, l->files[start]->base, valid_end);
    store__mlist_delete_from(l, valid_end + 1);
    struct store__mfile *f = store__mlist_find(l, valid_end);
    if (f) {
        int rc = store__mfile_zero_from(f, valid_end);
        int64_t fbase = f->base;
        store__mfile_unref(f);
        if (rc == -ENOSPC) {
            /* Start anyway (RocketMQ does): appends are refused until the blocks are there. */
            atomic_store(&s->clog_holes, 1);
            mq_error("commitlog %020" PRId64 ": no space to reserve the rest of the file; "
                     "writes refused until there is space",
                     fbase);
        } else if (rc) {
            return rc;
        }
    }
    s->write_pos = valid_end;
    s->clog_cur = store__mlist_find(l, valid_end);
    atomic_store(&s->wrote, valid_end);
    atomic_store(&s->last_store_ts, last_ts);
    s->ts_floor = last_ts;
    atomic_store(&s->flushed, valid_end);
    *reput_from = l->files[start]->base;
    return 0;
}

/* store.c — the store's front: open/close (threads, recovery), pull-style reads from consume
 * queues with zero-copy slices of the mapped commitlog (RocketMQ
 * DefaultMessageStore.getMessage), reads by physical offset, topic deletion and stats. */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "store/store_io.h"

static const char *const status_names[] = {
    [STORE_FOUND] = "FOUND",
    [STORE_NO_MATCHED_MESSAGE] = "NO_MATCHED_MESSAGE",
    [STORE_MESSAGE_WAS_REMOVING] = "MESSAGE_WAS_REMOVING",
    [STORE_OFFSET_FOUND_NULL] = "OFFSET_FOUND_NULL",
    [STORE_OFFSET_OVERFLOW_BADLY] = "OFFSET_OVERFLOW_BADLY",
    [STORE_OFFSET_OVERFLOW_ONE] = "OFFSET_OVERFLOW_ONE",
    [STORE_OFFSET_TOO_SMALL] = "OFFSET_TOO_SMALL",
    [STORE_NO_MATCHED_LOGIC_QUEUE] = "NO_MATCHED_LOGIC_QUEUE",
    [STORE_NO_MESSAGE_IN_QUEUE] = "NO_MESSAGE_IN_QUEUE",
};

const char *store_get_status_name(enum store_get_status st)
{
    if ((unsigned)st >= sizeof(status_names) / sizeof(status_names[0]))
        return "UNKNOWN";
    return status_names[st];
}

/* Takes the store lock (RocketMQ's storePathRootDir/lock; FORMATS.md 1.8): an exclusive
 * flock on <root>/lock, held until store_close. Another process (or another store_open of the
 * same root in this process: flock locks belong to the open file) holding it makes this fail
 * with -EBUSY before anything in the store is read, recovered or written. */
static int lock_root(struct store *s)
{
    char path[STORE__PATH_MAX];
    snprintf(path, sizeof(path), "%s/lock", s->root);
    int fd = store_io.open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        mq_error("store %s: cannot open %s: %s", s->root, path, mq_strerror(fd));
        return fd;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (rc == -EBUSY)
            mq_error("store %s is in use by another process (lock held)", s->root);
        else
            mq_error("store %s: cannot lock %s: %s", s->root, path, mq_strerror(rc));
        close(fd);
        return rc;
    }
    s->lock_fd = fd;
    return 0;
}

int store_open(const struct store_config *c, store_arrival_fn listener, void *listener_arg,
               struct store **out)
{
    struct store *s = calloc(1, sizeof(*s));
    char dir[STORE__PATH_MAX];
    int rc;
    if (!s)
        return -ENOMEM;
    s->lock_fd = -1;
    s->conf = *c;
    s->listener = listener;
    s->listener_arg = listener_arg;
    if (!strcmp(c->flush_disk_type, "SYNC_FLUSH"))
        s->sync_flush = 1;
    else if (strcmp(c->flush_disk_type, "ASYNC_FLUSH")) {
        free(s);
        return -EINVAL;
    }
    if (s->conf.commit_log_warm_ahead < 0) /* default: warm where a sync follows the writer */
        s->conf.commit_log_warm_ahead = s->sync_flush ? STORE__WARM_AHEAD_SYNC : 0;
    if (s->conf.commit_log_warm_idle < 0)
        s->conf.commit_log_warm_idle = s->sync_flush ? 0 : store__warm_idle_auto();
    s->delay_levels =
        mq_delay_levels_parse(c->message_delay_level, s->delay_ms, MQ_DELAY_LEVELS_MAX);
    if (s->delay_levels < 0) {
        mq_error("messageDelayLevel \"%.200s\": expected 1 to %d delays separated by spaces, each "
                 "a number with s, m, h or d, e.g. \"1s 5s 2m\"",
                 c->message_delay_level, MQ_DELAY_LEVELS_MAX);
        free(s);
        return -EINVAL;
    }
    if (c->mapped_file_size_consume_queue < STORE__CQ_UNIT || c->max_hash_slot_num < 1 ||
        c->max_index_num < 2 || strlen(c->store_path_root_dir) + 200 >= sizeof(s->root)) {
        free(s);
        return -EINVAL;
    }
    snprintf(s->root, sizeof(s->root), "%s", c->store_path_root_dir);
    if (c->store_path_commit_log[0])
        snprintf(dir, sizeof(dir), "%s", c->store_path_commit_log);
    else
        snprintf(dir, sizeof(dir), "%s/commitlog", s->root);
    pthread_mutex_init(&s->put_lock, NULL);
    pthread_mutex_init(&s->disp_lock, NULL);
    pthread_cond_init(&s->disp_cond, NULL);
    pthread_cond_init(&s->disp_done, NULL);
    pthread_mutex_init(&s->flush_lock, NULL);
    pthread_cond_init(&s->flush_cond, NULL);
    pthread_cond_init(&s->commit_cond, NULL);
    pthread_mutex_init(&s->warm_lock, NULL);
    pthread_cond_init(&s->warm_cond, NULL);
    s->idle_efd = -1;
    pthread_mutex_init(&s->clean_lock, NULL);
    pthread_cond_init(&s->clean_cond, NULL);
    pthread_mutex_init(&s->retention_lock, NULL);
    pthread_rwlock_init(&s->qtab.lock, NULL);
    store__mlist_init(&s->clog, dir, (size_t)c->mapped_file_size_commit_log,
                      STORE__MF_PREALLOC | STORE__MF_SEQUENTIAL | STORE__MF_HEAD);
    rc = store__mkdirs(s->root);
    if (!rc)
        rc = lock_root(s); /* first: nothing below may touch a store another process has */
    if (!rc)
        rc = store__mlist_load(&s->clog);
    if (!rc)
        rc = store__qtab_load(s);
    if (!rc)
        rc = store__idx_load(s);
    if (!rc)
        rc = store__recover(s);
    if (!rc)
        rc = store__dispatch_start(s);
    if (!rc)
        rc = store__flush_start(s);
    if (!rc)
        rc = store__warm_start(s);
    if (!rc)
        rc = store__clean_start(s);
    if (rc) {
        mq_error("store %s: open failed: %s", s->root, mq_strerror(rc));
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    int opened = s->disp_started && s->flush_started;
    store__clean_stop(s);
    store__warm_stop(s);
    if (opened)
        (void)store__clog_publish(s); /* staged records reach the dispatcher (a failure: the
                                          final flush reports it) */
    store__dispatch_stop(s);
    if (opened) {
        store__flush_stop(s);
        store__abort_remove(s);
    }
    store__mfile_unref(s->clog_cur);
    store__qtab_free(s);
    if (s->idx.dir[0])
        store__idx_free(s);
    store__mlist_destroy(&s->clog);
    store__tq_free(s);
    free(s->stage);
    pthread_rwlock_destroy(&s->qtab.lock);
    pthread_mutex_destroy(&s->put_lock);
    pthread_mutex_destroy(&s->disp_lock);
    pthread_cond_destroy(&s->disp_cond);
    pthread_cond_destroy(&s->disp_done);
    pthread_mutex_destroy(&s->flush_lock);
    pthread_cond_destroy(&s->flush_cond);
    pthread_cond_destroy(&s->commit_cond);
    pthread_mutex_destroy(&s->clean_lock);
    pthread_cond_destroy(&s->clean_cond);
    pthread_mutex_destroy(&s->warm_lock);
    pthread_cond_destroy(&s->warm_cond);
    pthread_mutex_destroy(&s->retention_lock);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* last: releases the store lock */
    free(s);
}

/* ---- results ---- */

static struct store_get_result *result_new(size_t cap)
{
    struct store_get_result *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->msgs = calloc(cap ? cap : 1, sizeof(*r->msgs));
    if (!r->msgs) {
        free(r);
        return NULL;
    }
    return r;
}

/* Takes over the caller's reference to f (one per distinct file). */
int store__result_ref(struct store_get_result *r, struct store__mfile *f)
{
    if (r->nrefs_ == r->caprefs_) {
        size_t cap = r->caprefs_ ? r->caprefs_ * 2 : 4;
        void *p = realloc(r->refs_, cap * sizeof(*r->refs_));
        if (!p)
            return -ENOMEM;
        r->refs_ = p;
        r->caprefs_ = cap;
    }
    r->refs_[r->nrefs_++] = f;
    return 0;
}

void store_release(struct store *s, struct store_get_result *r)
{
    (void)s;
    if (!r)
        return;
    for (size_t i = 0; i < r->nrefs_; i++)
        store__mfile_unref(r->refs_[i]);
    free(r->refs_);
    free(r->msgs);
    free(r);
}

static int tag_match(int64_t code, const int64_t *tags, size_t ntags)
{
    for (size_t i = 0; i < ntags; i++)
        if (tags[i] == code)
            return 1;
    return 0;
}

/* Reads the entries [offset, max) into r (the FOUND branch of getMessage). */
static int read_entries(struct store *s, struct store__queue *q, int64_t offset, int64_t max,
                        int max_count, int64_t max_bytes, const int64_t *tags, size_t ntags,
                        const struct store_filter *filter, struct store_get_result *r)
{
    int64_t scan = max_count * STORE__CQ_UNIT > 16000 ? max_count : 16000 / STORE__CQ_UNIT;
    int64_t clog_min = store__mlist_min_offset(&s->clog), wrote = atomic_load(&s->wrote);
    struct store__mfile *cqf = NULL, *cf = NULL;
    int cf_used = 0, rc = 0, removing = 0;
    int64_t i = offset;
    r->status = STORE_NO_MATCHED_MESSAGE;
    for (; i < max && i - offset < scan; i++) {
        int64_t pos = i * STORE__CQ_UNIT;
        if (!cqf || pos >= cqf->base + (int64_t)cqf->size) {
            store__mfile_unref(cqf);
            cqf = store__mlist_find(&q->cq, pos);
            if (!cqf) {
                if (i == offset) {
                    r->status = STORE_OFFSET_FOUND_NULL;
                    i = (pos / (int64_t)q->cq.file_size + 1) * (int64_t)q->cq.file_size /
                        STORE__CQ_UNIT;
                }
                break;
            }
        }
        const uint8_t *e = cqf->map + (pos - cqf->base);
        int64_t phys = (int64_t)mq_get_be64(e);
        int32_t size = (int32_t)mq_get_be32(e + 8);
        int64_t code = (int64_t)mq_get_be64(e + 12);
        if (size <= 0 || phys + size > wrote)
            break;
        if (phys < clog_min) {
            removing = 1;
            continue;
        }
        if ((int)r->count >= max_count || (r->count > 0 && (int64_t)r->bytes + size > max_bytes))
            break;
        if (ntags && !tag_match(code, tags, ntags))
            continue;
        if (!cf || phys < cf->base || phys + size > cf->base + (int64_t)cf->size) {
            if (cf && cf_used)
                rc = store__result_ref(r, cf);
            else
                store__mfile_unref(cf);
            cf_used = 0;
            cf = rc ? NULL : store__mlist_find(&s->clog, phys);
            if (!cf) {
                removing = 1;
                if (rc)
                    break;
                continue;
            }
        }
        int keep =
            filter ? filter->match(cf->map + (phys - cf->base), (uint32_t)size, filter->arg) : 1;
        if (keep < 0)
            break; /* read again from this record */
        if (keep == 0)
            continue;
        struct store_slice *sl = &r->msgs[r->count++];
        sl->data = cf->map + (phys - cf->base);
        sl->len = (uint32_t)size;
        sl->phys_offset = phys;
        sl->queue_offset = i;
        r->bytes += (size_t)size;
        cf_used = 1;
    }
    if (cf && cf_used && !rc)
        rc = store__result_ref(r, cf);
    else
        store__mfile_unref(cf);
    store__mfile_unref(cqf);
    if (r->count)
        r->status = STORE_FOUND;
    else if (removing && r->status == STORE_NO_MATCHED_MESSAGE)
        r->status = STORE_MESSAGE_WAS_REMOVING;
    r->next_offset = i;
    return rc;
}

int store_get_messages(struct store *s, const char *topic, size_t tlen, int qid, int64_t offset,
                       int max_count, int64_t max_bytes, const int64_t *tags, size_t ntags,
                       struct store_get_result **out)
{
    return store_get_messages_filtered(s, topic, tlen, qid, offset, max_count, max_bytes, tags,
                                       ntags, NULL, out);
}

int store_get_messages_filtered(struct store *s, const char *topic, size_t tlen, int qid,
                                int64_t offset, int max_count, int64_t max_bytes,
                                const int64_t *tags, size_t ntags,
                                const struct store_filter *filter, struct store_get_result **out)
{
    if (max_count <= 0)
        return -EINVAL;
    struct store_get_result *r = result_new((size_t)max_count);
    if (!r)
        return -ENOMEM;
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    int rc = 0;
    if (!q) {
        r->status = STORE_NO_MATCHED_LOGIC_QUEUE;
        r->next_offset = 0;
        goto out;
    }
    int64_t min = atomic_load(&q->min_off), max = atomic_load(&q->max_off);
    r->min_offset = min;
    r->max_offset = max;
    if (max == 0) {
        r->status = STORE_NO_MESSAGE_IN_QUEUE;
        r->next_offset = 0;
    } else if (offset < min) {
        r->status = STORE_OFFSET_TOO_SMALL;
        r->next_offset = min;
    } else if (offset == max) {
        r->status = STORE_OFFSET_OVERFLOW_ONE;
        r->next_offset = offset;
    } else if (offset > max) {
        r->status = STORE_OFFSET_OVERFLOW_BADLY;
        r->next_offset = min == 0 ? min : max;
    } else {
        rc = read_entries(s, q, offset, max, max_count, max_bytes, tags, ntags, filter, r);
    }
out:
    if (rc) {
        store_release(s, r);
        return rc;
    }
    *out = r;
    return 0;
}

int store_get_by_phys(struct store *s, int64_t phys, struct store_get_result **out)
{
    struct store__mfile *f;
    struct mq_msg m;
    /* The offset comes from a message id anyone can write: one that is not a record's start
     * is not found, quietly (decoding there would log corrupt data) */
    int rc = store__clog_is_record(s, phys) ? store__clog_read(s, phys, &f, &m) : MQ_ENOTFOUND;
    if (rc)
        return rc;
    struct store_get_result *r = result_new(1);
    if (!r || store__result_ref(r, f)) {
        store__mfile_unref(f);
        store_release(s, r);
        return -ENOMEM;
    }
    r->status = STORE_FOUND;
    r->count = 1;
    r->bytes = m.total_size;
    r->msgs[0] =
        (struct store_slice){f->map + (phys - f->base), m.total_size, phys, m.queue_offset};
    *out = r;
    return 0;
}

int64_t store_clog_min_offset(struct store *s)
{
    int64_t v = store__mlist_min_offset(&s->clog);
    return v < 0 ? 0 : v;
}

int64_t store_clog_max_offset(struct store *s)
{
    return atomic_load(&s->wrote);
}

int store_delete_topic(struct store *s, const char *topic, size_t tlen)
{
    /* the dispatcher must not append to the queues while they go */
    pthread_mutex_lock(&s->disp_lock);
    int rc = store__qtab_delete_topic(s, topic, tlen);
    pthread_mutex_unlock(&s->disp_lock);
    store__tq_delete_topic(s, topic, tlen);
    return rc;
}

void store_get_stats(struct store *s, struct store_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->puts = atomic_load(&s->puts);
    st->put_bytes = atomic_load(&s->put_bytes);
    st->clog_min = store_clog_min_offset(s);
    st->clog_max = atomic_load(&s->wrote);
    st->flushed = atomic_load(&s->flushed);
    st->dispatched = atomic_load(&s->reput);
    st->dispatch_lag = st->clog_max - st->dispatched;
    st->flushes = atomic_load(&s->flushes);
    pthread_rwlock_rdlock(&s->qtab.lock);
    st->queues = (int)s->qtab.count;
    pthread_rwlock_unlock(&s->qtab.lock);
    st->disk_used_pct = store__disk_used_pct(s);
    st->disk_full =
        atomic_load(&s->disk_full) || atomic_load(&s->disp_nospace) || atomic_load(&s->clog_holes);
}

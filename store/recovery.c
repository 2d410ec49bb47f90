/* recovery.c — open-time recovery (RocketMQ DefaultMessageStore.recover, CommitLog
 * recoverNormally/recoverAbnormally; FORMATS.md 1.5–1.7): the abort file, the checkpoint, the
 * commitlog's valid end, consume queues cut to it, put offsets rebuilt, and re-dispatch. */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "store/store_io.h"

_Static_assert(STORE__CHECKPOINT_LEN == 4096, "checkpoint, FORMATS.md 1.5");

static void path_of(struct store *s, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", s->root, name);
}

int store__checkpoint_write(struct store *s)
{
    char path[STORE__PATH_MAX], tmp[STORE__PATH_MAX];
    uint8_t buf[STORE__CHECKPOINT_LEN] = {0};
    mq_put_be64(buf + 0, (uint64_t)s->flushed_ts);
    mq_put_be64(buf + 8, (uint64_t)s->logics_ts);
    mq_put_be64(buf + 16, (uint64_t)s->index_ts);
    path_of(s, "checkpoint", path, sizeof(path));
    path_of(s, "checkpoint.tmp", tmp, sizeof(tmp));
    int fd = store_io.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = (int)store_io.pwrite(fd, buf, sizeof(buf), 0);
    if (rc >= 0)
        rc = store_io.fsync(fd);
    close(fd);
    if (rc >= 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc >= 0) {
        int dfd = store_io.open(s->root, O_RDONLY | O_DIRECTORY, 0);
        if (dfd >= 0) {
            rc = store_io.fsync(dfd);
            close(dfd);
        }
    }
    if (rc < 0)
        mq_warn("checkpoint: %s", mq_strerror(rc));
    return rc < 0 ? rc : 0;
}

static void checkpoint_read(struct store *s, int64_t v[3])
{
    char path[STORE__PATH_MAX];
    uint8_t buf[24] = {0};
    path_of(s, "checkpoint", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
            memset(buf, 0, sizeof(buf));
        close(fd);
    }
    for (int i = 0; i < 3; i++)
        v[i] = (int64_t)mq_get_be64(buf + 8 * i);
}

int store__abort_create(struct store *s)
{
    char path[STORE__PATH_MAX];
    path_of(s, "abort", path, sizeof(path));
    int fd = store_io.open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return fd;
    int rc = store_io.fsync(fd);
    close(fd);
    return rc;
}

void store__abort_remove(struct store *s)
{
    char path[STORE__PATH_MAX];
    path_of(s, "abort", path, sizeof(path));
    unlink(path);
}

struct recover_ctx {
    int64_t clog_end, clog_min, reput;
    int rc;
};

static void recover_queue(struct store *s, struct store__queue *q, void *arg)
{
    struct recover_ctx *c = arg;
    store__queue_recover(s, q, c->clog_end);
    store__queue_correct_min(s, q, c->clog_min);
    if (q->max_phys_end > c->reput)
        c->reput = q->max_phys_end;
}

static void set_put_offset(struct store *s, struct store__queue *q, void *arg)
{
    struct recover_ctx *c = arg;
    int rc = store__tq_set(s, q->topic, q->topic_len, q->queue_id, atomic_load(&q->max_off));
    q->flushed_off = atomic_load(&q->max_off);
    if (rc)
        c->rc = rc;
}

/* Recovery could not dispatch [from, end) (no space for a consume-queue file): the put offsets
 * of the queues those records went to come from the records themselves, so that sends continue
 * after them once the dispatcher (retrying every second) has caught up. */
static int put_offsets_from_records(struct store *s, int64_t from, int64_t end)
{
    struct store__mfile *f = NULL;
    int rc = 0;
    while (from < end && rc == 0) {
        if (!f || from >= f->base + (int64_t)f->size) {
            store__mfile_unref(f);
            if (!(f = store__mlist_find(&s->clog, from)))
                return MQ_CORRUPT_BKPT;
        }
        int64_t fend = f->base + (int64_t)f->size;
        struct mq_msg m;
        int64_t n = mq_msg_decode(f->map + (from - f->base),
                                  (size_t)((fend < end ? fend : end) - from), 0, 0, &m);
        if (n <= 0) {
            rc = MQ_CORRUPT_BKPT;
            break;
        }
        if (m.magic == MQ_MSG_MAGIC_BLANK)
            n = fend - from;
        else if (!mq_sysflag_tx_hidden(m.sysflag))
            rc = store__tq_set(s, m.topic, m.topic_len, m.queue_id, m.queue_offset + 1);
        from += n;
    }
    store__mfile_unref(f);
    return rc;
}

int store__recover(struct store *s)
{
    char path[STORE__PATH_MAX];
    int64_t ck[3], reput_from = 0;
    path_of(s, "abort", path, sizeof(path));
    s->abnormal = access(path, F_OK) == 0;
    checkpoint_read(s, ck);
    s->flushed_ts = ck[0];
    s->logics_ts = ck[1];
    s->index_ts = ck[2];
    int64_t min_ts = ck[0] < ck[1] ? ck[0] : ck[1];
    if (s->conf.message_index_enable && ck[2] < min_ts)
        min_ts = ck[2];

    int rc = store__clog_recover(s, min_ts, &reput_from);
    if (rc)
        return rc;
    store__idx_truncate(s, atomic_load(&s->wrote));
    struct recover_ctx c = {atomic_load(&s->wrote), store__mlist_min_offset(&s->clog), 0, 0};
    if (c.clog_min < 0)
        c.clog_min = 0;
    store__qtab_foreach(s, recover_queue, &c);
    if (s->abnormal || c.reput == 0)
        c.reput = reput_from;
    if (c.reput < c.clog_min)
        c.reput = c.clog_min;
    if (c.reput > c.clog_end)
        c.reput = c.clog_end;
    atomic_store(&s->reput, c.reput);
    mq_info("store %s: %s start, dispatching again from %" PRId64 " to %" PRId64, s->root,
            s->abnormal ? "abnormal" : "normal", c.reput, c.clog_end);
    rc = store__dispatch_run(s);
    int nospace = rc == -ENOSPC; /* start anyway, as RocketMQ does: puts refused meanwhile */
    if (rc && !nospace)
        return rc;
    store__qtab_foreach(s, set_put_offset, &c);
    if (c.rc)
        return c.rc;
    if (nospace) {
        mq_warn("store %s: dispatched up to %" PRId64 " of %" PRId64
                " (no space); the rest follows once there is space",
                s->root, atomic_load(&s->reput), c.clog_end);
        if ((rc = put_offsets_from_records(s, atomic_load(&s->reput), c.clog_end)) != 0)
            return rc;
    }
    return store__abort_create(s);
}

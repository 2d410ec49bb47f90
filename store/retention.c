/* retention.c — deleting old data (RocketMQ CleanCommitLogService / CleanConsumeQueueService):
 * commitlog files older than fileReservedTime hours at the deleteWhen hours, at once when disk
 * usage passes diskMaxUsedSpaceRatio, regardless of age past 85 %; writes refused past 90 %;
 * at most 10 files per pass; then consume-queue, rendered and index files below the new
 * minimum. */
#include "store/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/mq_log.h"
#include "common/mq_util.h"
#include "store/store_io.h"

#define CLEAN_FORCE_PCT   85 /* diskSpaceCleanForciblyRatio */
#define CLEAN_WARNING_PCT 90 /* diskSpaceWarningLevelRatio: refuse writes */
#define CLEAN_MAX_FILES   10 /* deleteFilesBatchMax */

int store__disk_used_pct(struct store *s)
{
    struct statvfs v;
    if (store_io.statvfs(s->clog.dir, &v) < 0 || v.f_blocks == 0)
        return -1;
    return (int)((v.f_blocks - v.f_bfree) * 100 / v.f_blocks);
}

struct clean_ctx {
    struct store *s;
    int force;
    int64_t expire_before_ms;
    int64_t reput;
};

static int clog_keep(struct store__mfile *f, void *arg)
{
    struct clean_ctx *c = arg;
    if (f->base + (int64_t)f->size > c->reput)
        return 1; /* not fully dispatched yet */
    if (c->force)
        return 0;
    struct stat st;
    if (stat(f->path, &st) < 0)
        return 1;
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return mtime >= c->expire_before_ms;
}

static void trim_queue(struct store *s, struct store__queue *q, void *arg)
{
    store__queue_trim(s, q, *(int64_t *)arg);
}

int store_clean_now(struct store *s, int force)
{
    pthread_mutex_lock(&s->retention_lock);
    struct clean_ctx c = {s, force, mq_now_ms() - (int64_t)s->conf.file_reserved_time * 3600 * 1000,
                          atomic_load(&s->reput)};
    int n = store__mlist_delete_front(&s->clog, CLEAN_MAX_FILES, clog_keep, &c);
    int64_t min = store__mlist_min_offset(&s->clog);
    if (n > 0 && min > 0) {
        store__qtab_foreach(s, trim_queue, &min);
        store__idx_delete_below(s, min);
    }
    pthread_mutex_unlock(&s->retention_lock);
    return n;
}

/* Is the current local hour one of deleteWhen's ("04" or "04;16")? */
static int is_delete_time(const char *when)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    for (const char *p = when; *p;) {
        char *end;
        long h = strtol(p, &end, 10);
        if (end != p && h == tm.tm_hour)
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static void *clean_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "store-clean");
    pthread_mutex_lock(&s->clean_lock);
    while (!s->clean_stop) {
        pthread_mutex_unlock(&s->clean_lock);
        int pct = store__disk_used_pct(s);
        atomic_store(&s->disk_full, pct >= CLEAN_WARNING_PCT);
        if (pct >= CLEAN_WARNING_PCT)
            mq_warn("disk %d%% full: writes refused", pct);
        if (is_delete_time(s->conf.delete_when) || pct >= s->conf.disk_max_used_space_ratio)
            store_clean_now(s, pct >= CLEAN_FORCE_PCT);
        pthread_mutex_lock(&s->clean_lock);
        struct timespec ts;
        mq_deadline(&ts, CLOCK_REALTIME, (int64_t)s->conf.clean_resource_interval * 1000);
        if (!s->clean_stop)
            pthread_cond_timedwait(&s->clean_cond, &s->clean_lock, &ts);
    }
    pthread_mutex_unlock(&s->clean_lock);
    return NULL;
}

int store__clean_start(struct store *s)
{
    int rc = pthread_create(&s->clean_thread, NULL, clean_main, s);
    if (rc)
        return -rc;
    s->clean_started = 1;
    return 0;
}

void store__clean_stop(struct store *s)
{
    if (!s->clean_started)
        return;
    pthread_mutex_lock(&s->clean_lock);
    s->clean_stop = 1;
    pthread_cond_signal(&s->clean_cond);
    pthread_mutex_unlock(&s->clean_lock);
    pthread_join(s->clean_thread, NULL);
    s->clean_started = 0;
}

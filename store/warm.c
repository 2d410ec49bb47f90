/* warm.c — keeps pages in memory ahead of the writers, on a thread of its own (after RocketMQ's
 * warmMappedFile / AllocateMappedFileService), so that the writing thread (the broker's I/O
 * thread) does not stop on the first touch of each fresh page — the page allocation and
 * zero-fill of an unwritten extent, which on a virtual machine also pays for the host backing
 * the page.
 *
 * Commitlog: the thread populates the page cache and the mapping for commitLogWarmAhead bytes
 * past the write position. With SYNC_FLUSH the warmed pages are also written to disk as zeros,
 * so that the group commit's later sync overwrites allocated blocks and commits no extent
 * conversion. On by default with SYNC_FLUSH only: with ASYNC_FLUSH the zero-fill it takes over
 * costs more here than in the writer's pwrite.
 *
 * The dispatcher's files (consume queues, rendered indexes, index files), written through their
 * mappings: store__warm_ahead keeps a step ahead of each prefaulted for writing, the next step
 * queued to this thread (one MADV_POPULATE_WRITE per step instead of a fault per page, and not
 * on the dispatching thread).
 *
 * The idle reserve (commitLogWarmIdle, ASYNC_FLUSH): a second thread reads the commitlog into
 * the page cache up to a reserve past the write position while the writer is quiet, so that a
 * burst after a quiet time finds its pages in memory (idle_main).
 *
 * The next files: made here (created, fallocated, mapped) once their writer is half way
 * through the current one — the commitlog's, and on the dispatcher's request those of busy
 * consume queues and rendered indexes and the next index file — so that the roll on the
 * writer's thread only renames one into place (RocketMQ's AllocateMappedFileService;
 * FORMATS.md 1.1).
 *
 * Content is never changed: populating maps the same page cache pages the writers fill, and a
 * record or entry overwrites zeros (FORMATS.md Part 1, "Pages ahead of the writer"). */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/mq_log.h"
#include "common/mq_err.h"
#include "common/mq_util.h"

/* Populated per call: stop stays prompt. With SYNC_FLUSH each step is also synced, and a
 * group commit's sync that meets one waits for it: 1 MiB steps took ~2.2 ms to sync and put
 * the SYNC_FLUSH broker's p99 at 4-5 ms, 256 KiB steps at 2.5-2.7 ms. */
#define WARM_CHUNK ((int64_t)256 << 10)

/* The next chunk to warm, at least gap bytes past the write position and at most ahead:
 * [from, to) within one existing commitlog file, referenced in *fp. *warmed is the end of what
 * was warmed before. Returns 0 when there is nothing to do now. */
static int next_chunk(struct store *s, int64_t ahead, int64_t gap, atomic_int_fast64_t *warmed,
                      int64_t *from, int64_t *to, struct store__mfile **fp)
{
    int64_t wrote = atomic_load(&s->wrote);
    if (ahead <= 0)
        return 0;
    int64_t start = atomic_load(warmed);
    if (start < wrote + gap) /* the writer overtook: warm from it */
        start = (wrote + gap) / STORE__PAGE * STORE__PAGE;
    if (start >= wrote + ahead || atomic_load(&s->clog_holes))
        return 0;
    struct store__mfile *f = store__mlist_find(&s->clog, start);
    if (!f)
        return 0; /* the next file does not exist yet: the roll wakes the thread */
    int64_t end = start + WARM_CHUNK, fend = f->base + (int64_t)f->size;
    if (end > wrote + ahead)
        end = (wrote + ahead + STORE__PAGE - 1) / STORE__PAGE * STORE__PAGE;
    if (end > fend)
        end = fend;
    if (end <= start) {
        store__mfile_unref(f);
        return 0;
    }
    *from = start;
    *to = end;
    *fp = f;
    return 1;
}

/* Brings [from, to) of f into memory. ASYNC_FLUSH: page cache pages read in (zero-filled, as
 * the extent is unwritten) and mapped read-only — the writer's pwrite finds them cached, the
 * dispatcher's reads through the mapping find them mapped, and nothing is dirtied. SYNC_FLUSH:
 * mapped for writing and synced, which writes the zeros and converts the extent now. */
static int warm(struct store *s, struct store__mfile *f, int64_t from, int64_t to)
{
    /* from is inside a page after recovery (warmed starts at the write position): msync
     * wants a page-aligned address (EINVAL otherwise). */
    size_t pos = (size_t)(from - f->base) / STORE__PAGE * STORE__PAGE;
    size_t len = (size_t)(to - f->base) - pos;
    if (!s->sync_flush)
        return store__mfile_populate(f, pos, len, 0);
    int rc = store__mfile_populate(f, pos, len, 1);
    if (!rc && msync(f->map + pos, len, MS_SYNC) < 0)
        rc = -errno;
    return rc;
}

/* Takes the oldest queued request into *r. warm_lock held. */
static int pop_request(struct store *s, struct store__warm_req *r)
{
    if (!s->wq_n)
        return 0;
    *r = s->wq[s->wq_head];
    s->wq_head = (s->wq_head + 1) % STORE__WARM_QUEUE;
    s->wq_n--;
    return 1;
}

/* The base of the next commitlog file when it is due to be made (the writer is half way
 * through the current one and its successor was not made or tried yet), else 0. */
static int64_t spare_due(struct store *s)
{
    int64_t fsize = (int64_t)s->clog.file_size, wrote = atomic_load(&s->wrote);
    int64_t next = (wrote / fsize + 1) * fsize;
    int due = !s->conf.roll_in_place && wrote - (next - fsize) >= fsize / 2 &&
              atomic_load(&s->spare_base) < next;
    return due ? next : 0;
}

/* Makes commitlog file `next`, for the roll to take (commitlog.c). */
static void make_spare(struct store *s, int64_t next)
{
    atomic_store(&s->spare_base, next);
    struct store__mfile *f;
    int rc = store__mlist_spare(&s->clog, next, &f);
    if (rc) { /* the roll makes it then, and reports what stops it */
        mq_debug("commitlog file %020lld ahead of time: %s", (long long)next, mq_strerror(rc));
        return;
    }
    store__mlist_spare_drop(atomic_exchange(&s->clog_spare, f)); /* an unused older one */
}

/* Makes file r->base of r->q's list for the dispatcher's roll, unless the queue went (its
 * deletion takes the table's write lock, and drops what was made before). */
static void make_queue_spare(struct store *s, const struct store__warm_req *r)
{
    pthread_rwlock_rdlock(&s->qtab.lock);
    if (!atomic_load(&r->q->deleted)) {
        struct store__mfile *f;
        int rc = store__mlist_spare(r->list ? &r->q->ri : &r->q->cq, r->base, &f);
        if (rc == 0)
            store__mlist_spare_drop(atomic_exchange(&r->q->spare[r->list], f));
        else
            mq_debug("queue %s/%d: next file ahead of time: %s", r->q->topic, r->q->queue_id,
                     mq_strerror(rc));
    }
    pthread_rwlock_unlock(&s->qtab.lock);
}

static void *warm_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "store-warm");
    int reported = 0;
    for (;;) {
        int64_t from, to;
        struct store__mfile *f;
        struct store__warm_req r;
        pthread_mutex_lock(&s->warm_lock);
        int req = pop_request(s, &r);
        if (req && r.kind != STORE__WARM_PAGES)
            atomic_store(&s->making, 1); /* under the lock: pending never reads 0 between */
        pthread_mutex_unlock(&s->warm_lock);
        if (req) { /* the dispatcher's first: it is about to write them */
            if (r.kind == STORE__WARM_PAGES)
                (void)store__mfile_populate(r.f, r.pos, r.len, 1);
            else if (r.kind == STORE__WARM_QUEUE_FILE)
                make_queue_spare(s, &r);
            else
                store__idx_make_spare(s);
            atomic_store(&s->making, 0);
            store__mfile_unref(r.f);
            continue;
        }
        int64_t next = spare_due(s);
        if (next) {
            atomic_store(&s->making, 1);
            make_spare(s, next);
            atomic_store(&s->making, 0);
            continue;
        }
        if (!next_chunk(s, s->conf.commit_log_warm_ahead, 0, &s->warmed, &from, &to, &f)) {
            pthread_mutex_lock(&s->warm_lock);
            atomic_store(&s->warm_sleeping, 1);
            /* re-check under the lock: an append or a request between the check and the flag
             * is not lost */
            int got = !s->warm_stop && !s->wq_n &&
                      next_chunk(s, s->conf.commit_log_warm_ahead, 0, &s->warmed, &from, &to, &f);
            if (!got && !s->warm_stop && !s->wq_n && !spare_due(s)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&s->warm_cond, &s->warm_lock, &ts);
            }
            atomic_store(&s->warm_sleeping, 0);
            int stop = s->warm_stop;
            pthread_mutex_unlock(&s->warm_lock);
            if (got && stop)
                store__mfile_unref(f);
            if (stop)
                break;
            if (!got)
                continue;
        }
        int rc = warm(s, f, from, to);
        store__mfile_unref(f);
        if (rc && !reported) { /* old kernel (EINVAL) or no space: appends fault as before */
            mq_warn("commitlog warm-ahead at %lld: %s", (long long)from, mq_strerror(rc));
            reported = 1;
        }
        atomic_store(&s->warmed, to);
    }
    return NULL;
}

/* The idle reserve (commitLogWarmIdle): a thread reads the commitlog's pages up to that far
 * past the write position into the page cache while the writer is quiet, so that a burst of
 * writes after a quiet time finds its pages in memory (a page the guest of a virtual machine
 * must first take back from the host costs 5-7 us here: ~0.3 us per 100-byte message). While
 * the writer is busy it reads nothing: taking the pages then costs as much CPU as the writer
 * taking them itself, and more on a virtual machine, whose vCPU stalls on each page the host
 * backs (measured: 1.67-1.73 M msgs/s against 1.87-2.03 M without it). It runs at the lowest
 * priority of the normal class (nice 19), so that even while quiet it takes little of a CPU
 * anything else wants. It reads through a descriptor of its own: no mmap lock held (a
 * preempted holder would stall the dispatcher's next mmap), and read-ahead state apart from
 * the readers'. It stays IDLE_GAP past the writer, so the pages it holds locked while reading
 * them in are never the writer's next, even when it is preempted mid-read (a quarter of the
 * reserve if that is less).
 * Preempted anywhere, it must hold nothing another thread waits for: it shares no lock, and
 * sleeps on an eventfd the writer and the stop write to. */
#define IDLE_GAP      ((int64_t)16 << 20)
#define IDLE_WINDOW   100000             /* us: the writer's rate is looked at over this */
#define IDLE_MAX_RATE ((int64_t)1 << 20) /* quiet: less than this written in a window */

int store__warm_idle_auto(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    int64_t r = pages > 0 && psz > 0 ? (int64_t)pages * psz / 16 : 0;
    if (r > (int64_t)1 << 30)
        r = (int64_t)1 << 30;
    return (int)(r / STORE__PAGE * STORE__PAGE);
}

/* Reads [from, to) of f through *fd (reopened for another file than *fd_base). */
static int idle_read(struct store__mfile *f, int64_t from, int64_t to, int *fd, int64_t *fd_base,
                     uint8_t *buf)
{
    if (*fd_base != f->base) {
        if (*fd >= 0)
            close(*fd);
        *fd = open(f->path, O_RDONLY | O_CLOEXEC);
        *fd_base = *fd >= 0 ? f->base : -1;
        if (*fd < 0)
            return -errno;
    }
    return pread(*fd, buf, (size_t)(to - from), from - f->base) < 0 ? -errno : 0;
}

/* The writer's quiet (IDLE_MAX_RATE over the last IDLE_WINDOW), tracked in *w. */
struct idle_watch {
    int64_t since_us, wrote;
    int quiet;
};

static int writer_quiet(struct store *s, struct idle_watch *w)
{
    int64_t now = mq_mono_us(), wrote = atomic_load(&s->wrote);
    int burst = wrote - w->wrote >= IDLE_MAX_RATE; /* busy at once, not at the window's end */
    if (burst || now - w->since_us >= IDLE_WINDOW) {
        w->quiet = !burst;
        w->since_us = now;
        w->wrote = wrote;
    }
    return w->quiet;
}

/* Sleeps until the eventfd is written to or timeout_ms passes, and drains it. */
static void idle_sleep(struct store *s, int timeout_ms)
{
    struct pollfd p = {.fd = s->idle_efd, .events = POLLIN};
    uint64_t n;
    if (poll(&p, 1, timeout_ms) > 0)
        (void)!read(s->idle_efd, &n, sizeof(n));
}

static void idle_kick(struct store *s)
{
    uint64_t one = 1;
    (void)!write(s->idle_efd, &one, sizeof(one)); /* EAGAIN: already pending, as good */
}

static void *idle_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "store-idlewarm");
    /* the lowest priority of the normal class (not SCHED_IDLE: no thread can leave that class
     * without CAP_SYS_NICE, and the stop then waited up to 2 s for a CPU on a busy machine) */
    atomic_store(&s->idle_tid, (int)gettid());
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
    int64_t reserve = s->conf.commit_log_warm_idle, fd_base = -1;
    int64_t gap = reserve / 4 < IDLE_GAP ? reserve / 4 : IDLE_GAP;
    uint8_t *buf = malloc(WARM_CHUNK);
    int fd = -1, reported = 0;
    struct idle_watch w = {mq_mono_us(), atomic_load(&s->wrote), 0};
    while (buf && !atomic_load(&s->idle_stop)) {
        int64_t from, to;
        struct store__mfile *f;
        int quiet = writer_quiet(s, &w);
        if (!quiet || !next_chunk(s, reserve, gap, &s->idle_warmed, &from, &to, &f)) {
            /* busy: looked at again after a window; quiet but caught up, or the next file is
             * not made yet: woken once the writer has used half the reserve, or in a second */
            atomic_store(&s->idle_wake, quiet ? atomic_load(&s->wrote) + reserve / 2 : INT64_MAX);
            if (fd >= 0) { /* not kept across a sleep: a busy writer may keep it asleep while
                              its file ages and retention deletes it, whose blocks an open
                              descriptor would keep allocated */
                close(fd);
                fd = -1;
                fd_base = -1;
            }
            if (!atomic_load(&s->idle_stop))
                idle_sleep(s, quiet ? 1000 : IDLE_WINDOW / 1000);
            atomic_store(&s->idle_wake, INT64_MAX);
            continue;
        }
        int rc = idle_read(f, from, to, &fd, &fd_base, buf);
        if (rc && !reported) {
            mq_warn("commitlog idle warm at %lld: %s", (long long)from, mq_strerror(rc));
            reported = 1;
        }
        store__mfile_unref(f);
        atomic_store(&s->idle_warmed, to);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

void store__warm_wake(struct store *s)
{
    /* no lock: the idle thread may be preempted for long, and the writer must not wait on it */
    if (atomic_load(&s->wrote) >= atomic_load(&s->idle_wake) &&
        atomic_exchange(&s->idle_wake, INT64_MAX) != INT64_MAX)
        idle_kick(s);
    if (!atomic_load(&s->warm_sleeping))
        return;
    int64_t ahead = s->conf.commit_log_warm_ahead;
    if ((ahead <= 0 || atomic_load(&s->wrote) + ahead / 2 < atomic_load(&s->warmed)) &&
        !spare_due(s))
        return;
    pthread_mutex_lock(&s->warm_lock);
    pthread_cond_signal(&s->warm_cond);
    pthread_mutex_unlock(&s->warm_lock);
}

static int push_request(struct store *s, struct store__warm_req r)
{
    int rc = -EAGAIN;
    pthread_mutex_lock(&s->warm_lock);
    if (s->warm_started && !s->warm_stop && s->wq_n < STORE__WARM_QUEUE) {
        if (r.f)
            store__mfile_ref(r.f);
        s->wq[(s->wq_head + s->wq_n++) % STORE__WARM_QUEUE] = r;
        if (atomic_load(&s->warm_sleeping))
            pthread_cond_signal(&s->warm_cond);
        rc = 0;
    }
    pthread_mutex_unlock(&s->warm_lock);
    return rc;
}

int store__warm_request(struct store *s, struct store__mfile *f, size_t pos, size_t len)
{
    return push_request(
        s, (struct store__warm_req){.kind = STORE__WARM_PAGES, .f = f, .pos = pos, .len = len});
}

int store__warm_spare(struct store *s, struct store__queue *q, int list, int64_t base)
{
    return push_request(s, (struct store__warm_req){
                               .kind = STORE__WARM_QUEUE_FILE, .q = q, .list = list, .base = base});
}

int store_files_ahead_pending(struct store *s)
{
    pthread_mutex_lock(&s->warm_lock);
    int n = atomic_load(&s->making) + (s->warm_started && spare_due(s) != 0);
    for (unsigned i = 0; i < s->wq_n; i++)
        n += s->wq[(s->wq_head + i) % STORE__WARM_QUEUE].kind != STORE__WARM_PAGES;
    pthread_mutex_unlock(&s->warm_lock);
    return n;
}

int store__warm_index_spare(struct store *s)
{
    return push_request(s, (struct store__warm_req){.kind = STORE__WARM_INDEX_FILE});
}

void store__warm_ahead(struct store *s, struct store__mfile *f, int64_t pos, int64_t *end,
                       size_t step)
{
    int64_t fend = f->base + (int64_t)f->size;
    if (pos >= *end || *end <= f->base || *end > fend) { /* the writer is on pages not warmed */
        int64_t from = f->base + (pos - f->base) / STORE__PAGE * STORE__PAGE; /* f's pages */
        int64_t to = from + (int64_t)step < fend ? from + (int64_t)step : fend;
        (void)store__mfile_populate(f, (size_t)(from - f->base), (size_t)(to - from), 1);
        *end = to;
    }
    if (*end - pos >= (int64_t)step || *end >= fend)
        return;
    int64_t to = *end + (int64_t)step < fend ? *end + (int64_t)step : fend;
    size_t at = (size_t)(*end - f->base), len = (size_t)(to - *end);
    if (store__warm_request(s, f, at, len))
        (void)store__mfile_populate(f, at, len, 1);
    *end = to;
}

int store__warm_start(struct store *s)
{
    atomic_store(&s->warmed, atomic_load(&s->wrote));
    atomic_store(&s->idle_warmed, atomic_load(&s->wrote));
    atomic_store(&s->idle_wake, INT64_MAX);
    pthread_mutex_lock(&s->warm_lock);
    int rc = pthread_create(&s->warm_thread, NULL, warm_main, s);
    if (!rc)
        s->warm_started = 1;
    if (!rc && s->conf.commit_log_warm_idle > 0) {
        /* without it, writers take the pages as they come */
        atomic_store(&s->idle_stop, 0);
        atomic_store(&s->idle_tid, 0);
        s->idle_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->idle_started =
            s->idle_efd >= 0 && pthread_create(&s->idle_thread, NULL, idle_main, s) == 0;
        if (!s->idle_started && s->idle_efd >= 0) {
            close(s->idle_efd);
            s->idle_efd = -1;
        }
    }
    pthread_mutex_unlock(&s->warm_lock);
    return -rc;
}

void store__warm_stop(struct store *s)
{
    if (!s->warm_started)
        return;
    pthread_mutex_lock(&s->warm_lock);
    s->warm_stop = 1;
    pthread_cond_signal(&s->warm_cond);
    pthread_mutex_unlock(&s->warm_lock);
    pthread_join(s->warm_thread, NULL);
    if (s->idle_started) {
        atomic_store(&s->idle_stop, 1);
        idle_kick(s);
        /* back to the normal priority so that a busy machine lets it see the stop at once (EPERM
         * without CAP_SYS_NICE: it then takes up to ~0.3 s with both CPUs busy) */
        int tid = atomic_load(&s->idle_tid);
        if (tid > 0)
            (void)setpriority(PRIO_PROCESS, (id_t)tid, 0);
        pthread_join(s->idle_thread, NULL);
        s->idle_started = 0;
        close(s->idle_efd);
        s->idle_efd = -1;
    }
    struct store__warm_req r;
    pthread_mutex_lock(&s->warm_lock);
    while (pop_request(s, &r))
        store__mfile_unref(r.f);
    s->warm_started = 0;
    pthread_mutex_unlock(&s->warm_lock);
    store__mlist_spare_drop(atomic_exchange(&s->clog_spare, NULL));
}

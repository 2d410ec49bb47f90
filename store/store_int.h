/* store_int.h — internals shared by the store's files: mapped files and their lists, the
 * queue table, the put-offset table, the index service, the flush state and struct store.
 * Formats: docs/FORMATS.md Part 1.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/store.h"

#define STORE__CQ_UNIT         20 /* FORMATS.md 1.2 */
#define STORE__RI_UNIT         8  /* FORMATS.md 1.3 */
#define STORE__IDX_HEADER      40 /* FORMATS.md 1.4 */
#define STORE__IDX_SLOT        4
#define STORE__IDX_ENTRY       20
#define STORE__CHECKPOINT_LEN  4096 /* FORMATS.md 1.5 */
#define STORE__PAGE            4096
#define STORE__WARM_AHEAD_SYNC (16 << 20) /* commitLogWarmAhead=-1 with SYNC_FLUSH */
#define STORE__PATH_MAX        1024
#define STORE__WARM_QUEUE      64 /* prefault requests queued for the warm thread */

/* ---- mapped files (mapped_file.c) ---- */

/* One data file, mapped whole (MAP_SHARED). Reference-counted: the list holds one reference;
 * readers take one while they use the bytes; the last unref unmaps and closes. A deleted file
 * is unlinked at once and unmapped at its last unref. */
struct store__mfile {
    int64_t base; /* absolute offset of byte 0 (the file name) */
    size_t size;
    uint8_t *map;
    const uint8_t *head; /* STORE__MF_HEAD: the same bytes mapped without read-ahead, else map */
    int fd;
    atomic_int refs;
    char path[STORE__PATH_MAX];
};

/* store__mfile_open flags */
#define STORE__MF_PREALLOC   1 /* fallocate a created file whole: mapped writes never SIGBUS */
#define STORE__MF_SEQUENTIAL 2 /* read mostly in order (catch-up readers): read ahead */
#define STORE__MF_RANDOM     4 /* read at random (hash slots and chains): no read-ahead */
/* Also map the file a second time, read-only and without read-ahead (head): for the dispatcher,
 * which reads the bytes just written. Read-ahead there runs past the write position, creates
 * the pages ahead as zero-filled 2 MiB folios before the writer's pwrite reaches them, and
 * marks them so that each later read extends it; it cost the broker ~14 % of its CPU per
 * batched message (docs/BENCHMARKS.md, "Batched sends: no read-ahead behind the writer"). */
#define STORE__MF_HEAD 8

/* Opens (create: O_EXCL) and maps path, extended to size, with STORE__MF_* flags. Returns it
 * with one reference. */
int store__mfile_open(const char *path, int64_t base, size_t size, int create, int flags,
                      struct store__mfile **out);
void store__mfile_ref(struct store__mfile *f);
void store__mfile_unref(struct store__mfile *f);

/* A directory of equally sized mapped files named by 20-digit start offsets. The array is
 * guarded by lock; files are added at the end, removed at the front (retention) or, by
 * recovery only, at the end. */
struct store__mlist {
    pthread_mutex_t lock;
    struct store__mfile **files;
    size_t n, cap;
    size_t file_size;
    int flags; /* STORE__MF_* for its files */
    char dir[STORE__PATH_MAX];
};

int store__mlist_init(struct store__mlist *l, const char *dir, size_t file_size, int flags);
void store__mlist_destroy(struct store__mlist *l);
/* Maps every file in dir (creating dir), extending short files to file_size. */
int store__mlist_load(struct store__mlist *l);
/* The file holding offset, referenced (caller unrefs), or NULL. */
struct store__mfile *store__mlist_find(struct store__mlist *l, int64_t off);
/* The newest file, referenced, or NULL. */
struct store__mfile *store__mlist_last(struct store__mlist *l);
struct store__mfile *store__mlist_first(struct store__mlist *l);
/* Creates, sizes and maps the file starting at base; appends it (base must be past the last).
 * Returns it referenced. */
int store__mlist_create(struct store__mlist *l, int64_t base, struct store__mfile **out);
/* A file made ahead of its turn (RocketMQ's AllocateMappedFileService): created, sized and
 * mapped like store__mlist_create's, under a name the list ignores, so that the thread that
 * rolls to it does not wait for the allocation (fallocate of a 1 GiB commitlog file took up to
 * 0.3 s). store__mlist_adopt renames it into place and appends it (base must follow the last;
 * -EINVAL if not), referenced once more for the list; store__mlist_spare_drop deletes one not
 * used. */
int store__mlist_spare(struct store__mlist *l, int64_t base, struct store__mfile **out);
int store__mlist_adopt(struct store__mlist *l, struct store__mfile *f);
void store__mlist_spare_drop(struct store__mfile *f);
/* Unlinks and drops the first file if keep(f, arg) is false, up to max files, never the last
 * one. Returns the number removed. */
int store__mlist_delete_front(struct store__mlist *l, int max,
                              int (*keep)(struct store__mfile *f, void *arg), void *arg);
/* Deletes every file whose base >= off (used by recovery truncation). */
void store__mlist_delete_from(struct store__mlist *l, int64_t off);
/* Unlinks everything and removes the directory. */
void store__mlist_remove_all(struct store__mlist *l);
int64_t store__mlist_min_offset(struct store__mlist *l);
/* Zeroes [off, end of its file): truncate and re-extend, then reserve the dropped pages again
 * (fallocate) so that writes through the mapping never fault on a full disk. -ENOSPC when the
 * zeroing worked but the blocks could not be reserved (store__mfile_reserve later). */
int store__mfile_zero_from(struct store__mfile *f, int64_t off);
/* Reserves blocks for [off, end of its file) (fallocate; no-op where they exist). */
int store__mfile_reserve(struct store__mfile *f, int64_t off);
/* msync of [from, to) absolute offsets within f. */
int store__mfile_sync(struct store__mfile *f, int64_t from, int64_t to);
/* Brings the pages of [from, from + len) (byte positions in f, clipped to it) into memory in
 * one system call instead of a page fault per page: mapped for writing (MADV_POPULATE_WRITE),
 * or read in and mapped read-only, nothing dirtied (MADV_POPULATE_READ; readahead(2) on a
 * kernel before 5.14, where populating for writing does nothing). Returns 0 or -errno. */
int store__mfile_populate(struct store__mfile *f, size_t from, size_t len, int write);
int store__mkdirs(const char *path);
int store__rmdirs(const char *path);

/* ---- topic queues (consume_queue.c, render_index.c) ---- */

struct store__queue {
    char topic[MQ_MSG_TOPIC_MAX + 1];
    uint16_t topic_len;
    int queue_id;
    uint64_t hash;
    struct store__queue *next; /* hash chain */
    struct store__mlist cq, ri;
    atomic_int_fast64_t max_off; /* published: entries [min, max) are readable */
    atomic_int_fast64_t min_off;
    atomic_int_fast64_t render_base; /* rendered START of min_off */
    atomic_int deleted;
    /* the next cq ([0]) and ri ([1]) files, made by the warm thread (store__warm_spare) under
     * the table's read lock while the queue is not deleted; taken by the dispatcher's roll */
    _Atomic(struct store__mfile *) spare[2];
    /* dispatch thread only */
    struct store__mfile *cq_last, *ri_last;
    int64_t disp_max;         /* entries written, not yet published */
    int64_t render_end;       /* END of entry disp_max - 1 */
    int64_t max_phys_end;     /* phys + size of the last entry */
    int64_t cq_warm, ri_warm; /* prefaulted up to these byte offsets (consume_queue.c) */
    int64_t spare_asked[2];   /* base of the last next file asked for: [0] cq, [1] ri */
    int64_t file_since_ms[2]; /* when the dispatcher started writing its current files */
    int touched;
    struct store__queue *touched_next;
    int64_t flushed_off; /* flush thread: entries msync'ed */
};

/* The queue table: topic/queueId → queue; rwlock for lookups, creation by the dispatcher and
 * recovery. Deleted queues are kept on a graveyard list until close so that pointers held by
 * readers stay valid. */
struct store__qtab {
    pthread_rwlock_t lock;
    struct store__queue **buckets;
    size_t nbuckets, count;
    struct store__queue *graveyard;
};

uint64_t store__tq_hash(const char *topic, size_t tlen, int qid);
struct store__queue *store__queue_get(struct store *s, const char *topic, size_t tlen, int qid);
/* Finds or creates (maps its files); dispatch thread / recovery only. */
int store__queue_open(struct store *s, const char *topic, size_t tlen, int qid,
                      struct store__queue **out);
int store__qtab_load(struct store *s);
void store__qtab_free(struct store *s);
/* Calls fn for each live queue under the table's read lock. */
void store__qtab_foreach(struct store *s,
                         void (*fn)(struct store *s, struct store__queue *q, void *arg), void *arg);
/* Writes the CQ and rendered entries for a record (dispatch). */
int store__cq_append(struct store *s, struct store__queue *q, int64_t qoff, int64_t phys,
                     int32_t size, int64_t tags, int64_t render_len);
/* Reads CQ entry i: returns 0 or -ENOENT. */
int store__cq_entry(struct store__queue *q, int64_t i, int64_t *phys, int32_t *size, int64_t *tags);
/* Store timestamp of queue entry i (read from its commitlog record), or -1. */
int64_t store__cq_entry_time(struct store *s, struct store__queue *q, int64_t i);
int64_t store__ri_end(struct store__queue *q, int64_t i);
/* Scans the queue's files for its written length; cuts entries past clog_end. */
int store__queue_recover(struct store *s, struct store__queue *q, int64_t clog_end);
/* Recomputes min_off (first entry with phys >= clog_min) and render_base. */
void store__queue_correct_min(struct store *s, struct store__queue *q, int64_t clog_min);
/* Deletes CQ/rendered files wholly below clog_min, then corrects min (retention). */
int store__queue_trim(struct store *s, struct store__queue *q, int64_t clog_min);
/* Unlinks every queue of topic (kept in memory until close). */
int store__qtab_delete_topic(struct store *s, const char *topic, size_t tlen);
/* Rendered length of a record's body + "\n" (FORMATS.md 1.3). */
int64_t store__render_len(const struct mq_msg *m);

/* ---- put-side offset table (commitlog.c): topic-queue → next queue offset, put lock ---- */

struct store__tqoff {
    uint64_t hash; /* 0 = empty slot */
    int64_t next;
    int queue_id;
    uint16_t topic_len;
    char topic[MQ_MSG_TOPIC_MAX + 1];
};

/* ---- index files (index_file.c) ---- */

/* A key waiting to be written: its slot's cache line is being prefetched meanwhile. */
struct store__idx_pend {
    int32_t hash;
    int64_t phys, ts;
};

#define STORE__IDX_AHEAD      8 /* keys hashed ahead of their slot update */

#define STORE__IDX_PREFIX_MAX 60
struct store__idx {
    pthread_rwlock_t lock;
    struct store__mfile **files; /* oldest first */
    size_t n, cap;
    char dir[600];
    size_t slots, max_entries;
    /* dispatcher only: the write lock is held across a dispatch span (wr_held), keys queue in
     * pend (a ring) until written; warm_file's pages are prefaulted up to warm_end */
    int wr_held;
    unsigned npend, head, held_puts;
    struct store__idx_pend pend[STORE__IDX_AHEAD];
    const struct store__mfile *warm_file;
    int64_t warm_end;
    int spare_asked; /* dispatcher: the next file was asked of the warm thread, not taken yet */
    /* dispatcher: the Java hash of the last topic + '#', and of topic + '#' + the last key's
     * bytes but its last four (an ASCII prefix: one client's keys differ at their end) */
    char h_topic[MQ_MSG_TOPIC_MAX], h_prefix[STORE__IDX_PREFIX_MAX];
    size_t h_topic_len, h_prefix_len; /* h_prefix_len 0: none */
    uint32_t h_topic_hash, h_prefix_hash;
    /* the next file, made by the warm thread (store__idx_make_spare); taken by the roll */
    _Atomic(struct store__mfile *) spare;
};

int store__idx_load(struct store *s);
void store__idx_free(struct store *s);
/* Warm thread: makes the next index file (index/index.next, slot table prefaulted) for the
 * dispatcher's roll, which renames it to its time. */
void store__idx_make_spare(struct store *s);
/* The properties dispatch needs, found in one pass (slices of the record; NULL if absent). */
struct store__props {
    const char *tags, *keys, *uniq;
    size_t tags_len, keys_len, uniq_len;
};
void store__props_scan(const struct mq_msg *m, struct store__props *p);
/* Indexes a dispatched record's UNIQ_KEY and KEYS (dispatch thread, disp_lock held). The keys
 * are visible to store_query_by_key after store__idx_span_end, which the dispatcher calls
 * before it publishes a span. */
int store__idx_put(struct store *s, const struct mq_msg *m, const struct store__props *p,
                   int64_t phys);
void store__idx_span_end(struct store *s);
int store__idx_delete_below(struct store *s, int64_t clog_min);
/* Recovery: drops entries at or past clog_end (fixing the slot chains). */
int store__idx_truncate(struct store *s, int64_t clog_end);
int store__idx_sync(struct store *s);

/* ---- flush (flush.c) ---- */

struct store__flush_req {
    int64_t offset;
    int64_t deadline_us;
    store_flushed_fn cb;
    void *arg;
};

/* ---- the store ---- */

struct store {
    struct store_config conf;
    int sync_flush;
    char root[512];
    int lock_fd; /* <root>/lock, flock'ed from open to close; -1: not taken */
    store_arrival_fn listener;
    void *listener_arg;
    int64_t delay_ms[MQ_DELAY_LEVELS_MAX]; /* messageDelayLevel: level i+1 waits delay_ms[i] */
    int delay_levels;

    /* commitlog (commitlog.c) */
    struct store__mlist clog;
    pthread_mutex_t put_lock;
    struct store__mfile *clog_cur; /* put lock: the file being written */
    int64_t write_pos;             /* put lock */
    uint8_t *stage;                /* put lock: records encoded, not yet written */
    size_t stage_len, stage_cap;
    int64_t stage_pos;         /* commitlog offset of stage[0] */
    int64_t stage_ts;          /* put lock: store time of the newest staged record */
    atomic_int stage_deferred; /* records are staged for the group commit (SYNC_FLUSH) */
    atomic_int_fast64_t wrote; /* published end of the appended records */
    atomic_int_fast64_t last_store_ts;
    int64_t ts_floor;        /* put lock: no later record's store time goes below it */
    int64_t wm_last;         /* put lock: the last watermark answered (view.c) */
    struct store__tqoff *tq; /* put lock */
    size_t tq_cap, tq_count;
    atomic_int disk_full;    /* clean thread: usage past the warning ratio */
    atomic_int disp_nospace; /* dispatch: no space for a consume-queue file (ENOSPC) */
    atomic_int clog_holes;   /* the current commitlog file lacks reserved blocks (ENOSPC) */
    atomic_int_fast64_t puts, put_bytes;

    /* queues and index */
    struct store__qtab qtab;
    struct store__idx idx;

    /* dispatch (dispatch.c) */
    pthread_t disp_thread;
    pthread_mutex_t disp_lock;
    pthread_cond_t disp_cond, disp_done;
    atomic_int disp_sleeping;
    atomic_int disp_stop;
    atomic_int_fast64_t reput;        /* dispatched up to here */
    atomic_int_fast64_t disp_last_ts; /* store ts of the last dispatched record */
    int disp_started;
    struct store__queue *disp_lastq; /* dispatch thread: queue of the last record */

    /* flush (flush.c) */
    pthread_t flush_thread;
    pthread_t commit_thread;    /* SYNC_FLUSH group commits */
    pthread_cond_t commit_cond; /* a commit is needed, flush_lock */
    int commit_started;         /* flush_lock */
    atomic_int commit_idle;     /* the commit thread sleeps (set under flush_lock) */
    atomic_int commit_nudge;    /* a put left records staged: write them (SYNC_FLUSH) */
    int64_t commit_upto;        /* largest end a commit took, flush_lock */
    pthread_mutex_t flush_lock;
    pthread_cond_t flush_cond;
    struct store__flush_req *reqs;
    size_t nreqs, capreqs;
    /* store_wait_flushed callers sleep on flush_seq (a futex word), which every flush attempt
     * bumps and wakes all of them on: one system call per group commit, and no list or lock
     * on the waiters' path. A waiter that wakes with its bytes still not durable sleeps again,
     * or returns the error of a failed attempt that ended after it began waiting. */
    atomic_uint flush_seq;
    atomic_uint flush_err_seq;    /* flush_seq of the last failed attempt */
    atomic_int flush_err;         /* and its -errno */
    atomic_int nwaiting;          /* callers in store_wait_flushed */
    atomic_int_fast64_t wait_max; /* the largest offset any of them waits for */
    int npending;                 /* waiters + requests needing a flush; -1 = unknown. flush_lock */
    atomic_int flush_stop;
    atomic_int flush_closed; /* the final flush at close is done: waiters are cancelled */
    atomic_int_fast64_t flushed;
    atomic_int_fast64_t flushes;
    int64_t flushed_ts; /* flush thread: checkpoint fields */
    int64_t logics_ts, index_ts;
    int flush_started;

    /* warm (warm.c) */
    pthread_t warm_thread;
    pthread_mutex_t warm_lock;
    pthread_cond_t warm_cond;
    atomic_int warm_sleeping;
    atomic_int_fast64_t warmed; /* commitlog pages in memory up to here */
    int warm_stop, warm_started;
    /* the idle reserve (commitLogWarmIdle): its own thread, sharing no lock with the others
     * (it may be preempted for long anywhere): it sleeps on an eventfd the writer and the stop
     * write to */
    pthread_t idle_thread;
    int idle_efd;
    atomic_int idle_stop;
    atomic_int idle_tid;             /* its thread id, for the stop to raise its priority */
    atomic_int_fast64_t idle_warmed; /* pages read in up to here */
    atomic_int_fast64_t idle_wake;   /* the writer wakes the sleeping thread past this offset */
    int idle_started;
    /* the next commitlog file, made by this thread once the writer is half way through the
     * current one; taken by the roll (commitlog.c) */
    _Atomic(struct store__mfile *) clog_spare;
    atomic_int_fast64_t spare_base; /* base of the last spare made or tried */
    atomic_int making;              /* the warm thread is making a file ahead */
    /* pages of the dispatcher's files to prefault (store__warm_ahead), a ring under warm_lock */
    struct store__warm_req {
        enum { STORE__WARM_PAGES, STORE__WARM_QUEUE_FILE, STORE__WARM_INDEX_FILE } kind;
        struct store__mfile *f; /* PAGES: [pos, pos + len) of f, referenced while queued */
        size_t pos, len;
        struct store__queue *q; /* QUEUE_FILE: the file of q's list `list` at base */
        int list;
        int64_t base;
    } wq[STORE__WARM_QUEUE];
    unsigned wq_head, wq_n;

    /* clean (retention.c) */
    pthread_t clean_thread;
    pthread_mutex_t clean_lock;
    pthread_cond_t clean_cond;
    int clean_stop;
    int clean_started;
    pthread_mutex_t retention_lock; /* one pass at a time */

    int abnormal; /* opened after a crash */
};

/* commitlog.c */
int store__clog_recover(struct store *s, int64_t ckpt_min_ts, int64_t *reput_from);
int store__tq_set(struct store *s, const char *topic, size_t tlen, int qid, int64_t next);
void store__tq_delete_topic(struct store *s, const char *topic, size_t tlen);
void store__tq_free(struct store *s);
/* Whether a record (not a blank) starts at phys: its magic, and its PHYSICALOFFSET field is
 * phys. Quiet: for offsets from untrusted message ids. */
int store__clog_is_record(struct store *s, int64_t phys);
/* The record at phys, referenced (caller unrefs *f); decoded without CRC check. */
int store__clog_read(struct store *s, int64_t phys, struct store__mfile **f, struct mq_msg *m);
/* Writes and publishes the records puts left staged (SYNC_FLUSH); 0 or the write's -errno
 * (they stay staged). */
int store__clog_publish(struct store *s);

/* dispatch.c */
int store__dispatch_start(struct store *s);
void store__dispatch_stop(struct store *s);
void store__dispatch_wake(struct store *s);
/* 1 when the calling thread dispatches its appends itself (store_dispatch_defer). */
int store__dispatch_deferred(const struct store *s);
/* Dispatches [reput, wrote) on the calling thread (recovery). */
int store__dispatch_run(struct store *s);

/* flush.c */
int store__flush_start(struct store *s);
void store__flush_stop(struct store *s);
void store__flush_wake(struct store *s);
/* A put left records staged: wakes the commit thread if it sleeps, to write them. */
void store__flush_note_staged(struct store *s);
int store__flush_clog(struct store *s, int64_t upto);
/* Flushes consume queues, rendered and index files; 0 when all are durable (checkpoint may
 * advance), 1 when some queues were left for the thorough flush, or -errno. */
int store__flush_logics(struct store *s, int thorough);

/* recovery.c */
int store__recover(struct store *s);
int store__checkpoint_write(struct store *s);
int store__abort_create(struct store *s);
void store__abort_remove(struct store *s);

/* warm.c */
int store__warm_start(struct store *s);
void store__warm_stop(struct store *s);
/* After an append: wakes the warm threads when the writer nears the warmed end. */
void store__warm_wake(struct store *s);
/* commitLogWarmIdle=-1 with ASYNC_FLUSH: 1 GiB, or a sixteenth of the memory if less. */
int store__warm_idle_auto(void);
/* For a sequential writer into mapped file f (the dispatcher: consume queue, rendered index,
 * index entries) whose next byte is at pos (f's offsets), with *end the end of the pages
 * prefaulted or requested so far: keeps `step` bytes ahead of it prefaulted for writing. The
 * step under the writer is prefaulted here when the writer reached it (a start, a new file);
 * the next one is handed to the warm thread, so the writer's thread does not pay for the pages
 * (here, if the queue is full or the thread stopped). */
void store__warm_ahead(struct store *s, struct store__mfile *f, int64_t pos, int64_t *end,
                       size_t step);
/* Queues [pos, pos + len) of f to be prefaulted for writing by the warm thread. Returns 0, or
 * -EAGAIN when the queue is full or the thread is not running. */
int store__warm_request(struct store *s, struct store__mfile *f, size_t pos, size_t len);
/* Asks the warm thread to make file `base` of queue q's list (0: consume queue, 1: rendered
 * index) ahead of the dispatcher's roll to it. 0, or -EAGAIN (the queue of requests is full:
 * the roll makes the file). */
int store__warm_spare(struct store *s, struct store__queue *q, int list, int64_t base);
/* Asks the warm thread for the next index file (store__idx_make_spare). 0 or -EAGAIN. */
int store__warm_index_spare(struct store *s);

/* retention.c */
int store__clean_start(struct store *s);
void store__clean_stop(struct store *s);
int store__disk_used_pct(struct store *s);

/* get result file references */
int store__result_ref(struct store_get_result *r, struct store__mfile *f);

#endif

/* store.h — the message store: commitlog, consume queues, rendered-bytes index, index files,
 * dispatch, flush, recovery and retention (RocketMQ 4.9's DefaultMessageStore), as a library
 * with no networking. Formats: docs/FORMATS.md Part 1.
 *
 * Threads: a store runs four threads of its own (dispatch, flush, warm, clean; with SYNC_FLUSH
 * the flush thread's group commits run on a fifth, the commit thread). The warm thread keeps
 * pages and the next files ahead of the writers (store/warm.c). Every function
 * below is safe to call from any thread unless it says otherwise; callbacks run on the store's
 * threads and must not block or call store_close.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/mq_conf.h"
#include "common/mq_msg.h"

struct store;

enum store_flush_type { STORE_ASYNC_FLUSH = 0, STORE_SYNC_FLUSH = 1 };

/* Configuration; field names follow RocketMQ's MessageStoreConfig keys (store_conf_keys). */
struct store_config {
    char store_path_root_dir[512];
    char store_path_commit_log[512]; /* "" = <root>/commitlog */
    int64_t mapped_file_size_commit_log;
    int mapped_file_size_consume_queue; /* rounded down to a multiple of 20 */
    char flush_disk_type[16];           /* ASYNC_FLUSH | SYNC_FLUSH */
    int flush_interval_commit_log;      /* ms */
    int flush_commit_log_least_pages;
    int flush_commit_log_thorough_interval; /* ms */
    int flush_interval_consume_queue;       /* ms */
    int flush_consume_queue_least_pages;
    int flush_consume_queue_thorough_interval; /* ms */
    int sync_flush_timeout;                    /* ms */
    int file_reserved_time;                    /* hours */
    char delete_when[64];                      /* hours, "04" or "04;16" */
    int disk_max_used_space_ratio;             /* percent */
    int clean_resource_interval;               /* ms */
    int max_message_size;                      /* body bytes */
    int max_hash_slot_num;
    int max_index_num;
    int message_index_enable;
    int max_transfer_bytes_on_message_in_memory;
    int max_transfer_count_on_message_in_memory;
    int commit_log_warm_ahead;     /* bytes kept in memory ahead of the writer, 0: off, -1: auto */
    int commit_log_warm_idle;      /* the same while the writer is quiet, 0: off, -1: auto */
    char message_delay_level[512]; /* delay of each level, "1s 5s ... 2h" */
    /* Not a config key: the STOREHOST written into records (the broker sets its address). */
    struct mq_host store_host;
    /* Not a config key (tests of a failing roll): the roll makes the next commitlog file
     * itself, none is made ahead by the warm thread. */
    int roll_in_place;
};

/* The key table (RocketMQ names), for the broker to embed in its own: fields of struct
 * store_config. Static storage. */
extern const struct mq_conf_key store_conf_keys[];
extern const size_t store_conf_nkeys;
/* Fills c with the defaults of store_conf_keys and store host 127.0.0.1:10911. */
void store_config_defaults(struct store_config *c);
/* Sets one store key from text (for a broker whose own table does not know the key: try its
 * table, then this). Returns 0, -ENOENT (not a store key) or -EINVAL (message in err). */
int store_config_set(struct store_config *c, const char *name, const char *value, char *err,
                     size_t errlen);

/* Called by the dispatch thread (or the thread of store_dispatch_now) after each dispatched
 * batch, once per topic-queue that got new entries, with the queue's new max offset (readers
 * can now see up to it), with the dispatcher's lock held: it must not call
 * store_delete_topic. topic is not NUL-terminated and is valid during the call only. */
typedef void (*store_arrival_fn)(void *arg, const char *topic, size_t topic_len, int queue_id,
                                 int64_t max_offset);

/* Opens (creating if needed) the store under c->store_path_root_dir, recovers it (FORMATS.md
 * 1.7), dispatches what the consume queues miss, and starts its threads. listener may be NULL.
 * The config is copied. First it takes the store lock (<root>/lock, FORMATS.md 1.8), held
 * until store_close: -EBUSY when another process (or another open store in this one) has the
 * root, with nothing in it read or changed. Returns 0 and *out, or -errno / MQ_ECORRUPT. */
int store_open(const struct store_config *c, store_arrival_fn listener, void *listener_arg,
               struct store **out);
/* Stops the threads, flushes everything, writes the checkpoint, deletes the abort file,
 * releases the store lock (last) and frees s. Pending durability callbacks are called with
 * -ECANCELED unless flushed. Every get result must have been released. store_close(NULL) is a
 * no-op. Not concurrent with other calls on s. */
void store_close(struct store *s);

/* ---- writing ---- */

/* Result of one put. Its offset message id is mq_msgid_encode(store host, phys_offset). */
struct store_put_result {
    int status; /* 0, or -EINVAL (topic) / -EBADMSG (properties) / -EMSGSIZE, -ENOSPC, -EIO */
    int32_t wrote_bytes;  /* record length */
    int64_t phys_offset;  /* commitlog offset of the record */
    int64_t queue_offset; /* logical offset in its consume queue */
};

/* Appends n messages (msgs[i].topic, queue_id, flag, sysflag, born_ts, born_host,
 * reconsume_times, prepared_tx_offset, body, props are used; queue offset, physical offset,
 * store timestamp and store host are assigned) under one lock. msgs and their bytes are the
 * caller's and only read during the call. Fills res[0..n). A message refused (topic,
 * properties, size, full disk) refuses the call: none is stored. On a write failure the
 * messages before it are stored. res[k], k the number stored, has the error as its status,
 * every later one -ECANCELED; none of them is visible. *end_offset (may be
 * NULL) gets the commitlog offset just past the last stored record, to pass to
 * store_wait_flushed / store_when_flushed. Returns the number stored, or a negative errno when
 * none was. Never waits for the disk, not even with SYNC_FLUSH: the caller decides (RocketMQ's
 * WAIT property) whether to wait. Stored messages are readable once dispatched (the arrival
 * listener tells when); with SYNC_FLUSH their records are written to the commitlog by the next
 * group commit, one write for the group, so that is when they become readable. Thread-safe;
 * appends are serialized by the put lock. */
int store_put_batch(struct store *s, const struct mq_msg *msgs, size_t n,
                    struct store_put_result *res, int64_t *end_offset);
/* One message: store_put_batch with n = 1; returns 0 or res->status. */
int store_put(struct store *s, const struct mq_msg *msg, struct store_put_result *res);

/* Blocks until the commitlog is durable up to offset: the flush (SYNC_FLUSH: commit) thread
 * syncs at once for waiters (group commit: one sync serves every waiter), in both flush modes.
 * Returns 0, -ETIMEDOUT after syncFlushTimeout, -ECANCELED when the store closed first, or the
 * -errno of a write or sync that failed after the call began (-EIO: the records stay, a later
 * flush retries). */
int store_wait_flushed(struct store *s, int64_t offset);

/* Calls cb(arg, offset, status) exactly once from the flush thread when offset is durable
 * (status 0), on -ETIMEDOUT after syncFlushTimeout, on -EIO, or -ECANCELED at close. Returns 1
 * without calling cb when offset is already durable, 0 when cb is registered, -ENOMEM. For
 * event-driven callers: cb must only hand the result over to the caller's own thread. */
typedef void (*store_flushed_fn)(void *arg, int64_t offset, int status);
int store_when_flushed(struct store *s, int64_t offset, store_flushed_fn cb, void *arg);

/* ---- reading ---- */

/* RocketMQ's GetMessageStatus. */
enum store_get_status {
    STORE_FOUND = 0,
    STORE_NO_MATCHED_MESSAGE,
    STORE_MESSAGE_WAS_REMOVING,
    STORE_OFFSET_FOUND_NULL,
    STORE_OFFSET_OVERFLOW_BADLY,
    STORE_OFFSET_OVERFLOW_ONE,
    STORE_OFFSET_TOO_SMALL,
    STORE_NO_MATCHED_LOGIC_QUEUE,
    STORE_NO_MESSAGE_IN_QUEUE,
};
const char *store_get_status_name(enum store_get_status st);

/* A borrowed record: data points into the mapped commitlog. */
struct store_slice {
    const uint8_t *data; /* the whole record, FORMATS.md 1.1 */
    uint32_t len;
    int64_t phys_offset;
    int64_t queue_offset;
};

/* A get result. Everything in it, including the bytes the slices point to, is owned by the
 * result and stays valid — even if retention deletes the files meanwhile — until
 * store_release(). */
struct store_get_result {
    enum store_get_status status;
    int64_t next_offset; /* where the next pull should start (nextBeginOffset) */
    int64_t min_offset, max_offset;
    size_t count;
    size_t bytes;
    struct store_slice *msgs;
    /* internal */
    void **refs_;
    size_t nrefs_, caprefs_;
};

/* Reads up to max_count records (and, beyond the first, up to max_bytes) of topic/queue_id from
 * queue offset `offset`. When ntags > 0 only entries whose tagsCode is in tags[] are returned
 * (the caller re-checks the tag strings). Scans at most max(16000, max_count·20) consume-queue
 * bytes. Returns 0 with *out (release with store_release), or -ENOMEM / -EINVAL. */
int store_get_messages(struct store *s, const char *topic, size_t topic_len, int queue_id,
                       int64_t offset, int max_count, int64_t max_bytes, const int64_t *tags,
                       size_t ntags, struct store_get_result **out);
/* A check of each record the tag filter let through (RocketMQ's
 * MessageFilter.isMatchedByCommitLog): match() gets the whole record (FORMATS.md 1.1, already
 * validated when it was stored) and returns 1 to keep it, 0 to skip it, or -1 to end the read
 * before it (the filter's work for one read is spent: next_offset is that record's). Called on
 * the reading thread, under no store lock. */
struct store_filter {
    int (*match)(const uint8_t *record, uint32_t len, void *arg);
    void *arg;
};
/* As store_get_messages, then skipping the records filter refuses, as the tag filter skips
 * entries: they count against the scan but not against max_count, and next_offset moves past
 * them. filter may be NULL. */
int store_get_messages_filtered(struct store *s, const char *topic, size_t topic_len, int queue_id,
                                int64_t offset, int max_count, int64_t max_bytes,
                                const int64_t *tags, size_t ntags,
                                const struct store_filter *filter, struct store_get_result **out);
/* One record at a commitlog offset, as a 1-slice result (status STORE_FOUND). Returns 0,
 * MQ_ENOTFOUND (outside the commitlog or not a record), MQ_ECORRUPT. */
int store_get_by_phys(struct store *s, int64_t phys_offset, struct store_get_result **out);
/* Releases r and the file references it holds. store_release(NULL) is a no-op. */
void store_release(struct store *s, struct store_get_result *r);

/* Min and max logical offset (max = one past the last dispatched entry); 0 for unknown
 * queues. */
int64_t store_min_offset(struct store *s, const char *topic, size_t topic_len, int queue_id);
int64_t store_max_offset(struct store *s, const char *topic, size_t topic_len, int queue_id);
/* First queue offset whose record was stored at or after ts (ms); max offset when none. */
int64_t store_offset_by_time(struct store *s, const char *topic, size_t topic_len, int queue_id,
                             int64_t ts);
/* Store timestamp of the message at a queue offset (RocketMQ's getMessageStoreTimeStamp), or
 * -1 when none is retained and dispatched there. */
int64_t store_message_time(struct store *s, const char *topic, size_t topic_len, int queue_id,
                           int64_t offset);
/* Store timestamp of the queue's first retained message, or -1. */
int64_t store_earliest_time(struct store *s, const char *topic, size_t topic_len, int queue_id);
/* Commitlog bounds: first retained offset and the write position. */
int64_t store_clog_min_offset(struct store *s);
int64_t store_clog_max_offset(struct store *s);

/* Rendered-bytes view (FORMATS.md 1.3): each message is its body + "\n". *base is the first
 * retained byte, *size the total (exclusive end). Returns 0 (both 0 for unknown queues). */
int store_rendered_size(struct store *s, const char *topic, size_t topic_len, int queue_id,
                        int64_t *base, int64_t *size);
/* Compressed bodies render uncompressed only up to this size (FORMATS.md 1.3): a body that
 * claims or inflates to more is shown as stored, so neither counting nor reading it costs
 * more than this. Four times the default maxMessageSize, whatever the configured one (the
 * counts are stored: the rule may not change with the configuration). */
#define STORE_RENDER_MAX (16u << 20)
/* Appends a message body's rendering (without the "\n") to out: uncompressed (zlib, zstd) when
 * the rendered-bytes index counted it so, else as stored. 0 or -ENOMEM. */
int store_render_body(const struct mq_msg *m, struct mq_buf *out);
/* Maps a byte offset of the rendered view to (queue offset, byte within that message's
 * rendering). Returns 0, MQ_EOFFSET_MOVED below the base, -ENXIO at or past the end. */
int store_render_find(struct store *s, const char *topic, size_t topic_len, int queue_id,
                      int64_t file_offset, int64_t *queue_offset, int64_t *within);
/* Rendered byte offset where queue_offset starts. 0, MQ_EOFFSET_MOVED, -ENXIO (> max). */
int store_render_offset(struct store *s, const char *topic, size_t topic_len, int queue_id,
                        int64_t queue_offset, int64_t *file_offset);

/* Physical offsets of records indexed under topic#key stored in [begin_ms, end_ms], newest
 * first, at most max (hash matches: the caller re-checks the keys). Returns the count. */
int store_query_by_key(struct store *s, const char *topic, size_t topic_len, const char *key,
                       size_t key_len, int64_t begin_ms, int64_t end_ms, int64_t *phys, int max);

/* ---- administration ---- */

/* Removes every consume queue, rendered index and put-offset of topic (records stay in the
 * commitlog until retention). Returns 0 or MQ_ENOTFOUND. */
int store_delete_topic(struct store *s, const char *topic, size_t topic_len);

/* Runs one retention pass now (FORMATS.md 1.7 / RocketMQ CleanCommitLogService): deletes up to
 * 10 expired commitlog files (all but the newest are expired when force), then the consume
 * queue, rendered and index files below the new minimum. Returns the files deleted. */
int store_clean_now(struct store *s, int force);

struct store_stats {
    int64_t puts, put_bytes;
    int64_t clog_min, clog_max, flushed, dispatched; /* commitlog offsets */
    int64_t dispatch_lag;                            /* clog_max - dispatched */
    int64_t flushes;                                 /* commitlog msync rounds */
    int queues;
    int disk_used_pct;
    int disk_full; /* writes refused (usage past 90 %) */
};
void store_get_stats(struct store *s, struct store_stats *st);

/* For tests and tools: blocks until everything appended before the call is dispatched (at most
 * 5 s). Returns 0 or -ETIMEDOUT. */
int store_dispatch_wait(struct store *s);
/* Files the warm thread is due to make ahead of their turn (the next commitlog, consume-queue,
 * rendered-index or index file) and has not made yet; 0 once they wait for their roll. */
int store_files_ahead_pending(struct store *s);
/* Inline dispatch, for a thread that answers appends once they are dispatched: after
 * store_dispatch_defer, appends made on the calling thread do not wake the dispatch thread, and
 * the caller must call store_dispatch_now before it waits for anything; that dispatches what was
 * appended on the calling thread (the arrival listener runs there) and ends the deferral. It
 * saves two thread handoffs per batch of appends. More than 64 KiB behind (a large batch) is
 * left to the dispatch thread, so that it dispatches while the caller goes on reading and
 * appending. Returns 0 or -errno (the dispatch thread then takes over). */
void store_dispatch_defer(struct store *s);
int store_dispatch_now(struct store *s);

/* ---- the file interface's topic view (view.c) ---- */

/* First queue offset of topic/queue_id whose record lies at or after commitlog offset phys (the
 * max offset when none; the min offset when all do). */
int64_t store_offset_by_phys(struct store *s, const char *topic, size_t topic_len, int queue_id,
                             int64_t phys);
/* Commitlog offset up to which every record is dispatched (readers see everything before). */
int64_t store_dispatched_offset(struct store *s);
/* The store-time watermark W (ms): every record stored before W is dispatched (readable), and
 * every record appended after the call gets a store time >= W, even if the clock steps back;
 * it never decreases. Store times never decrease in commitlog order. */
int64_t store_watermark(struct store *s);
/* The store time (ms) of the newest retained message of topic/queue_id: the queue's last
 * dispatched entry, or with below != INT64_MAX its last entry whose record lies before commitlog
 * offset below (a topic view's snapshot). -1 when there is none. */
int64_t store_newest_time(struct store *s, const char *topic, size_t topic_len, int queue_id,
                          int64_t below);
/* The topic view (queues 0..nq-1) at store time ts: *file_offset = rendered bytes of the
 * retained messages stored before ts; *next_ts = store time of the first message stored at or
 * after ts (-1 when none is dispatched); *prev_ts (when not NULL) = store time of the newest
 * retained message stored before ts (-1 when none). Returns 0 or a negative errno. */
int store_topic_at_time(struct store *s, const char *topic, size_t topic_len, int nq, int64_t ts,
                        int64_t *file_offset, int64_t *next_ts, int64_t *prev_ts);
/* The distinct store times of the topic's messages stored in [from, below), ascending, at most
 * max: times[i], and offs[i] = the topic view's byte offset of the first message stored at
 * times[i]; *end = the offset after the last listed message (off(from) when none). Every
 * message stored before `below` must be dispatched (below <= a watermark). Returns the count or
 * a negative errno. */
int store_topic_times(struct store *s, const char *topic, size_t topic_len, int nq, int64_t from,
                      int64_t below, int max, int64_t *times, int64_t *offs, int64_t *end);
/* The retention horizon: 0 while the commitlog has lost nothing, else the store time of its
 * first retained record (every deleted record was stored at or before it; it never decreases).
 * -EAGAIN when retention keeps racing the lookup. */
int64_t store_retained_since(struct store *s);

#endif

/* mqfs_int.h — internals of the mqfs daemon shared between its files: the daemon state, the
 * inode table, open-file handles, the NameServer-derived caches (topics, cluster, groups), the
 * send glue, and the per-view read functions that the broker read paths fill in.
 *
 * Threads: libfuse's multi-threaded loop runs the ops on up to 10 worker threads. `fs->lock`
 * guards the inode table, the caches and the handle list; a handle's own lock serializes the
 * requests on one open file (writes, flushes, reads). Network calls never run under fs->lock.
 */
#ifndef MQFS_INT_H
#define MQFS_INT_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "client/mqclient.h"
#include "common/mq_bytes.h"
#include "common/mq_map.h"
#include "fs/mqfs.h"

#define MQFS_BLKSIZE (1u << 20) /* st_blksize: cat and cp read 1 MiB at a time */
#define MQFS_MAX_MSG (4u << 20) /* maxMessageSize */
/* Queues of a topic made by create(): what RocketMQ's auto-creation gives a new topic
 * (the producer's defaultTopicQueueNums, 4), so `>` and a first send agree. */
#define MQFS_DEFAULT_QUEUES 4
/* after a failed NameServer call, use the cache this long */
#define MQFS_NS_RETRY_US (2 * 1000000)
#define MQFS_LIST_AGE_US (1 * 1000000) /* a topic list younger than this is not refetched */
#define MQFS_MISS_AGE_US (100 * 1000)  /* ... unless a lookup misses and it is older than this */

/* One node the kernel knows (or an open file still uses). Owned by the table; freed when the
 * kernel forgot it (nlookup == 0) and no handle refers to it (nopen == 0). */
struct mqfs_inode {
    uint64_t ino;
    uint64_t nlookup;
    unsigned nopen;
    int pinned; /* the root and the top-level entries live forever */
    /* st_size: the read paths keep the exact rendered length of log views here (and notify the
     * kernel when it grows); an open blob writer keeps its buffer's length, so O_APPEND offsets
     * stay right. Under fs->lock. */
    uint64_t size;
    /* st_mtime of a message view: the store time (ms) of the newest message it shows, as the
     * last stat learned it; 0: none (empty, or never asked). Under fs->lock. */
    int64_t mtime_ms;
    struct mqfs_node node;
    char *path; /* canonical path, owned */
};

/* A cached NameServer answer: a list of names (one malloc'd block, see mqc_admin_topic_list). */
/* When a cache (the topic list, the brokers' group lists) was last filled or failed to be, and
 * whether the refresher should fetch it again. Under fs->lock. */
struct mqfs_fetch_state {
    int64_t at_us, failed_us; /* last success / failure (monotonic; 0: never) */
    int err;                  /* error of the last failure */
    int wanted;               /* the refresher fetches it when its retry time comes */
};

struct mqfs_names {
    char **v;
    size_t n;
};

struct mqfs {
    struct fuse_session *se;
    struct mqc_producer *producer;
    struct mqc_admin *admin;
    const char *namesrv; /* borrowed from argv */
    int topic_queues;    /* read and write queues of a topic created by create() (-o queues) */
    int64_t started_ms;  /* mount time: times of directories, lookups and empty views */

    pthread_mutex_t lock;
    struct mq_map by_path; /* canonical path -> struct mqfs_inode * */
    struct mq_map by_ino;  /* decimal ino -> struct mqfs_inode * */
    uint64_t next_ino;

    /* NameServer caches, under lock. fetch_lock serializes the fetches themselves. */
    pthread_mutex_t fetch_lock;
    struct mqfs_names topics;      /* every topic (system ones included) */
    struct mq_map topic_set;       /* the same names, for lookups (values unused) */
    struct mqfs_broker_list {      /* brokers of the cluster, for `cluster` and hiding names */
        struct mqc_broker_info *v; /* malloc'd */
        size_t n;
    } brokers;
    struct mqfs_fetch_state topics_st; /* of the topic list and brokers */
    pthread_t refresher;               /* refetches in the background while failing */
    pthread_cond_t refresh_cond;
    int refresher_started, refresh_stop;
    struct mq_map groups; /* consumer groups made by mkdir (values unused) */
    /* The brokers' subscription groups (meta_groups.c), under lock like the topic cache;
     * groups_fetch_lock serializes the fetches. */
    pthread_mutex_t groups_fetch_lock;
    struct mq_map group_set; /* union over the masters, system groups included */
    struct mqfs_fetch_state groups_st;
    struct mq_map created; /* topics made by create(): name -> creation time (ms, as a pointer) */

    /* Topic routes for the read paths (view_log.c): topic -> cached route. */
    pthread_mutex_t route_lock;
    struct mq_map routes;
    /* Log-view reads waiting for a broker that refuses (view_log.c), answered by their own
     * thread so that no FUSE worker waits; under wait_lock. */
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
    struct mqfs_down_wait *waits;
    pthread_t waiter;
    int waiter_started, waiter_stop;

    struct mqfs_handle *handles; /* every open file, for the final flush at shutdown */
    struct mqfs_dir *dirs;       /* every open directory listing (ops_dir.c), freed at shutdown */

    /* The mount watcher (mountwatch.c): ends the loop once the mount left this namespace. */
    pthread_t watcher, main_thread;
    int watch_fd, watch_pipe[2], watch_started;
    int watch_gone; /* set by the watcher when the mount left; read after joining it */
    long watch_id;  /* the mount's id in /proc/self/mountinfo */
    char watch_path[PATH_MAX];
};

/* An open file. Owned by the kernel's file (fi->fh) from open/create to release. */
struct mqfs_handle {
    struct mqfs *fs;
    struct mqfs_inode *inode; /* counted in inode->nopen */
    struct mqfs_node node;    /* copy: valid without fs->lock */
    int writable;
    pthread_mutex_t lock;
    uint64_t writer;         /* lock owner (files_struct) of the last write; 0: unknown */
    struct mqfs_lines lines; /* topic and key files: the carried partial line */
    struct mq_buf blob;      /* blob files: the content, for as long as the file is open */
    int blob_dirty;          /* blob files: changed since it was last sent */
    int blob_err;            /* blob files: sticky error reported at every flush (EFBIG) */
    int rewrite;             /* topic and key files: ftruncate'd, so every write gets EPERM */
    struct mq_buf text;      /* generated files (cluster): the content, made at open */
    void *view;              /* read paths: per-open state of the view (NULL until then) */
    int read_flags;          /* the open flags the last READ carried (O_NONBLOCK) */
    struct mqfs_handle *prev, *next;
};

/* ---- inode table (inode.c) ---- */

int mqfs__table_init(struct mqfs *fs);
void mqfs__table_destroy(struct mqfs *fs);
/* The inode for ino, or NULL. Call with fs->lock held; valid while it is held (or while a
 * handle or a kernel reference keeps the inode). */
struct mqfs_inode *mqfs__inode_get(struct mqfs *fs, uint64_t ino);
/* Finds or adds the inode of node n and counts one kernel lookup (nlookup++) when `lookup`.
 * Call with fs->lock held. Returns NULL on out-of-memory. */
struct mqfs_inode *mqfs__inode_ref(struct mqfs *fs, const struct mqfs_node *n, int lookup);
/* Drops nlookup kernel references; frees the inode when nothing refers to it. Lock held. */
void mqfs__inode_forget(struct mqfs *fs, struct mqfs_inode *in, uint64_t nlookup);
/* Drops one open reference (nopen--), freeing as mqfs__inode_forget. Lock held. */
void mqfs__inode_close(struct mqfs *fs, struct mqfs_inode *in);
/* Calls fn for every inode (lock held throughout; fn must not add or free inodes): how the read
 * paths find the inodes of a topic to invalidate (fuse_lowlevel_notify_inval_inode) when
 * messages arrive — the notify itself must be sent after dropping the lock. */
void mqfs__inode_foreach(struct mqfs *fs, void (*fn)(struct mqfs_inode *in, void *arg), void *arg);

/* ---- the kinds: attributes and timeouts (attr.c) ---- */

struct mqfs_kind_info {
    mode_t mode;          /* S_IFDIR|0755, S_IFREG|0644, ... */
    double attr_timeout;  /* seconds the kernel may cache the attributes */
    double entry_timeout; /* seconds the kernel may cache the name */
};
const struct mqfs_kind_info *mqfs__kind_info(const struct mqfs_node *n);
/* Fills st for the inode (sizes and times: see attr.c). Lock held. */
void mqfs__fill_attr(struct mqfs *fs, const struct mqfs_inode *in, struct stat *st);
/* Whether node n shows messages whose newest store time is its st_mtime (topic, queue and
 * group files, with tags or .json or not); then *src gets the log view of those messages
 * (topic/<T> or queue/<T>/<q>), whose stat answer carries that time. Pure. */
int mqfs__times_source(const struct mqfs_node *n, struct mqfs_node *src);
/* Sets the size of inode ino and, when it changed, tells the kernel to drop its cached
 * attributes (fuse_lowlevel_notify_inval_inode(se, ino, -1, 0)), so `tail -f` sees growth at its
 * next fstat. For the read paths, on message arrival. Any thread, fs->lock NOT held (it takes
 * it; the notify is sent after dropping it). Returns 0, -ENOENT (inode unknown: the kernel
 * forgot it, nothing to tell) or the notify's error. */
int mqfs__set_size(struct mqfs *fs, uint64_t ino, uint64_t size);

/* ---- NameServer caches (meta.c) ---- */

/* Refreshes the topic list and cluster info when older than max_age_us: synchronously while
 * the NameServer answers (bounded by its timeout; fs->lock not held meanwhile), in the
 * background once a fetch failed (the caller gets the cache at once). Returns 0 when the cache
 * is fresh, else the error of the last fetch (the cache stays). */
int mqfs__meta_refresh(struct mqfs *fs, int64_t max_age_us);
/* Starts / stops the background refresher (start after daemonizing, with the shutdown signals
 * blocked; stop before the admin handle is freed). */
int mqfs__meta_start(struct mqfs *fs);
/* A cache's fetch, shared by the topic list (meta.c) and the group lists (meta_groups.c).
 * mqfs__fetch_due: whether a caller must fetch now (1), or gets 0 (fresh) or the last error
 * (failing: the refresher is asked instead, so nothing waits on a failing server twice); takes
 * fs->lock. mqfs__fetch_settled: with fs->lock held, after waiting for the fetch lock, what
 * another thread's fetch since `asked` settled (0 or its error), or 1 (none: fetch). */
int mqfs__fetch_due(struct mqfs *fs, struct mqfs_fetch_state *st, int64_t max_age_us);
int mqfs__fetch_settled(const struct mqfs_fetch_state *st, int64_t asked);
void mqfs__meta_stop(struct mqfs *fs);
/* Whether topic is known: in the cached list or made by create(). Lock held. */
int mqfs__topic_known(struct mqfs *fs, const char *topic);
/* Whether a topic is a system topic or a cluster/broker name (hidden from listings). Lock held. */
int mqfs__topic_hidden(struct mqfs *fs, const char *topic);
/* The topics listings show (meta.c): the cached list minus system topics, plus those created
 * here; a fresh copy (free with mqfs__names_free). Takes fs->lock. 0 or -ENOMEM. */
int mqfs__visible_topics(struct mqfs *fs, struct mqfs_names *out);
void mqfs__names_free(struct mqfs_names *names);
/* Creates topic on every master with fs->topic_queues read and write queues (perm 6). Returns 0
 * when at least one master created it, else the first error (-EIO: no master known). Network
 * calls, never under fs->lock. */
int mqfs__topic_create(struct mqfs *fs, const char *topic);
/* The master addresses of the cluster's brokers from the cached cluster info (refreshed as
 * for listings; *rc gets that refresh's result). Returns how many were written to out. */
size_t mqfs__masters(struct mqfs *fs, char (*out)[64], size_t max, int *rc);

/* ---- consumer groups (meta_groups.c); network calls, never under fs->lock ---- */

/* Fetches the masters' group lists into fs->group_set now / when older than max_age_us (in
 * the background once a fetch failed, as mqfs__meta_refresh). 0 or the last fetch's error. */
int mqfs__groups_fetch(struct mqfs *fs);
int mqfs__groups_refresh(struct mqfs *fs, int64_t max_age_us);
/* Whether a group is one of RocketMQ's system groups (hidden from listings). Pure. */
int mqfs__group_hidden(const char *group);
/* Whether the group was made here or is known to a broker (refetching once on a miss): 1/0. */
int mqfs__group_exists(struct mqfs *fs, const char *group);
/* Creates the group on every master: 0 or the first error. */
int mqfs__group_create(struct mqfs *fs, const char *group);
/* rmdir: deletes the group and its offsets on every master and forgets it here. -EPERM (a
 * system group), -ENOENT (not known), -EBUSY (a file of it is open on this mount), -EIO (a
 * broker refused). */
int mqfs__group_delete(struct mqfs *fs, const char *group);
/* Whether a node's topic (and group) exist, fetching the topic list if needed: 0 or -ENOENT. */
int mqfs__node_exists(struct mqfs *fs, const struct mqfs_node *n);
/* Appends the `cluster` file's text to out: the brokers with their liveness (each master asked
 * now), or a line saying the NameServer is unreachable (then the last answer, if any), then
 * the listed topics' queue counts per broker. Network calls, never under fs->lock. Returns 0 or
 * -ENOMEM. */
int mqfs__render_cluster(struct mqfs *fs, struct mq_buf *out);

/* ---- sending (send.c) ---- */

/* The errno a shell user sees for a libmqclient error (docs/FS.md "Errors"). */
int mqfs__send_errno(int rc);
/* For the log views' broker calls: -ECONNREFUSED when the broker is down (its port refuses or
 * the connection broke: a process restarting), else mqfs__send_errno(rc). mqfs__read_log waits
 * for such a broker and answers EIO only when it stays down. */
int mqfs__view_errno(int rc);
/* Handles one write() on a topic or key file (offset ignored: every write appends) / a blob
 * file (written at its offset). Returns bytes consumed or -errno. Handle lock held. */
long mqfs__write_lines(struct mqfs_handle *h, const void *p, size_t n);
long mqfs__write_blob(struct mqfs_handle *h, const void *p, size_t n, off_t off);
/* ftruncate() of an open blob file. 0 or -EFBIG. Handle lock held. */
int mqfs__truncate_blob(struct mqfs_handle *h, off_t len);
/* Sends what an open file still holds: the partial line (-EMSGSIZE and nothing when it is an
 * oversized line being refused), the whole blob if it changed since it was last sent (-EFBIG
 * once it grew too big). 0 or -errno. */
int mqfs__flush_handle(struct mqfs_handle *h);

/* ---- read paths, one function per view (views.c) ----
 *
 * Each is called from the READ op with the handle's lock NOT held, and either replies to req
 * itself (now or later, from any thread: fuse_reply_buf / fuse_reply_err) and returns 0, or
 * returns a negative errno for the caller to reply. `h->view` is theirs to keep per-open state
 * (freed by mqfs__view_release). A reply made from memory the handle owns must be made with
 * h->lock held: the reader may close the file the moment the reply lands, and RELEASE takes
 * h->lock before freeing the handle. A reply deferred past the READ op must also keep the
 * handle alive until it is sent (RELEASE comes only after every READ was answered). */
int mqfs__read_log(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
int mqfs__read_group(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
int mqfs__read_key(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
int mqfs__read_blob(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
int mqfs__read_msg(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
int mqfs__read_text(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
/* Log views (view_log.c): whether a node is one (topic/queue files without tags or .json), its
 * exact size and the store time (ms) of its newest message, -1 when it is empty or the brokers
 * do not say (network calls: never under fs->lock; 0 and -1 for a topic with no route yet), and
 * the route cache's teardown. */
int mqfs__log_view(const struct mqfs_node *n);
int mqfs__log_size(struct mqfs *fs, const struct mqfs_node *n, uint64_t *size, int64_t *newest);
/* The newest store time of log view n for the views that show it without a size (group files,
 * tag filters, .json): for a topic, what a stat of it learned less than a second ago, else
 * asked as mqfs__log_size; after a failed ask the last time known (and the error) for
 * MQFS_NS_RETRY_US without asking again, so a broker that does not answer is not waited for
 * at every stat. 0 or a negative errno (*newest then unchanged). */
int mqfs__topic_newest(struct mqfs *fs, const struct mqfs_node *n, int64_t *newest);
void mqfs__routes_destroy(struct mqfs *fs);
/* Answers the reads still waiting for a broker with EIO and stops their thread. Shutdown,
 * before the session goes. */
void mqfs__down_waits_stop(struct mqfs *fs);
void mqfs__route_forget(struct mqfs *fs, const char *topic);
/* -ENOENT when queue file n's broker is in its topic's route with fewer read queues than its
 * id, else 0 (a broker the route lacks is left to the read path: EIO). */
int mqfs__queue_exists(struct mqfs *fs, const struct mqfs_node *n);
/* A topic on several brokers (view_merge.c): the brokers' topic views merged by store time.
 * refs: the route's readable brokers (any order). The read keeps its cursor in h->view (freed
 * by mqfs__merge_release). Same contracts as mqfs__read_log / mqfs__log_size. */
struct mqfs_broker_ref {
    char name[128];
    char addr[64];
};
int mqfs__merge_read(fuse_req_t req, struct mqfs_handle *h, const struct mqfs_broker_ref *refs,
                     int nrefs, size_t size, off_t off);
int mqfs__merge_size(struct mqfs *fs, const char *topic, const struct mqfs_broker_ref *refs,
                     int nrefs, uint64_t *size, int64_t *newest);
void mqfs__merge_release(struct mqfs_handle *h);
/* Group views (view_group.c): one consumer per open file. */
int mqfs__group_open(struct mqfs_handle *h);
void mqfs__group_release(struct mqfs_handle *h);
/* poll(): *revents gets POLLIN when a read would not wait; ph (may be NULL) is kept and
 * notified when that changes. Takes ph. Returns 0 or -errno. */
int mqfs__poll_group(struct mqfs_handle *h, struct fuse_pollhandle *ph, unsigned *revents);
/* Lookup files (view_lookup.c): the content of a key/, blob/ or msg/ file, built by network
 * calls (never under fs->lock). Returns 0, -ENOENT (no such message) or -errno. */
int mqfs__lookup_build(struct mqfs *fs, const struct mqfs_node *n, struct mq_buf *out);
/* Extended attributes of a node as NUL-terminated name, value pairs (xattr.c); network calls,
 * never under fs->lock. Returns 0 (out empty: none) or -errno. */
int mqfs__xattrs(struct mqfs *fs, const struct mqfs_node *n, struct mq_buf *out);
/* rm topic/<T>: deletes the topic on every broker of its route and on the NameServers. */
int mqfs__delete_topic(struct mqfs *fs, const char *topic);
/* A message as its .json line (render_json.c). */
int mqfs__render_json(const struct mqc_msg *m, struct mq_buf *out);
/* Appends a message as node n's files show it: its .json line for .json files, else its body
 * + "\n" (render_json.c; group views and the streamed log views). */
int mqfs__render_msg(const struct mqfs_node *n, const struct mqc_msg *m, struct mq_buf *out);
/* Tag-filtered and .json log views (view_stream.c): read like a /proc file, from a per-open
 * cursor (h->view) that mqfs__stream_release frees. Takes h->lock itself. */
int mqfs__read_stream(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
void mqfs__stream_release(struct mqfs_handle *h);
/* The broker addresses of a log view's parts, in broker-name order (view_log.c): the count (0:
 * a topic with no route yet), or -EIO for a queue whose broker is not in the route. */
int mqfs__log_addrs(struct mqfs *fs, const struct mqfs_node *n, char (*addrs)[64], int max);
/* poll() of any open file: group files by readiness, everything else always readable. */
int mqfs__view_poll(struct mqfs_handle *h, struct fuse_pollhandle *ph, unsigned *revents);
/* The view of a readable node kind, or NULL when the kind is not readable as a file. */
typedef int (*mqfs_read_fn)(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off);
mqfs_read_fn mqfs__view_read_fn(enum mqfs_kind k);
/* Sets up / tears down a handle's view state at open / release (no-ops for now). */
int mqfs__view_open(struct mqfs_handle *h);
void mqfs__view_release(struct mqfs_handle *h);

/* ---- the low-level ops (ops_dir.c, ops_file.c) ---- */

void mqfs__ops_dir(struct fuse_lowlevel_ops *ops);
void mqfs__ops_file(struct fuse_lowlevel_ops *ops);
/* GETATTR (also the answer to SETATTR). */
void mqfs__op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Replies an entry for child node n (already checked to exist): adds the inode. */
void mqfs__reply_entry(fuse_req_t req, struct mqfs *fs, const struct mqfs_node *n);
/* Flushes and frees every handle still open (shutdown, after the loop ended: the kernel sends
 * no RELEASE for files still open when the connection goes). */
void mqfs__handles_shutdown(struct mqfs *fs);
/* Frees the directory listings still open (shutdown). */
void mqfs__dirs_shutdown(struct mqfs *fs);

/* daemon.c: blocks SIGTERM/SIGINT/SIGHUP in the calling thread (old mask in *old), for
 * starting threads that must leave them to the FUSE threads. */
void mqfs__block_shutdown_signals(sigset_t *old);

/* mountwatch.c: watches the mount at mountpoint (absolute) in this mount namespace; once it is
 * gone, ends the FUSE loop (SIGTERM to the calling thread, which must run the loop). */
int mqfs__mountwatch_start(struct mqfs *fs, const char *mountpoint);
void mqfs__mountwatch_stop(struct mqfs *fs);

#endif

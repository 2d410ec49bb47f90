/* view_group.c — group files: group/<Group>/<Topic>[:<Tags>][.now][.json][.bulk] consume as a
 * member of a RocketMQ consumer group. Each open file is one consumer (its own client id in the
 * group): concurrent readers share the topic's queues by RocketMQ's average allocation, and offsets
 * live on the broker. Every open file's consumer shares the mount's client instance, so a queue
 * moves between readers of this mount only once its previous reader let go of it, and starts
 * where that one stopped (client/lease.c): no message reaches two of them.
 *
 * Exactness: one read() returns at most one message (body + "\n", or its JSON line); a message
 * larger than the read is handed out over several reads and counts as consumed only once its
 * last byte was delivered. So `head -n 3` consumes exactly 3 messages and the next reader gets
 * the 4th.
 *
 * Bulk (`.bulk`): one read() returns as many whole messages as fit in its buffer, and every one
 * of them counts as consumed. A message is acked as it is added to the read's batch (the client
 * holds one taken message per queue, so the next one of the same queue can only be taken after
 * the ack); if the reply then fails (the reader is gone), the batch stays in the view and the
 * next read of the same open file gets it first. A message that does not fit stays taken, not
 * acked, for the next read; one larger than the buffer goes out as in exact mode. Bytes a
 * reader gives back with lseek (bash's `read` reads ahead, then seeks back) are served again
 * when it reads at that offset; other offsets are ignored, as for exact files.
 *
 * Waiting: when nothing is ready a read is answered later from the consumer's thread (no FUSE
 * worker parks), is interruptible (EINTR), gets EAGAIN with O_NONBLOCK, and poll() reports
 * readiness. `.now` files return EOF instead of waiting once every owned queue is caught up. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "fs/mqfs_int.h"

#define NOW_WAIT_STEP_MS 20
#define NOW_WAIT_MAX_MS  10000

struct waiter {
    struct waiter *next;
    fuse_req_t req;
    size_t size;
    off_t off;
    int armed; /* its interrupt function is registered: it may be answered */
};

/* The request whose interrupt function this thread is registering (see on_interrupt). */
static _Thread_local fuse_req_t registering;

struct group_view {
    struct mqfs_handle *h;
    struct mqc_consumer *c;
    pthread_mutex_t lock;
    struct mqc_msg *cur; /* taken, not yet fully delivered */
    struct mq_buf rest;  /* what is left of cur's rendering */
    size_t rest_off;
    struct mq_buf batch; /* .bulk: whole messages, acked; [0, batch_off) were delivered */
    size_t batch_off;
    uint64_t pos;           /* .bulk: the file offset after the last byte delivered */
    struct waiter *waiters; /* deferred reads, oldest first */
    struct fuse_pollhandle *ph;
};

/* Makes sure a message is in hand (the rest of the current one, or a newly taken one).
 * Returns 1 when there is something to deliver. View lock held. */
static int prepare(struct group_view *v)
{
    if (v->cur)
        return 1;
    struct mqc_msg *m;
    if (mqc_consumer_take(v->c, 0, &m) != 0)
        return 0;
    v->rest.len = 0;
    if (mqfs__render_msg(&v->h->node, m, &v->rest) != 0) {
        mqc_consumer_nack(v->c, m);
        return 0;
    }
    v->cur = m;
    v->rest_off = 0;
    return 1;
}

/* .bulk: the index in the batch a read at file offset off starts at. A reader that gave
 * bytes back with lseek (bash's `read` builtin does, after reading ahead) reads them again:
 * offsets in [pos - batch_off, pos) replay the batch; any other offset continues at pos. */
static size_t bulk_index(const struct group_view *v, off_t off)
{
    uint64_t base = v->pos - v->batch_off;
    if (off >= 0 && (uint64_t)off >= base && (uint64_t)off < v->pos)
        return (size_t)((uint64_t)off - base);
    return v->batch_off;
}

/* Whether a read at off would get bytes now: bytes to replay or left over in a bulk batch, or a
 * message in hand (taking one if ready). View lock held. */
static int has_data(struct group_view *v, off_t off)
{
    if ((v->h->node.flags & MQFS_F_BULK) && bulk_index(v, off) < v->batch.len)
        return 1;
    return prepare(v);
}

/* Replies to req with the next bytes of the message in hand; returns how many went out. View
 * lock held. */
static size_t deliver_one(struct group_view *v, fuse_req_t req, size_t size)
{
    size_t left = v->rest.len - v->rest_off, n = size < left ? size : left;
    if (fuse_reply_buf(req, (const char *)v->rest.data + v->rest_off, n) != 0)
        return 0; /* the reader is gone (interrupted): nothing was delivered */
    v->rest_off += n;
    if (v->rest_off == v->rest.len) { /* the last byte went out: consumed */
        mqc_consumer_ack(v->c, v->cur);
        v->cur = NULL;
    }
    return n;
}

/* .bulk: replies to req with as many whole messages as fit in size, each acked as it joins the
 * batch; a message larger than size (or one already partly delivered) goes out as in exact
 * mode. View lock held; has_data(v, off) was true. */
static void deliver_bulk(struct group_view *v, fuse_req_t req, size_t size, off_t off)
{
    size_t i = bulk_index(v, off);
    if (i == v->batch.len) { /* everything handed out: a new batch starts at pos */
        v->batch.len = v->batch_off = i = 0;
        if (v->rest_off == 0 && v->rest.len <= size) {
            while (v->cur && v->batch.len + v->rest.len <= size) {
                if (mq_buf_append(&v->batch, v->rest.data, v->rest.len) != 0)
                    break; /* out of memory: send what the batch holds */
                mqc_consumer_ack(v->c, v->cur);
                v->cur = NULL;
                (void)prepare(v); /* the next message, if one is ready now */
            }
        }
        if (v->batch.len == 0) { /* too large for the buffer: this message as in exact mode */
            v->pos += deliver_one(v, req, size);
            return;
        }
    }
    size_t left = v->batch.len - i, n = size < left ? size : left;
    if (fuse_reply_buf(req, (const char *)v->batch.data + i, n) != 0)
        return; /* the reader is gone: the next read of this file gets the batch */
    if (i + n > v->batch_off) {
        v->pos += i + n - v->batch_off;
        v->batch_off = i + n;
    }
}

/* Replies to req with what the file's mode hands out per read. View lock held; has_data(). */
static void deliver(struct group_view *v, fuse_req_t req, size_t size, off_t off)
{
    if (v->h->node.flags & MQFS_F_BULK)
        deliver_bulk(v, req, size, off);
    else
        (void)deliver_one(v, req, size);
}

/* The link to the first armed waiter, or NULL. View lock held. */
static struct waiter **first_armed(struct group_view *v)
{
    for (struct waiter **pw = &v->waiters; *pw; pw = &(*pw)->next)
        if ((*pw)->armed)
            return pw;
    return NULL;
}

/* The consumer's thread: a message is ready. Answer waiting reads (a reply belongs to whoever
 * takes the waiter off the list under the view lock), then poll.
 *
 * Lock order: libfuse calls on_interrupt holding the request's lock, and on_interrupt takes
 * the view lock; so nothing here calls fuse_req_interrupt_func (which takes the request's lock)
 * while holding the view lock. */
static void on_ready(void *arg)
{
    struct group_view *v = arg;
    pthread_mutex_lock(&v->lock);
    struct waiter **pw;
    while ((pw = first_armed(v)) && has_data(v, (*pw)->off)) {
        struct waiter *w = *pw;
        *pw = w->next;
        deliver(v, w->req, w->size, w->off);
        free(w);
    }
    struct fuse_pollhandle *ph = v->ph;
    v->ph = NULL;
    pthread_mutex_unlock(&v->lock);
    if (ph) {
        fuse_lowlevel_notify_poll(ph);
        fuse_pollhandle_destroy(ph);
    }
}

/* Interrupt (Ctrl-C, a signal): answers EINTR if the read is still waiting. Called by libfuse
 * with the request's lock held — also from inside fuse_req_interrupt_func when the interrupt
 * came first, where replying would free the request under libfuse's feet: then it only takes
 * the waiter off the list and mqfs__read_group answers after registering. */
static void on_interrupt(fuse_req_t req, void *arg)
{
    struct group_view *v = arg;
    struct waiter *found = NULL;
    pthread_mutex_lock(&v->lock);
    for (struct waiter **pw = &v->waiters; *pw; pw = &(*pw)->next) {
        if ((*pw)->req == req) {
            found = *pw;
            *pw = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&v->lock);
    if (!found)
        return;
    if (registering == req) {
        found->next = NULL;
        found->armed = -1; /* cancelled: mqfs__read_group answers */
        return;
    }
    free(found);
    fuse_reply_err(req, EINTR);
}

int mqfs__group_open(struct mqfs_handle *h)
{
    struct group_view *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->h = h;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&v->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    mq_buf_init(&v->rest);
    mq_buf_init(&v->batch);
    struct mqc_config cfg = {.namesrv = h->fs->namesrv, .group = h->node.group};
    int now = (h->node.flags & MQFS_F_NOW) != 0, bulk = (h->node.flags & MQFS_F_BULK) != 0;
    struct mqc_consumer_opts opts = {
        .from = MQC_FROM_FIRST, /* a new group starts at the earliest retained message */
        .rebalance_ms = 1000,   /* readers joining or leaving move queues within a second */
        .heartbeat_ms = 10000,
        .persist_ms = 1000,
        .suspend_ms = now ? 1 : 15000,
        .pull_batch = 64,
        .queue_buffer = bulk ? 1024 : 256, /* a bulk read can take a whole buffer's worth */
        .shared = h->fs->admin, /* one set of connections and threads for every open file */
    };
    int rc = mqc_consumer_new(&cfg, &opts, &v->c);
    if (rc == 0)
        rc = mqc_consumer_subscribe(v->c, h->node.topic, h->node.ntags ? h->node.tags : "*");
    if (rc == 0) {
        mqc_consumer_on_ready(v->c, on_ready, v);
        /* Its thread must not take SIGTERM: the handler would end a loop nobody wakes. */
        sigset_t old;
        mqfs__block_shutdown_signals(&old);
        rc = mqc_consumer_start(v->c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc) {
        mq_info("group %s on %s: %s", h->node.group, h->node.topic, mq_strerror(rc));
        mqc_consumer_free(v->c);
        mq_buf_destroy(&v->rest);
        mq_buf_destroy(&v->batch);
        pthread_mutex_destroy(&v->lock);
        free(v);
        return mqfs__send_errno(rc);
    }
    h->view = v;
    return 0;
}

void mqfs__group_release(struct mqfs_handle *h)
{
    struct group_view *v = h->view;
    if (!v)
        return;
    pthread_mutex_lock(&v->lock);
    while (v->waiters) { /* the kernel sends RELEASE after its READs were answered; be safe */
        struct waiter *w = v->waiters;
        v->waiters = w->next;
        fuse_reply_err(w->req, EINTR);
        free(w);
    }
    if (v->ph)
        fuse_pollhandle_destroy(v->ph);
    v->ph = NULL;
    pthread_mutex_unlock(&v->lock);
    /* A partly delivered message was never acked: the next reader gets it whole. Freeing the
     * consumer commits the acked offsets and leaves the group; its callbacks (on_ready) all
     * finish before it returns, so v stays valid until then. A .bulk batch still held here was
     * acked when it was handed to a reply that failed: it counts as consumed (docs/FS.md). */
    if (v->batch.len > v->batch_off)
        mq_warn("group %s on %s: %zu bytes of a bulk read never reached the reader", h->node.group,
                h->node.topic, v->batch.len - v->batch_off);
    mqc_consumer_free(v->c);
    mq_buf_destroy(&v->rest);
    mq_buf_destroy(&v->batch);
    pthread_mutex_destroy(&v->lock);
    free(v);
    h->view = NULL;
}

int mqfs__read_group(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    struct group_view *v = h->view;
    if (!v)
        return -EBADF;
    if (size == 0) {
        fuse_reply_buf(req, NULL, 0);
        return 0;
    }
    if (h->node.flags & MQFS_F_NOW) {
        /* Take what is there now: wait only while owned queues may still hold messages. */
        for (int waited = 0; waited < NOW_WAIT_MAX_MS; waited += NOW_WAIT_STEP_MS) {
            pthread_mutex_lock(&v->lock);
            int ready = has_data(v, off);
            if (ready)
                deliver(v, req, size, off);
            pthread_mutex_unlock(&v->lock);
            if (ready)
                return 0;
            if (mqc_consumer_caught_up(v->c) || fuse_req_interrupted(req))
                break;
            struct mqc_msg *m;
            if (mqc_consumer_take(v->c, NOW_WAIT_STEP_MS, &m) == 0)
                mqc_consumer_nack(v->c, m); /* ready now: delivered on the next turn */
        }
        if (fuse_req_interrupted(req))
            return -EINTR;
        fuse_reply_buf(req, NULL, 0); /* EOF */
        return 0;
    }
    pthread_mutex_lock(&v->lock);
    if (has_data(v, off)) {
        deliver(v, req, size, off);
        pthread_mutex_unlock(&v->lock);
        return 0;
    }
    if (h->read_flags & O_NONBLOCK) {
        pthread_mutex_unlock(&v->lock);
        return -EAGAIN;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        pthread_mutex_unlock(&v->lock);
        return -ENOMEM;
    }
    w->req = req;
    w->size = size;
    w->off = off;
    struct waiter **tail = &v->waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    pthread_mutex_unlock(&v->lock);
    /* Not under the view lock (lock order, see on_ready). Until armed, nobody answers req, so
     * it stays valid here; an interrupt that already arrived runs on_interrupt right now. */
    registering = req;
    fuse_req_interrupt_func(req, on_interrupt, v);
    registering = NULL;
    pthread_mutex_lock(&v->lock);
    if (w->armed < 0) { /* interrupted before it could wait: on_interrupt left the answer */
        pthread_mutex_unlock(&v->lock);
        free(w);
        return -EINTR;
    }
    w->armed = 1;
    pthread_mutex_unlock(&v->lock);
    on_ready(v); /* a message may have arrived before it was armed */
    return 0;
}

int mqfs__poll_group(struct mqfs_handle *h, struct fuse_pollhandle *ph, unsigned *revents)
{
    struct group_view *v = h->view;
    if (!v)
        return -EBADF;
    pthread_mutex_lock(&v->lock);
    int ready = v->cur != NULL || v->batch.len > v->batch_off || mqc_consumer_ready(v->c);
    if (!ready && ph) {
        if (v->ph)
            fuse_pollhandle_destroy(v->ph);
        v->ph = ph;
        ph = NULL;
    }
    pthread_mutex_unlock(&v->lock);
    if (ph)
        fuse_pollhandle_destroy(ph);
    *revents = ready ? POLLIN : 0;
    return 0;
}

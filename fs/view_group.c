/* view_group.c — group files: group/<Group>/<Topic>[:<Tags>][.now][.json] consume as a member of
 * a RocketMQ consumer group. Each open file is one consumer (its own client id in the group):
 * concurrent readers share the topic's queues by RocketMQ's average allocation, and offsets
 * live on the broker.
 *
 * Exactness: one read() returns at most one message (body + "\n", or its JSON line); a message
 * larger than the read is handed out over several reads and counts as consumed only once its
 * last byte was delivered. So `head -n 3` consumes exactly 3 messages and the next reader gets
 * the 4th.
 *
 * Waiting: when nothing is ready a read is answered later from the consumer's thread (no FUSE
 * worker parks), is interruptible (EINTR), gets EAGAIN with O_NONBLOCK, and poll() reports
 * readiness. `.now` files return EOF instead of waiting once every owned queue is caught up. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
};

struct group_view {
    struct mqfs_handle *h;
    struct mqc_consumer *c;
    pthread_mutex_t lock;
    struct mqc_msg *cur; /* taken, not yet fully delivered */
    struct mq_buf rest;  /* what is left of cur's rendering */
    size_t rest_off;
    struct waiter *waiters; /* deferred reads, oldest first */
    struct fuse_pollhandle *ph;
};

/* Renders m into out: its body + "\n", or its JSON line for .json files. */
static int render(const struct mqfs_handle *h, const struct mqc_msg *m, struct mq_buf *out)
{
    out->len = 0;
    if (h->node.flags & MQFS_F_JSON)
        return mqfs__render_json(m, out);
    int rc = mq_buf_append(out, m->body, m->body_len);
    return rc ? rc : mq_buf_append(out, "\n", 1);
}

/* Makes sure a message is in hand (the rest of the current one, or a newly taken one).
 * Returns 1 when there is something to deliver. View lock held. */
static int prepare(struct group_view *v)
{
    if (v->cur)
        return 1;
    struct mqc_msg *m;
    if (mqc_consumer_take(v->c, 0, &m) != 0)
        return 0;
    if (render(v->h, m, &v->rest) != 0) {
        mqc_consumer_nack(v->c, m);
        return 0;
    }
    v->cur = m;
    v->rest_off = 0;
    return 1;
}

/* Replies to req with the next bytes of the message in hand. View lock held. */
static void deliver(struct group_view *v, fuse_req_t req, size_t size)
{
    size_t left = v->rest.len - v->rest_off, n = size < left ? size : left;
    if (fuse_reply_buf(req, (const char *)v->rest.data + v->rest_off, n) != 0)
        return; /* the reader is gone (interrupted): nothing was delivered */
    v->rest_off += n;
    if (v->rest_off == v->rest.len) { /* the last byte went out: consumed */
        mqc_consumer_ack(v->c, v->cur);
        v->cur = NULL;
    }
}

/* The consumer's thread: a message is ready. Answer waiting reads (each reply belongs to
 * whoever takes the waiter off the list, under the lock), then poll. */
static void on_ready(void *arg)
{
    struct group_view *v = arg;
    pthread_mutex_lock(&v->lock);
    while (v->waiters && prepare(v)) {
        struct waiter *w = v->waiters;
        v->waiters = w->next;
        fuse_req_interrupt_func(w->req, NULL, NULL); /* no EINTR after this reply */
        deliver(v, w->req, w->size);
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

/* Interrupt (Ctrl-C, a signal): answers EINTR if the read is still waiting. libfuse may call it
 * from inside fuse_req_interrupt_func, with the (recursive) view lock held. */
static void on_interrupt(fuse_req_t req, void *arg)
{
    struct group_view *v = arg;
    pthread_mutex_lock(&v->lock);
    for (struct waiter **pw = &v->waiters; *pw; pw = &(*pw)->next) {
        if ((*pw)->req == req) {
            struct waiter *w = *pw;
            *pw = w->next;
            free(w);
            fuse_reply_err(req, EINTR);
            break;
        }
    }
    pthread_mutex_unlock(&v->lock);
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
    struct mqc_config cfg = {.namesrv = h->fs->namesrv, .group = h->node.group};
    int now = (h->node.flags & MQFS_F_NOW) != 0;
    struct mqc_consumer_opts opts = {
        .from = MQC_FROM_FIRST, /* a new group starts at the earliest retained message */
        .rebalance_ms = 1000,   /* readers joining or leaving move queues within a second */
        .heartbeat_ms = 10000,
        .persist_ms = 1000,
        .suspend_ms = now ? 1 : 15000,
        .pull_batch = 64,
        .queue_buffer = 256,
        .shared = h->fs->admin, /* one set of connections and threads for every open file */
    };
    int rc = mqc_consumer_new(&cfg, &opts, &v->c);
    if (rc == 0)
        rc = mqc_consumer_subscribe(v->c, h->node.topic, h->node.ntags ? h->node.tags : "*");
    if (rc == 0) {
        mqc_consumer_on_ready(v->c, on_ready, v);
        rc = mqc_consumer_start(v->c);
    }
    if (rc) {
        mq_info("group %s on %s: %s", h->node.group, h->node.topic, mq_strerror(rc));
        mqc_consumer_free(v->c);
        mq_buf_destroy(&v->rest);
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
        fuse_req_interrupt_func(w->req, NULL, NULL);
        fuse_reply_err(w->req, EINTR);
        free(w);
    }
    if (v->ph)
        fuse_pollhandle_destroy(v->ph);
    v->ph = NULL;
    pthread_mutex_unlock(&v->lock);
    /* A partly delivered message was never acked: the next reader gets it whole. Freeing the
     * consumer commits the acked offsets and leaves the group; its callbacks (on_ready) all
     * finish before it returns, so v stays valid until then. */
    mqc_consumer_free(v->c);
    mq_buf_destroy(&v->rest);
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
            int ready = prepare(v);
            if (ready)
                deliver(v, req, size);
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
    if (prepare(v)) {
        deliver(v, req, size);
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
    struct waiter **tail = &v->waiters;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    /* Under the lock, so no reply can free req first; an interrupt that already arrived runs
     * on_interrupt right here (the lock is recursive). */
    fuse_req_interrupt_func(req, on_interrupt, v);
    pthread_mutex_unlock(&v->lock);
    if (mqc_consumer_ready(v->c)) /* a message arrived before we were listed */
        on_ready(v);
    return 0;
}

int mqfs__poll_group(struct mqfs_handle *h, struct fuse_pollhandle *ph, unsigned *revents)
{
    struct group_view *v = h->view;
    if (!v)
        return -EBADF;
    pthread_mutex_lock(&v->lock);
    int ready = v->cur != NULL || mqc_consumer_ready(v->c);
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

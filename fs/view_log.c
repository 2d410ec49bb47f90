/* view_log.c — the log views: topic/<Topic> (every queue of the topic in commitlog order) and
 * queue/<Topic>/<broker>-<id> (one queue). Reading consumes nothing: bytes come from the
 * broker's rendered view (MQFS_READ, docs/FORMATS.md Part 3), one round trip per read.
 *
 * Offsets: file offset 0 is the first retained byte (the view's `base`); when retention deletes
 * old messages the file loses its head and the rest moves down (tail -f says "file truncated").
 * A topic on several brokers is their views merged by store time (view_merge.c).
 *
 * Routes (which brokers serve a topic) are cached per topic for MQFS_ROUTE_AGE_US and kept
 * when the NameServers are unreachable, so reads go on with the last known routes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "fs/mqfs_int.h"

#define MQFS_ROUTE_AGE_US  (5 * 1000000)
#define MQFS_NEWEST_AGE_US (1000000) /* group and filtered views reuse a topic's time this long */
#define MAX_SEGS           32
#define MQFS_DOWN_WAIT_US  (6 * 1000000) /* as long as a broker that does not answer costs */
#define MQFS_DOWN_POLL_US  (200 * 1000)

struct route_entry {
    struct mqc_topic_route r;
    int64_t at_us;
    /* The topic view's newest store time as the last stat of it learned (mqfs__log_size), for
     * the views that show its time without its size (mqfs__topic_newest). */
    int64_t newest, newest_at_us, newest_failed_us;
    int newest_err;
};

/* One broker's part of a view. */
struct seg {
    struct mqfs_broker_ref ref;
    int queue_id; /* -1: the topic view */
    struct mqc_view_info info;
};

/* The topic's route, from the cache when fresh (or when the NameServers fail; force: ask them
 * anyway). Copies the readable brokers' addresses into segs. Returns the count or a negative
 * errno. */
static int route_segs(struct mqfs *fs, const char *topic, const char *broker, int queue_id,
                      struct seg *segs, int max, int force)
{
    pthread_mutex_lock(&fs->route_lock);
    struct route_entry *e = mq_map_get(&fs->routes, topic);
    int64_t now = mq_mono_us();
    if (!e || force || now - e->at_us > MQFS_ROUTE_AGE_US) {
        struct mqc_topic_route r;
        int rc = mqc_admin_topic_route(fs->admin, topic, &r);
        if (rc == 0) {
            if (!e && !(e = calloc(1, sizeof(*e)))) {
                mqc_topic_route_destroy(&r);
                pthread_mutex_unlock(&fs->route_lock);
                return -ENOMEM;
            }
            if (e->at_us)
                mqc_topic_route_destroy(&e->r);
            else if (mq_map_put(&fs->routes, topic, e, NULL)) {
                free(e);
                mqc_topic_route_destroy(&r);
                pthread_mutex_unlock(&fs->route_lock);
                return -ENOMEM;
            }
            e->r = r;
            e->at_us = now;
        } else if (!e) {
            pthread_mutex_unlock(&fs->route_lock);
            return rc == -ENOENT ? -ENOENT : -EIO;
        } /* else: keep the stale route */
    }
    int n = 0;
    for (size_t i = 0; i < e->r.nbrokers && n < max; i++) {
        const struct mqc_route_broker *rb = &e->r.brokers[i];
        if (!rb->addr[0] || (broker && strcmp(rb->name, broker) != 0))
            continue;
        int readable = 0;
        for (size_t k = 0; k < e->r.nqueues; k++)
            if (strcmp(e->r.queues[k].broker, rb->name) == 0 && (e->r.queues[k].perm & 4) &&
                e->r.queues[k].read_queues > (queue_id < 0 ? 0 : queue_id))
                readable = 1;
        if (!readable)
            continue;
        memset(&segs[n], 0, sizeof(segs[n]));
        snprintf(segs[n].ref.addr, sizeof(segs[n].ref.addr), "%s", rb->addr);
        snprintf(segs[n].ref.name, sizeof(segs[n].ref.name), "%s", rb->name);
        segs[n].queue_id = queue_id;
        n++;
    }
    pthread_mutex_unlock(&fs->route_lock);
    return n;
}

void mqfs__route_forget(struct mqfs *fs, const char *topic)
{
    pthread_mutex_lock(&fs->route_lock);
    struct route_entry *e = mq_map_del(&fs->routes, topic);
    pthread_mutex_unlock(&fs->route_lock);
    if (e) {
        mqc_topic_route_destroy(&e->r);
        free(e);
    }
}

void mqfs__routes_destroy(struct mqfs *fs)
{
    size_t it = 0;
    void *v;
    while (mq_map_next(&fs->routes, &it, NULL, &v)) {
        mqc_topic_route_destroy(&((struct route_entry *)v)->r);
        free(v);
    }
    mq_map_destroy(&fs->routes);
}

/* A queue whose broker the cached route lacks asks the NameServers again at once: the broker
 * may have come back (re-registered) since. */
static int node_segs(struct mqfs *fs, const struct mqfs_node *n, struct seg *segs, int max)
{
    if (n->kind != MQFS_QUEUE)
        return route_segs(fs, n->topic, NULL, -1, segs, max, 0);
    int rc = route_segs(fs, n->topic, n->broker, n->queue_id, segs, max, 0);
    if (rc == 0 || rc == -ENOENT)
        rc = route_segs(fs, n->topic, n->broker, n->queue_id, segs, max, 1);
    return rc;
}

int mqfs__queue_exists(struct mqfs *fs, const struct mqfs_node *n)
{
    struct seg seg;
    int rc = route_segs(fs, n->topic, n->broker, n->queue_id, &seg, 1, 0);
    if (rc != 0)
        return 0; /* there, or the NameServers cannot tell now: the read will say */
    /* The broker is known and its read queues end below the id: no such queue. A broker the
     * route lacks (down, dropped by the NameServers) is not decided here: its queue files
     * fail with EIO, the messages still exist (FS.md). */
    int known = 0;
    pthread_mutex_lock(&fs->route_lock);
    struct route_entry *e = mq_map_get(&fs->routes, n->topic);
    for (size_t i = 0; e && i < e->r.nqueues; i++)
        known |= strcmp(e->r.queues[i].broker, n->broker) == 0;
    pthread_mutex_unlock(&fs->route_lock);
    return known ? -ENOENT : 0;
}

/* Fetches every segment's bounds. */
static int seg_infos(struct mqfs *fs, const struct mqfs_node *n, struct seg *segs, int nsegs)
{
    for (int i = 0; i < nsegs; i++) {
        size_t got;
        int rc = mqc_view_read(fs->admin, segs[i].ref.addr, n->topic, segs[i].queue_id, 0, NULL, 0,
                               &got, &segs[i].info);
        if (rc == MQ_EOFFSET_MOVED)
            rc = 0; /* offset 0 is below a moved base: the info is still filled */
        if (rc)
            return mqfs__view_errno(rc);
    }
    return 0;
}

int mqfs__log_addrs(struct mqfs *fs, const struct mqfs_node *n, char (*addrs)[64], int max)
{
    struct seg segs[MAX_SEGS];
    int nsegs = node_segs(fs, n, segs, max < MAX_SEGS ? max : MAX_SEGS);
    if (n->kind == MQFS_QUEUE && (nsegs == -ENOENT || nsegs == 0)) {
        mq_warn("read %s/%s-%d: broker not in the route", n->topic, n->broker, n->queue_id);
        return -EIO; /* its messages still exist: an empty read would claim there are none */
    }
    if (nsegs == -ENOENT)
        return 0;
    for (int i = 0; i < nsegs; i++)
        memcpy(addrs[i], segs[i].ref.addr, sizeof(segs[i].ref.addr));
    return nsegs;
}

/* The brokers of a multi-broker topic view, for view_merge.c. */
static int refs_of(const struct seg *segs, int nsegs, struct mqfs_broker_ref *refs)
{
    for (int i = 0; i < nsegs; i++)
        refs[i] = segs[i].ref;
    return nsegs;
}

int mqfs__log_view(const struct mqfs_node *n)
{
    return (n->kind == MQFS_TOPIC || n->kind == MQFS_QUEUE) && !(n->flags & MQFS_F_JSON) &&
           n->ntags == 0;
}

/* Records what a stat of topic/<T> asked at asked_us learned of its newest message, or its
 * failure; an answer to an older question than the one recorded is dropped. */
static int note_newest(struct mqfs *fs, const struct mqfs_node *n, int64_t asked_us, int rc,
                       int64_t newest)
{
    if (n->kind != MQFS_TOPIC)
        return rc;
    pthread_mutex_lock(&fs->route_lock);
    struct route_entry *e = mq_map_get(&fs->routes, n->topic);
    if (e && rc == 0 && asked_us >= e->newest_at_us) {
        e->newest = newest;
        e->newest_at_us = asked_us;
    } else if (e && rc) {
        e->newest_failed_us = mq_mono_us();
        e->newest_err = rc;
    }
    pthread_mutex_unlock(&fs->route_lock);
    return rc;
}

static int log_size(struct mqfs *fs, const struct mqfs_node *n, uint64_t *size, int64_t *newest);

int mqfs__log_size(struct mqfs *fs, const struct mqfs_node *n, uint64_t *size, int64_t *newest)
{
    int64_t asked = mq_mono_us();
    int rc = log_size(fs, n, size, newest);
    return note_newest(fs, n, asked, rc, *newest);
}

int mqfs__topic_newest(struct mqfs *fs, const struct mqfs_node *n, int64_t *newest)
{
    uint64_t size;
    if (n->kind == MQFS_TOPIC) {
        pthread_mutex_lock(&fs->route_lock);
        struct route_entry *e = mq_map_get(&fs->routes, n->topic);
        int64_t now = mq_mono_us();
        int rc = 1;
        if (e && e->newest_at_us && now - e->newest_at_us < MQFS_NEWEST_AGE_US)
            rc = 0; /* fresh: a stat of the topic or of another of its views just asked */
        else if (e && e->newest_failed_us > e->newest_at_us &&
                 now - e->newest_failed_us < MQFS_NS_RETRY_US)
            rc = e->newest_err; /* failing: the last time known stands, nothing waits again */
        if (rc <= 0)
            *newest = e->newest;
        pthread_mutex_unlock(&fs->route_lock);
        if (rc <= 0)
            return rc;
    }
    return mqfs__log_size(fs, n, &size, newest);
}

static int log_size(struct mqfs *fs, const struct mqfs_node *n, uint64_t *size, int64_t *newest)
{
    struct seg segs[MAX_SEGS];
    int nsegs = node_segs(fs, n, segs, MAX_SEGS);
    *newest = -1;
    if (nsegs == -ENOENT) { /* a topic with no route yet: empty */
        *size = 0;
        return 0;
    }
    if (nsegs < 0)
        return nsegs;
    struct mqfs_broker_ref refs[MAX_SEGS];
    if (n->kind == MQFS_TOPIC && nsegs > 1) {
        int rc = mqfs__merge_size(fs, n->topic, refs, refs_of(segs, nsegs, refs), size, newest);
        return rc == -ECONNREFUSED ? -EIO : rc;
    }
    int rc = seg_infos(fs, n, segs, nsegs);
    if (rc)
        return rc == -ECONNREFUSED ? -EIO : rc;
    uint64_t total = 0;
    for (int i = 0; i < nsegs; i++) {
        total += (uint64_t)(segs[i].info.size - segs[i].info.base);
        if (segs[i].info.size > segs[i].info.base && segs[i].info.last_ts > *newest)
            *newest = segs[i].info.last_ts; /* the same answer as the size: no extra request */
    }
    *size = total;
    return 0;
}

int mqfs__view_errno(int rc)
{
    switch (rc) {
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -ECONNABORTED:
    case -EPIPE:
    case -ENOTCONN:
        return -ECONNREFUSED;
    default:
        return mqfs__send_errno(rc);
    }
}

/* One attempt of mqfs__read_log: replies and returns 0, or returns a negative errno
 * (-ECONNREFUSED: a broker of the view is down). */
static int read_log_once(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    struct mqfs *fs = h->fs;
    struct seg segs[MAX_SEGS];
    int nsegs = node_segs(fs, &h->node, segs, MAX_SEGS);
    if (h->node.kind == MQFS_QUEUE && (nsegs == -ENOENT || nsegs == 0)) {
        /* The queue's broker is not in the topic's route (the NameServers dropped it: down or
         * cut off). Its messages still exist; an empty read would claim there are none. */
        mq_warn("read %s/%s-%d: broker not in the route", h->node.topic, h->node.broker,
                h->node.queue_id);
        return -EIO;
    }
    if (nsegs == -ENOENT || nsegs == 0) {
        fuse_reply_buf(req, NULL, 0);
        return 0;
    }
    if (nsegs < 0)
        return nsegs;
    struct mqfs_broker_ref refs[MAX_SEGS];
    if (h->node.kind == MQFS_TOPIC && nsegs > 1)
        return mqfs__merge_read(req, h, refs, refs_of(segs, nsegs, refs), size, off);
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    size_t got = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((rc = seg_infos(fs, &h->node, segs, nsegs)) != 0)
            break;
        /* Find the segment holding off (relative to the first retained byte). */
        int64_t start = 0, rel = (int64_t)off;
        int i = 0;
        for (; i < nsegs; i++) {
            int64_t len = segs[i].info.size - segs[i].info.base;
            if (rel < start + len)
                break;
            start += len;
        }
        if (i == nsegs)
            break; /* at or past the end */
        int64_t abs = segs[i].info.base + (rel - start);
        struct mqc_view_info info;
        rc = mqc_view_read(fs->admin, segs[i].ref.addr, h->node.topic, segs[i].queue_id, abs, buf,
                           size, &got, &info);
        if (rc == MQ_EOFFSET_MOVED)
            continue; /* retention moved the base meanwhile: recompute */
        if (rc)
            rc = mqfs__view_errno(rc);
        break;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    fuse_reply_buf(req, buf, got);
    free(buf);
    return 0;
}

/* A read waiting for a broker that refuses connections (down, most often being restarted). */
struct mqfs_down_wait {
    fuse_req_t req;
    struct mqfs_handle *h; /* valid until the reply: the reading process holds the file */
    size_t size;
    off_t off;
    int64_t deadline_us, next_us;
    struct mqfs_down_wait *next;
};

/* Tries a waiting read again when its time came: 1 when it was answered. */
static int down_retry(struct mqfs_down_wait *w, int64_t now)
{
    if (fuse_req_interrupted(w->req)) {
        fuse_reply_err(w->req, EINTR);
        return 1;
    }
    int rc = read_log_once(w->req, w->h, w->size, w->off);
    if (rc == 0)
        return 1;
    if (rc == -ECONNREFUSED && now < w->deadline_us) {
        w->next_us = mq_mono_us() + MQFS_DOWN_POLL_US;
        return 0;
    }
    if (rc == -ECONNREFUSED) {
        const struct mqfs_node *n = &w->h->node;
        mq_warn("read %s%s%s: a broker of the view stayed down for %d s: EIO", n->topic,
                n->kind == MQFS_QUEUE ? "/" : "", n->kind == MQFS_QUEUE ? n->broker : "",
                MQFS_DOWN_WAIT_US / 1000000);
        rc = -EIO;
    }
    fuse_reply_err(w->req, -rc);
    return 1;
}

/* The thread of the waiting reads: each is tried every MQFS_DOWN_POLL_US; at stop the rest get
 * EIO. */
static void *down_main(void *arg)
{
    struct mqfs *fs = arg;
    pthread_setname_np(pthread_self(), "mqfs-downwait");
    pthread_mutex_lock(&fs->wait_lock);
    while (!fs->waiter_stop) {
        int64_t now = mq_mono_us(), first = INT64_MAX;
        for (struct mqfs_down_wait *w = fs->waits; w; w = w->next)
            first = w->next_us < first ? w->next_us : first;
        if (first > now) {
            if (first == INT64_MAX) {
                pthread_cond_wait(&fs->wait_cond, &fs->wait_lock);
            } else {
                struct timespec ts;
                mq_deadline(&ts, CLOCK_REALTIME, first - now);
                pthread_cond_timedwait(&fs->wait_cond, &fs->wait_lock, &ts);
            }
            continue;
        }
        struct mqfs_down_wait *due = NULL, **pp = &fs->waits;
        while (*pp) { /* take the due ones out; the others stay listed */
            struct mqfs_down_wait *w = *pp;
            if (w->next_us <= now) {
                *pp = w->next;
                w->next = due;
                due = w;
            } else {
                pp = &w->next;
            }
        }
        pthread_mutex_unlock(&fs->wait_lock);
        struct mqfs_down_wait *keep = NULL;
        while (due) {
            struct mqfs_down_wait *w = due;
            due = w->next;
            if (down_retry(w, now)) {
                free(w);
            } else {
                w->next = keep;
                keep = w;
            }
        }
        pthread_mutex_lock(&fs->wait_lock);
        while (keep) {
            struct mqfs_down_wait *w = keep;
            keep = w->next;
            w->next = fs->waits;
            fs->waits = w;
        }
    }
    struct mqfs_down_wait *rest = fs->waits;
    fs->waits = NULL;
    pthread_mutex_unlock(&fs->wait_lock);
    while (rest) {
        struct mqfs_down_wait *w = rest;
        rest = w->next;
        fuse_reply_err(w->req, EIO);
        free(w);
    }
    return NULL;
}

/* Hands the read to the waiting thread (started at the first): 0, or -errno when it cannot. */
static int down_park(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    struct mqfs *fs = h->fs;
    struct mqfs_down_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int64_t now = mq_mono_us();
    *w = (struct mqfs_down_wait){.req = req,
                                 .h = h,
                                 .size = size,
                                 .off = off,
                                 .deadline_us = now + MQFS_DOWN_WAIT_US,
                                 .next_us = now + MQFS_DOWN_POLL_US};
    int rc = 0;
    pthread_mutex_lock(&fs->wait_lock);
    if (fs->waiter_stop)
        rc = -EIO;
    else if (!fs->waiter_started) { /* from a FUSE worker: every signal blocked, inherited */
        if (pthread_create(&fs->waiter, NULL, down_main, fs) != 0)
            rc = -EAGAIN;
        else
            fs->waiter_started = 1;
    }
    if (rc == 0) {
        w->next = fs->waits;
        fs->waits = w;
        pthread_cond_signal(&fs->wait_cond);
    }
    pthread_mutex_unlock(&fs->wait_lock);
    if (rc)
        free(w);
    return rc;
}

void mqfs__down_waits_stop(struct mqfs *fs)
{
    pthread_mutex_lock(&fs->wait_lock);
    fs->waiter_stop = 1;
    pthread_cond_signal(&fs->wait_cond);
    int started = fs->waiter_started;
    pthread_mutex_unlock(&fs->wait_lock);
    if (started)
        pthread_join(fs->waiter, NULL);
}

int mqfs__read_log(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    if (!mqfs__log_view(&h->node))
        return mqfs__read_stream(req, h, size, off); /* tag-filtered and .json: view_stream.c */
    /* A broker that refuses connections is down, most often being restarted: the read waits
     * for it, as long as a broker that does not answer costs (the client timeout), then fails
     * with EIO. Failing at once would end `tail -f` (GNU tail exits on a read error) whenever
     * a broker restarts. Each attempt takes the route from the cache: a broker back within
     * its age serves the same bytes; one the NameServers dropped meanwhile (they do at once
     * when its connection closes) leaves the route when the cached one expires, and the view
     * is recomputed over the others (a route change, FS.md). The read waits on its own thread
     * (down_main), not on a FUSE worker: the workers are few (10), and readers waiting on them
     * held up every other operation of the mount. */
    int rc = read_log_once(req, h, size, off);
    if (rc != -ECONNREFUSED)
        return rc;
    return down_park(req, h, size, off) == 0 ? 0 : -EIO;
}

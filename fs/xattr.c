/* xattr.c — extended attributes (`getfattr -d`): what a file's queues hold, asked from the
 * brokers when read (never under fs->lock):
 *   topic/<T>            user.mq.brokers, user.mq.queues, user.mq.messages
 *   queue/<T>/<b>-<id>   user.mq.broker, user.mq.queueId, user.mq.minOffset,
 *                        user.mq.maxOffset, user.mq.messages
 *   group/<G>/<T>        user.mq.group, user.mq.consumed, user.mq.lag
 * (messages: retained, max − min offset per queue; lag: max − the group's committed offset,
 * from the min when the group has none). Other files have none. Also `rm topic/<T>`. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "fs/mqfs_int.h"

static int add(struct mq_buf *out, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add(struct mq_buf *out, const char *name, const char *fmt, ...)
{
    char val[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    int rc = mq_buf_append(out, name, strlen(name) + 1);
    return rc ? rc : mq_buf_append(out, val, strlen(val) + 1);
}

/* Sums over the topic's readable queues (one broker when `broker` is set, one queue when
 * queue_id >= 0): retained messages, and for a group its committed and remaining counts. */
struct sums {
    int64_t queues, messages, consumed, lag, min, max;
    char brokers[512];
};

static int sum_queues(struct mqfs *fs, const struct mqfs_node *n, const char *group, struct sums *s)
{
    memset(s, 0, sizeof(*s));
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(fs->admin, n->topic, &r);
    if (rc)
        return mqfs__send_errno(rc);
    for (size_t i = 0; i < r.nqueues && rc == 0; i++) {
        const struct mqc_route_queues *rq = &r.queues[i];
        if (!(rq->perm & 4) || (n->kind == MQFS_QUEUE && strcmp(rq->broker, n->broker) != 0))
            continue;
        const char *addr = NULL;
        for (size_t b = 0; b < r.nbrokers; b++)
            if (strcmp(r.brokers[b].name, rq->broker) == 0 && r.brokers[b].addr[0])
                addr = r.brokers[b].addr;
        if (!addr)
            continue;
        size_t bl = strlen(s->brokers);
        snprintf(s->brokers + bl, sizeof(s->brokers) - bl, "%s%s", bl ? "," : "", rq->broker);
        for (int q = 0; q < rq->read_queues && rc == 0; q++) {
            if (n->kind == MQFS_QUEUE && q != n->queue_id)
                continue;
            struct mqc_queue_stat st;
            if ((rc = mqc_admin_queue_stat(fs->admin, addr, n->topic, q, &st)) != 0)
                break;
            s->queues++;
            s->messages += st.max_offset - st.min_offset;
            s->min = st.min_offset;
            s->max = st.max_offset;
            if (group) {
                int64_t off = -1;
                if (mqc_admin_consumer_offset(fs->admin, addr, group, n->topic, q, &off) != 0)
                    off = st.min_offset;
                if (off < st.min_offset)
                    off = st.min_offset;
                s->consumed += off - st.min_offset;
                s->lag += st.max_offset > off ? st.max_offset - off : 0;
            }
        }
    }
    mqc_topic_route_destroy(&r);
    return rc ? mqfs__send_errno(rc) : 0;
}

int mqfs__xattrs(struct mqfs *fs, const struct mqfs_node *n, struct mq_buf *out)
{
    out->len = 0;
    struct sums s;
    int rc;
    switch (n->kind) {
    case MQFS_TOPIC:
        if ((rc = sum_queues(fs, n, NULL, &s)) != 0)
            return rc;
        rc = add(out, "user.mq.brokers", "%s", s.brokers);
        rc = rc ? rc : add(out, "user.mq.queues", "%" PRId64, s.queues);
        return rc ? rc : add(out, "user.mq.messages", "%" PRId64, s.messages);
    case MQFS_QUEUE:
        if ((rc = sum_queues(fs, n, NULL, &s)) != 0)
            return rc;
        rc = add(out, "user.mq.broker", "%s", n->broker);
        rc = rc ? rc : add(out, "user.mq.queueId", "%d", n->queue_id);
        rc = rc ? rc : add(out, "user.mq.minOffset", "%" PRId64, s.min);
        rc = rc ? rc : add(out, "user.mq.maxOffset", "%" PRId64, s.max);
        return rc ? rc : add(out, "user.mq.messages", "%" PRId64, s.messages);
    case MQFS_GROUP:
        if ((rc = sum_queues(fs, n, n->group, &s)) != 0)
            return rc;
        rc = add(out, "user.mq.group", "%s", n->group);
        rc = rc ? rc : add(out, "user.mq.consumed", "%" PRId64, s.consumed);
        return rc ? rc : add(out, "user.mq.lag", "%" PRId64, s.lag);
    default:
        return 0;
    }
}

int mqfs__delete_topic(struct mqfs *fs, const char *topic)
{
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(fs->admin, topic, &r);
    if (rc)
        return rc == -ENOENT ? -ENOENT : mqfs__send_errno(rc);
    for (size_t i = 0; i < r.nbrokers && rc == 0; i++)
        if (r.brokers[i].addr[0])
            rc = mqc_admin_delete_topic_broker(fs->admin, r.brokers[i].addr, topic);
    mqc_topic_route_destroy(&r);
    if (rc == 0)
        rc = mqc_admin_delete_topic_namesrv(fs->admin, topic);
    if (rc)
        return mqfs__send_errno(rc);
    mq_info("topic %s deleted from its brokers and the NameServers", topic);
    pthread_mutex_lock(&fs->lock);
    mq_map_del(&fs->created, topic);
    mq_map_del(&fs->topic_set, topic); /* written again, the name makes a new topic */
    fs->topics_st.at_us = 0;           /* the cached list is stale now */
    pthread_mutex_unlock(&fs->lock);
    mqfs__route_forget(fs, topic); /* the next read finds no topic */
    return 0;
}

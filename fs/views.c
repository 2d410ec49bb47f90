/* views.c — reading files: one function per view, chosen by node kind from one table.
 *
 * Log views live in view_log.c (the tag-filtered and .json ones in view_stream.c), group views
 * in view_group.c, the lookups (key/, blob/, msg/)
 * in view_lookup.c; generated text (`cluster`, and the lookups' snapshots) is served here from
 * what was built at open. See mqfs_int.h for the contract each read function follows (reply
 * now or later, or return -errno).
 */
#include <errno.h>
#include <poll.h>

#include "common/mq_log.h"
#include "fs/mqfs_int.h"

/* Generated files: the text rendered at open. */
int mqfs__read_text(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    pthread_mutex_lock(&h->lock); /* release waits: the reply reads h->text */
    size_t len = h->text.len, o = off < 0 ? len : (size_t)off;
    if (o > len)
        o = len;
    if (size > len - o)
        size = len - o;
    fuse_reply_buf(req, (const char *)h->text.data + o, size);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static const mqfs_read_fn read_fns[MQFS_KIND_COUNT] = {
    [MQFS_TOPIC] = mqfs__read_log,    [MQFS_QUEUE] = mqfs__read_log,
    [MQFS_GROUP] = mqfs__read_group,  [MQFS_KEY] = mqfs__read_key,
    [MQFS_BLOB] = mqfs__read_blob,    [MQFS_MSG] = mqfs__read_msg,
    [MQFS_CLUSTER] = mqfs__read_text,
};

mqfs_read_fn mqfs__view_read_fn(enum mqfs_kind k)
{
    return (unsigned)k < MQFS_KIND_COUNT ? read_fns[k] : NULL;
}

int mqfs__view_open(struct mqfs_handle *h)
{
    if (h->node.kind == MQFS_CLUSTER)
        return mqfs__render_cluster(h->fs, &h->text);
    if (h->node.kind == MQFS_GROUP)
        return mqfs__group_open(h);
    if (h->node.kind == MQFS_KEY || h->node.kind == MQFS_MSG ||
        (h->node.kind == MQFS_BLOB && !h->writable)) {
        int rc = mqfs__lookup_build(h->fs, &h->node, &h->text);
        return rc == -ENOENT && h->node.kind != MQFS_MSG ? 0 : rc; /* no match yet: empty */
    }
    return 0;
}

void mqfs__view_release(struct mqfs_handle *h)
{
    if (h->node.kind == MQFS_GROUP)
        mqfs__group_release(h);
    else if (h->node.kind == MQFS_TOPIC && mqfs__log_view(&h->node))
        mqfs__merge_release(h);
    else if (h->node.kind == MQFS_TOPIC || h->node.kind == MQFS_QUEUE)
        mqfs__stream_release(h);
    h->view = NULL;
}

int mqfs__view_poll(struct mqfs_handle *h, struct fuse_pollhandle *ph, unsigned *revents)
{
    if (h->node.kind == MQFS_GROUP && !(h->node.flags & MQFS_F_NOW))
        return mqfs__poll_group(h, ph, revents);
    if (ph)
        fuse_pollhandle_destroy(ph);
    *revents = POLLIN | POLLOUT;
    return 0;
}

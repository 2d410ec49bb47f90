/* send.c — writes become sends (docs/FS.md "Sending"): lines of topic and key files through
 * the line assembler as batches (SEND_BATCH_MESSAGE; a single line as SEND_MESSAGE_V2), blob
 * files as one byte-exact message of their whole content at each flush after a change;
 * libmqclient's errors mapped to what a shell prints.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_batch.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "fs/mqfs_int.h"

/* Properties the producer adds per message besides TAGS/KEYS: "UNIQ_KEY\1<32 hex>\2" and
 * "WAIT\1true\2"; the batch entry's fixed fields; and some slack. */
#define MSG_OVERHEAD (MQ_BATCH_ENTRY_FIXED + 42 + 10 + 16)

int mqfs__send_errno(int rc)
{
    switch (rc) {
    case 0:
    case -EINVAL:
    case -EMSGSIZE:
    case -EFBIG:
    case -ENOSPC:
    case -ENOMEM:
    case -EACCES:
        return rc;
    default: /* no route, no NameServer, no broker, timeouts: "no broker reachable" */
        return -EIO;
    }
}

static void fill_msg(struct mqc_message *m, const struct mqfs_handle *h, const void *body,
                     size_t len)
{
    memset(m, 0, sizeof(*m));
    m->topic = h->node.topic;
    m->tags = h->node.ntags ? h->node.tags : NULL;
    m->keys = h->node.key[0] ? h->node.key : NULL;
    m->body = body;
    m->body_len = len;
}

static int log_send_error(const struct mqfs_handle *h, size_t n, int rc)
{
    int e = mqfs__send_errno(rc);
    mq_warn("send of %zu message(s) to %s failed: %s (%s to the writer)", n, h->node.topic,
            mq_strerror(rc), mq_strerror(e));
    return e;
}

/* mqfs_send_fn for the line assembler: one request per batch, the lines' bytes encoded
 * straight from the write's buffer into the request. */
static int send_lines(void *arg, const struct mqc_body *lines, size_t n)
{
    struct mqfs_handle *h = arg;
    struct mqc_message m;
    fill_msg(&m, h, lines[0].p, lines[0].len);
    int rc = n == 1 ? mqc_send(h->fs->producer, &m, NULL)
                    : mqc_send_batch_bodies(h->fs->producer, &m, lines, n, NULL);
    return rc ? log_send_error(h, n, rc) : 0;
}

/* Called at open for writable topic and key files. */
static void lines_setup(struct mqfs_handle *h)
{
    if (h->lines.cfg.max_line)
        return;
    size_t extra = (h->node.ntags ? 6 + strlen(h->node.tags) : 0) +
                   (h->node.key[0] ? 6 + strlen(h->node.key) : 0);
    struct mqfs_lines_cfg cfg = {.max_line = MQFS_MAX_MSG,
                                 .batch_bytes = MQFS_MAX_MSG,
                                 .msg_overhead = MSG_OVERHEAD + extra};
    mqfs_lines_init(&h->lines, &cfg);
}

long mqfs__write_lines(struct mqfs_handle *h, const void *p, size_t n)
{
    lines_setup(h);
    long rc = mqfs_lines_write(&h->lines, p, n, send_lines, h);
    if (rc == -EINVAL)
        mq_info("write to %s: an empty line cannot be a message (EINVAL)", h->node.topic);
    return rc;
}

/* Grows (zero-filled) or shrinks the blob to len; EFBIG past maxMessageSize. */
static int blob_resize(struct mqfs_handle *h, size_t len)
{
    if (len > MQFS_MAX_MSG) {
        /* The whole file is lost, for every descriptor of this open file: later writes and
         * every close report EFBIG too, nothing more is sent. */
        h->blob_err = -EFBIG;
        mq_buf_destroy(&h->blob);
        mq_buf_init(&h->blob);
        return -EFBIG;
    }
    if (len > h->blob.len) {
        if (mq_buf_reserve(&h->blob, len - h->blob.len))
            return -ENOMEM;
        memset(h->blob.data + h->blob.len, 0, len - h->blob.len);
    }
    if (len != h->blob.len)
        h->blob_dirty = 1;
    h->blob.len = len;
    return 0;
}

/* Blob files are ordinary files for as long as they are open: writes land at their offsets
 * (cp of a sparse file seeks over holes, then ftruncate()s to the full size), so the message
 * is byte-exact. The content lives as long as the open file, across sends: processes sharing
 * it (`{ cat a; cat b; } > blob/T/k`) write at the shared offset into the same bytes. */
long mqfs__write_blob(struct mqfs_handle *h, const void *p, size_t n, off_t off)
{
    if (h->blob_err)
        return h->blob_err;
    if (off < 0 || (uint64_t)off > MQFS_MAX_MSG || n > MQFS_MAX_MSG - (size_t)off)
        return blob_resize(h, (size_t)MQFS_MAX_MSG + 1);
    size_t end = (size_t)off + n;
    if (end > h->blob.len) {
        int rc = blob_resize(h, end);
        if (rc)
            return rc;
    }
    if (n > 0) {
        memcpy(h->blob.data + off, p, n);
        h->blob_dirty = 1;
    }
    return (long)n;
}

int mqfs__truncate_blob(struct mqfs_handle *h, off_t len)
{
    if (h->blob_err)
        return h->blob_err;
    return blob_resize(h, len < 0                        ? 0
                          : (uint64_t)len > MQFS_MAX_MSG ? MQFS_MAX_MSG + 1
                                                         : (size_t)len);
}

int mqfs__flush_handle(struct mqfs_handle *h)
{
    switch (h->node.kind) {
    case MQFS_TOPIC:
    case MQFS_KEY:
        lines_setup(h);
        return mqfs_lines_flush(&h->lines, send_lines, h);
    case MQFS_BLOB: {
        /* The whole content, if it changed since it was last sent (an empty blob is no
         * message); it stays, so a later writer of the same open file goes on from it. */
        if (h->blob_err || !h->blob_dirty)
            return h->blob_err;
        if (h->blob.len > 0) {
            struct mqc_message m;
            fill_msg(&m, h, h->blob.data, h->blob.len);
            int rc = mqc_send(h->fs->producer, &m, NULL);
            if (rc)
                return log_send_error(h, 1, rc); /* still changed: the next flush retries */
        }
        h->blob_dirty = 0;
        return 0;
    }
    default:
        return 0;
    }
}

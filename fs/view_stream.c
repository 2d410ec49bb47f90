/* view_stream.c — the log views mqfs renders itself: topic/<Topic>:<Tags> (tag-filtered) and the
 * .json views topic/<Topic>[:<Tags>].json and queue/<Topic>/<broker>-<id>.json. Reading consumes
 * nothing. Their size cannot be known without a scan, so they behave like /proc files (docs/FS.md
 * "Tag-filtered and .json log views"): st_size 0, the content is produced sequentially and ends
 * where the messages that exist now end.
 *
 * Each open file keeps a cursor: the broker segment and the position in it (a commitlog offset
 * for the topic, a queue offset for a queue) where the next chunk starts, and the last chunk's
 * rendering with the file offset of its first byte. A read inside that chunk or at its end goes
 * on from there, a read at offset 0 starts again, a read before the chunk starts again and
 * skips to its offset, a read past the end skips forward: every offset gets the bytes a
 * sequential read from 0 would have got. Chunks come from MQFS_READ_RECORDS (docs/FORMATS.md
 * Part 3, up to CHUNK_MSGS records per round trip, broker-side tag hash filter, exact re-check
 * in libmqclient) and are rendered as the group views render (render_json.c). The topic file
 * shows each broker's part in commitlog order, brokers in name order, as the unfiltered view. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_log.h"
#include "fs/mqfs_int.h"

#define CHUNK_MSGS  256
#define CHUNK_BYTES (1 << 20)
#define MAX_SEGS    32

struct stream_view {
    int started;
    int nsegs, seg; /* the brokers (resolved at each restart); the one being read */
    char addrs[MAX_SEGS][64];
    int64_t pos;         /* position in addrs[seg] where the next chunk starts */
    int64_t chunk_off;   /* file offset of chunk's first byte */
    struct mq_buf chunk; /* the rendering of the last chunk */
};

/* Back to the start of the view: resolves the brokers again. */
static int restart(struct mqfs_handle *h, struct stream_view *v)
{
    v->started = 1;
    v->seg = 0;
    v->pos = 0;
    v->chunk_off = 0;
    v->chunk.len = 0;
    int n = mqfs__log_addrs(h->fs, &h->node, v->addrs, MAX_SEGS);
    v->nsegs = n < 0 ? 0 : n;
    if (n < 0)
        v->started = 0; /* the next read starts again, whatever its offset */
    return n < 0 ? n : 0;
}

/* Replaces the chunk by the next one (it may be empty when nothing matched yet). Returns 1 with
 * a chunk, 0 at the end of the view, or -errno (the chunk is then empty and the cursor where it
 * was: the next read asks again). At the end the cursor stays on the last broker's end, so a
 * later read returns what arrived meanwhile. */
static int next_chunk(struct mqfs_handle *h, struct stream_view *v)
{
    v->chunk_off += (int64_t)v->chunk.len;
    v->chunk.len = 0;
    if (v->seg >= v->nsegs)
        return 0;
    const struct mqfs_node *n = &h->node;
    struct mqc_pull_result r;
    int rc = mqc_view_records(h->fs->admin, v->addrs[v->seg], n->topic,
                              n->kind == MQFS_QUEUE ? n->queue_id : -1, v->pos,
                              n->ntags ? n->tags : "*", CHUNK_MSGS, CHUNK_BYTES, &r);
    if (rc)
        return mqfs__send_errno(rc);
    for (size_t i = 0; i < r.n && rc == 0; i++)
        rc = mqfs__render_msg(n, &r.msgs[i], &v->chunk);
    int at_end = r.next_offset >= r.max_offset;
    if (rc == 0 && r.n == 0 && r.next_offset <= v->pos && !at_end) {
        mq_warn("read %s: no progress at position %lld", n->topic, (long long)v->pos);
        rc = -EIO; /* never loop forever on a broker that does not move on */
    }
    int more = 1;
    if (rc == 0) {
        v->pos = r.next_offset;
        if (at_end && v->seg + 1 < v->nsegs) { /* this broker's part is read: the next one */
            v->seg++;
            v->pos = 0;
        } else if (at_end && r.n == 0) {
            more = 0; /* the last broker had nothing more */
        }
    } else {
        v->chunk.len = 0;
    }
    mqc_pull_result_destroy(&r);
    return rc ? rc : more;
}

/* Makes the chunk hold file offset off, or reaches the end. Returns 1, 0 (off is at or past the
 * end) or -errno. */
static int seek_to(struct mqfs_handle *h, struct stream_view *v, int64_t off)
{
    int rc = 0;
    if (!v->started || off == 0 || off < v->chunk_off)
        rc = restart(h, v);
    while (rc == 0 && off >= v->chunk_off + (int64_t)v->chunk.len) {
        int more = next_chunk(h, v);
        if (more <= 0)
            return more;
    }
    return rc ? rc : 1;
}

int mqfs__read_stream(fuse_req_t req, struct mqfs_handle *h, size_t size, off_t off)
{
    pthread_mutex_lock(&h->lock);
    struct stream_view *v = h->view;
    if (!v && (v = calloc(1, sizeof(*v))) != NULL) {
        mq_buf_init(&v->chunk);
        h->view = v;
    }
    int rc = v ? 0 : -ENOMEM;
    struct mq_buf out;
    mq_buf_init(&out);
    if (rc == 0 && size > 0 && off >= 0)
        rc = seek_to(h, v, (int64_t)off);
    /* Fill the reply across chunks: programs get full reads until the end. */
    while (rc > 0 && out.len < size) {
        size_t from = (size_t)((int64_t)off + (int64_t)out.len - v->chunk_off);
        if (from >= v->chunk.len) {
            rc = next_chunk(h, v);
            continue;
        }
        size_t take = v->chunk.len - from;
        if (take > size - out.len)
            take = size - out.len;
        rc = mq_buf_append(&out, v->chunk.data + from, take);
        rc = rc ? rc : 1;
    }
    if (rc < 0 && out.len > 0)
        rc = 0; /* the bytes so far are right; the next read meets the error */
    if (rc >= 0)
        fuse_reply_buf(req, (const char *)out.data, out.len);
    pthread_mutex_unlock(&h->lock);
    mq_buf_destroy(&out);
    return rc < 0 ? rc : 0;
}

void mqfs__stream_release(struct mqfs_handle *h)
{
    struct stream_view *v = h->view;
    if (!v)
        return;
    mq_buf_destroy(&v->chunk);
    free(v);
    h->view = NULL;
}

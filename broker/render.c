/* render.c — MQFS_READ (FORMATS.md Part 3): the bytes of a queue's rendered view, each message
 * as its uncompressed body + "\n", from a file offset, so mqfs serves queue files with one round
 * trip per read; with the view's bounds and its newest message's store time (mqfs's mtime).
 * What counts as a message's rendering must agree byte for byte with the store's
 * rendered-bytes index, so the rendering is the store's (store_render_body). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_msg.h"

#define READ_MAX_BYTES (8 << 20)
#define READ_BATCH     1024

/* Appends one record's rendering to out, from byte `within` of it and at most up to max_bytes
 * in all; `one` is scratch space. Returns 0, MQ_ECORRUPT or -ENOMEM. */
static int append_rendering(struct mq_buf *out, struct mq_buf *one, const struct store_slice *sl,
                            int64_t within, int64_t max_bytes)
{
    struct mq_msg m;
    if (mq_msg_decode(sl->data, sl->len, 0, 0, &m) <= 0)
        return MQ_ECORRUPT;
    if (!(m.sysflag & MQ_SYSFLAG_COMPRESSED)) { /* straight from the record: one copy */
        size_t rlen = (size_t)m.body_len + 1;
        size_t from = (size_t)within < rlen ? (size_t)within : rlen, take = rlen - from;
        if ((int64_t)(out->len + take) > max_bytes)
            take = (size_t)(max_bytes - (int64_t)out->len);
        int rc = mq_buf_reserve(out, take);
        if (rc)
            return rc;
        size_t body = from < m.body_len ? m.body_len - from : 0;
        if (body > take)
            body = take;
        memcpy(out->data + out->len, m.body + from, body);
        if (take > body)
            out->data[out->len + body] = '\n';
        out->len += take;
        return 0;
    }
    one->len = 0;
    int rc = store_render_body(&m, one);
    if (rc == 0)
        rc = mq_buf_append(one, "\n", 1);
    if (rc)
        return rc;
    size_t from = (size_t)within < one->len ? (size_t)within : one->len;
    size_t take = one->len - from;
    if ((int64_t)(out->len + take) > max_bytes)
        take = (size_t)(max_bytes - (int64_t)out->len);
    return mq_buf_append(out, one->data + from, take);
}

int brk__render_read(struct broker *b, const char *topic, int queue_id, int64_t off,
                     int64_t max_bytes, struct mq_buf *out, int64_t *base, int64_t *size,
                     int64_t *newest)
{
    size_t tl = strlen(topic);
    /* newest first: a message dispatched in between then shows in the size, not the time */
    *newest = store_newest_time(b->store, topic, tl, queue_id, INT64_MAX);
    int rc = store_rendered_size(b->store, topic, tl, queue_id, base, size);
    if (rc)
        return rc;
    if (off < *base)
        return MQ_EOFFSET_MOVED;
    if (off >= *size)
        return 0;
    if (max_bytes > READ_MAX_BYTES)
        max_bytes = READ_MAX_BYTES;
    int64_t qoff, within;
    if ((rc = store_render_find(b->store, topic, tl, queue_id, off, &qoff, &within)) != 0)
        return rc == -ENXIO ? 0 : rc;
    /* the whole answer's room at once: no growing by doubling (copies, fresh pages) */
    if ((rc = mq_buf_reserve(out, (size_t)(*size - off < max_bytes ? *size - off : max_bytes))))
        return rc;
    struct mq_buf one;
    mq_buf_init(&one);
    while ((int64_t)out->len < max_bytes && rc == 0) {
        struct store_get_result *got = NULL;
        rc = store_get_messages(b->store, topic, tl, queue_id, qoff, READ_BATCH,
                                max_bytes + (1 << 20), NULL, 0, &got);
        if (rc)
            break;
        if (got->status != STORE_FOUND || got->count == 0) {
            store_release(b->store, got);
            break;
        }
        for (size_t i = 0; i < got->count && (int64_t)out->len < max_bytes; i++) {
            if ((rc = append_rendering(out, &one, &got->msgs[i], within, max_bytes)) != 0)
                break;
            within = 0;
            qoff = got->msgs[i].queue_offset + 1;
        }
        store_release(b->store, got);
    }
    mq_buf_destroy(&one);
    return rc;
}

/* ---- the topic view: every queue of the topic merged in commitlog order ----
 * g(P) = rendered bytes of the topic's messages stored before commitlog offset P = the sum over
 * queues of the rendered start of the queue's first entry at or after P. Messages appended
 * later lie after every existing one, so the view only grows at its end. Only records below
 * the dispatched offset D are shown, so every read sees one consistent snapshot. */

struct topic_q {
    int qid;
    struct store_get_result *got;
    size_t i;
    int64_t next; /* queue offset of the next batch */
};

static int64_t topic_g(struct broker *b, const char *topic, size_t tl, int nq, int64_t phys)
{
    int64_t sum = 0;
    for (int q = 0; q < nq; q++) {
        int64_t qoff = store_offset_by_phys(b->store, topic, tl, q, phys), fo = 0, base = 0;
        int rc = store_render_offset(b->store, topic, tl, q, qoff, &fo);
        if (rc == MQ_EOFFSET_MOVED)
            rc = store_rendered_size(b->store, topic, tl, q, &fo, &base);
        if (rc == 0)
            sum += fo;
    }
    return sum;
}

int brk__render_topic_read(struct broker *b, const char *topic, int nq, int64_t off,
                           int64_t max_bytes, struct mq_buf *out, int64_t *base, int64_t *size,
                           int64_t *newest)
{
    size_t tl = strlen(topic);
    if (nq < 0 || nq > BRK_MAX_QUEUES) /* the topic table holds no more (meta.h) */
        return -EINVAL;
    int64_t lo = store_clog_min_offset(b->store), hi = store_dispatched_offset(b->store);
    *base = topic_g(b, topic, tl, nq, lo);
    *size = topic_g(b, topic, tl, nq, hi);
    *newest = -1; /* the newest message of the snapshot: each queue's last entry before hi */
    for (int q = 0; q < nq; q++) {
        int64_t t = store_newest_time(b->store, topic, tl, q, hi);
        *newest = t > *newest ? t : *newest;
    }
    if (off < *base)
        return MQ_EOFFSET_MOVED;
    if (off >= *size || max_bytes <= 0)
        return 0;
    if (max_bytes > READ_MAX_BYTES)
        max_bytes = READ_MAX_BYTES;
    int64_t end = hi;     /* the snapshot */
    while (hi - lo > 1) { /* the largest P with g(P) <= off: the record holding off starts at P */
        int64_t mid = lo + (hi - lo) / 2;
        if (topic_g(b, topic, tl, nq, mid) <= off)
            lo = mid;
        else
            hi = mid;
    }
    int64_t within = off - topic_g(b, topic, tl, nq, lo);
    if (mq_buf_reserve(out, (size_t)(*size - off < max_bytes ? *size - off : max_bytes)))
        return -ENOMEM;
    struct topic_q *qs = calloc((size_t)nq, sizeof(*qs));
    if (!qs)
        return -ENOMEM;
    for (int q = 0; q < nq; q++) {
        qs[q].qid = q;
        qs[q].next = store_offset_by_phys(b->store, topic, tl, q, lo);
    }
    struct mq_buf one;
    mq_buf_init(&one);
    int rc = 0;
    while ((int64_t)out->len < max_bytes && rc == 0) {
        /* Refill exhausted queues, then take the head with the smallest commitlog offset. */
        struct topic_q *best = NULL;
        for (int q = 0; q < nq && rc == 0; q++) {
            struct topic_q *t = &qs[q];
            if (t->got && t->i == t->got->count) {
                store_release(b->store, t->got);
                t->got = NULL;
            }
            if (!t->got && t->next >= 0) {
                rc = store_get_messages(b->store, topic, tl, q, t->next, 256, 1 << 20, NULL, 0,
                                        &t->got);
                if (rc == 0 && (t->got->status != STORE_FOUND || t->got->count == 0)) {
                    store_release(b->store, t->got);
                    t->got = NULL;
                    t->next = -1; /* nothing more in this queue within the snapshot */
                } else if (rc == 0) {
                    t->i = 0;
                    t->next = t->got->msgs[t->got->count - 1].queue_offset + 1;
                }
            }
            if (t->got && t->got->msgs[t->i].phys_offset < end &&
                (!best || t->got->msgs[t->i].phys_offset < best->got->msgs[best->i].phys_offset))
                best = t;
        }
        if (rc || !best)
            break;
        rc = append_rendering(out, &one, &best->got->msgs[best->i++], within, max_bytes);
        within = 0;
    }
    for (int q = 0; q < nq; q++)
        store_release(b->store, qs[q].got);
    free(qs);
    mq_buf_destroy(&one);
    return rc;
}

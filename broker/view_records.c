/* view_records.c — MQFS_READ_RECORDS (30005, docs/FORMATS.md Part 3): raw records of a queue, or
 * of a whole topic in commitlog order, from a position, filtered by a tag expression's hash
 * codes. mqfs streams its tag-filtered and .json log views with it: the client decodes, re-checks
 * the exact tags and renders, keeping only the next position per open file.
 *
 * Positions: queue offsets for a queue, commitlog offsets for the topic (queueId -1). The topic
 * part works on a window [pos, W) of the commitlog: each queue's matching entries in the window
 * (at most max_msgs per queue) are collected through the consume queues, merged by commitlog
 * offset and emitted up to the limits. `next` is the position of the first record not emitted,
 * so every record of the topic in [pos, next) that matches was answered, in commitlog order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_tags.h"

#define RECORDS_MAX_BYTES (8 << 20)
#define RECORDS_MAX_MSGS  4096
#define QUEUE_ROUNDS      64         /* get_messages calls per request over unmatched entries */
#define TOPIC_WINDOW      (64 << 20) /* commitlog bytes one topic request looks at */

/* Appends a slice's bytes unless the bytes limit forbids (the first record always goes). */
static int emit(struct mq_buf *out, const struct store_slice *sl, int64_t max_bytes, int *full)
{
    if (out->len > 0 && (int64_t)(out->len + sl->len) > max_bytes) {
        *full = 1;
        return 0;
    }
    return mq_buf_append(out, sl->data, sl->len);
}

/* One queue from queue offset pos. */
static int queue_read(struct broker *b, const char *topic, size_t tl, int qid, int64_t pos,
                      const struct mq_tags *tags, int max_msgs, int64_t max_bytes,
                      struct mq_buf *out, int64_t *next, int64_t *min, int64_t *max)
{
    *min = store_min_offset(b->store, topic, tl, qid);
    *max = store_max_offset(b->store, topic, tl, qid);
    if (pos < *min)
        pos = *min;
    int rc = 0, sent = 0;
    for (int round = 0; round < QUEUE_ROUNDS && pos < *max && sent < max_msgs; round++) {
        struct store_get_result *got = NULL;
        rc = store_get_messages(b->store, topic, tl, qid, pos, max_msgs - sent, max_bytes,
                                tags->all ? NULL : tags->codes, tags->all ? 0 : tags->n, &got);
        if (rc)
            break;
        int full = 0;
        for (size_t i = 0; i < got->count && rc == 0 && !full; i++) {
            rc = emit(out, &got->msgs[i], max_bytes, &full);
            if (rc == 0 && !full) {
                pos = got->msgs[i].queue_offset + 1;
                sent++;
            }
        }
        if (rc == 0 && !full && got->next_offset > pos)
            pos = got->next_offset; /* past the unmatched entries scanned too */
        int stuck = got->count == 0 && got->next_offset <= pos;
        store_release(b->store, got);
        if (stuck || full)
            break;
    }
    /* Entries dispatched meanwhile may have come too: the end is now at least past them. */
    int64_t now = store_max_offset(b->store, topic, tl, qid);
    if (now > *max)
        *max = now;
    *next = pos;
    return rc;
}

/* What one queue contributed to a topic window. */
struct wq {
    struct store_get_result **gots;
    size_t ngots;
};

static int by_phys(const void *a, const void *b)
{
    int64_t x = (*(const struct store_slice *const *)a)->phys_offset,
            y = (*(const struct store_slice *const *)b)->phys_offset;
    return x < y ? -1 : x > y;
}

/* Collects queue q's matching records with phys in [pos, *w) into its results; lowers *w to
 * just past the last one kept when the per-queue limits cut the queue short. */
static int window_queue(struct broker *b, const char *topic, size_t tl, int q, int64_t pos,
                        int64_t *w, const struct mq_tags *tags, int max_msgs, int64_t max_bytes,
                        struct wq *wq, size_t *count)
{
    int64_t qoff = store_offset_by_phys(b->store, topic, tl, q, pos);
    int64_t qend = store_offset_by_phys(b->store, topic, tl, q, *w);
    int kept = 0;
    int64_t bytes = 0, last = -1;
    while (qoff < qend && kept < max_msgs && bytes <= max_bytes) {
        struct store_get_result *got = NULL, **gots;
        int rc = store_get_messages(b->store, topic, tl, q, qoff, max_msgs - kept, max_bytes,
                                    tags->all ? NULL : tags->codes, tags->all ? 0 : tags->n, &got);
        if (rc)
            return rc;
        size_t n = 0;
        while (n < got->count && got->msgs[n].queue_offset < qend)
            bytes += got->msgs[n++].len;
        got->count = n; /* entries at or past the window's end are someone else's turn */
        int64_t nq = got->next_offset;
        if (n > 0) {
            last = got->msgs[n - 1].phys_offset;
            nq = got->msgs[n - 1].queue_offset + 1;
        }
        if (n == 0) {
            store_release(b->store, got);
        } else if (!(gots = realloc(wq->gots, (wq->ngots + 1) * sizeof(*gots)))) {
            store_release(b->store, got);
            return -ENOMEM;
        } else {
            wq->gots = gots;
            wq->gots[wq->ngots++] = got;
            *count += n;
            kept += (int)n;
        }
        if (nq <= qoff)
            break; /* nothing readable there (a missing file): the window ends here */
        qoff = nq;
    }
    if (qoff < qend) { /* cut short: later records of this queue are not known here */
        int64_t cut = last >= 0 ? last + 1 : pos;
        if (cut < *w)
            *w = cut;
    }
    return 0;
}

static int topic_read(struct broker *b, const char *topic, size_t tl, int nq, int64_t pos,
                      const struct mq_tags *tags, int max_msgs, int64_t max_bytes,
                      struct mq_buf *out, int64_t *next, int64_t *min, int64_t *max)
{
    *min = store_clog_min_offset(b->store);
    *max = nq > 0 ? store_dispatched_offset(b->store) : 0; /* no queues here: empty */
    if (pos < *min)
        pos = *min;
    *next = pos;
    if (pos >= *max)
        return 0;
    int64_t w = *max - pos > TOPIC_WINDOW ? pos + TOPIC_WINDOW : *max;
    struct wq *wqs = calloc((size_t)nq, sizeof(*wqs));
    if (!wqs)
        return -ENOMEM;
    size_t count = 0;
    int rc = 0;
    for (int q = 0; q < nq && rc == 0; q++)
        rc = window_queue(b, topic, tl, q, pos, &w, tags, max_msgs, max_bytes, &wqs[q], &count);
    const struct store_slice **all = NULL;
    if (rc == 0 && count > 0 && !(all = malloc(count * sizeof(*all))))
        rc = -ENOMEM;
    if (rc == 0) {
        size_t k = 0;
        for (int q = 0; q < nq; q++)
            for (size_t g = 0; g < wqs[q].ngots; g++)
                for (size_t i = 0; i < wqs[q].gots[g]->count; i++)
                    all[k++] = &wqs[q].gots[g]->msgs[i];
        if (count > 0)
            qsort(all, count, sizeof(*all), by_phys);
        *next = w;
        int full = 0;
        for (size_t i = 0; i < count && rc == 0; i++) {
            if (all[i]->phys_offset >= w)
                break;
            if ((int)i == max_msgs || (rc = emit(out, all[i], max_bytes, &full)) != 0 || full) {
                *next = all[i]->phys_offset;
                break;
            }
        }
    }
    free(all);
    for (int q = 0; q < nq; q++) {
        for (size_t g = 0; g < wqs[q].ngots; g++)
            store_release(b->store, wqs[q].gots[g]);
        free(wqs[q].gots);
    }
    free(wqs);
    return rc;
}

int brk__records_read(struct broker *b, const char *topic, int queue_id, int nq, int64_t pos,
                      const char *expr, int max_msgs, int64_t max_bytes, struct mq_buf *out,
                      int64_t *next, int64_t *min, int64_t *max)
{
    struct mq_tags tags;
    int rc = mq_tags_parse(expr, &tags);
    if (rc)
        return rc;
    if (max_msgs <= 0 || max_msgs > RECORDS_MAX_MSGS)
        max_msgs = RECORDS_MAX_MSGS;
    if (max_bytes <= 0 || max_bytes > RECORDS_MAX_BYTES)
        max_bytes = RECORDS_MAX_BYTES;
    size_t tl = strlen(topic);
    if (queue_id >= 0)
        rc = queue_read(b, topic, tl, queue_id, pos, &tags, max_msgs, max_bytes, out, next, min,
                        max);
    else if (nq < 0 || nq > BRK_MAX_QUEUES) /* the topic table holds no more (meta.h) */
        rc = -EINVAL;
    else
        rc = topic_read(b, topic, tl, nq, pos, &tags, max_msgs, max_bytes, out, next, min, max);
    mq_tags_destroy(&tags);
    return rc;
}

/* render_index.c — the rendered-bytes index (ours, FORMATS.md 1.3): per queue, the cumulative
 * END of each message's rendering (uncompressed body + "\n"), aligned with the consume queue,
 * so a queue file's size is O(1) and file offset → queue offset is a binary search. */
#include "store/store_int.h"

#include <errno.h>
#include <zlib.h>
#include <zstd.h>

#include "common/mq_err.h"

_Static_assert(STORE__RI_UNIT == 8, "rendered-index entry, FORMATS.md 1.3");

/* Inflates a zlib stream only to count its bytes; -1 when it is not one. */
static int64_t zlib_len(const uint8_t *p, size_t n)
{
    uint8_t out[16384];
    z_stream z = {0};
    int64_t total = -1;
    if (inflateInit(&z) != Z_OK)
        return -1;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    for (;;) {
        z.next_out = out;
        z.avail_out = sizeof(out);
        int rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            total = (int64_t)z.total_out;
            break;
        }
        if (rc != Z_OK || (z.avail_in == 0 && z.avail_out != 0))
            break;
    }
    inflateEnd(&z);
    return total;
}

int64_t store__render_len(const struct mq_msg *m)
{
    if (!(m->sysflag & MQ_SYSFLAG_COMPRESSED))
        return (int64_t)m->body_len + 1;
    int64_t n = -1;
    switch (m->sysflag & MQ_SYSFLAG_COMPRESS_MASK) {
    case MQ_SYSFLAG_COMPRESS_ZSTD: {
        unsigned long long v = ZSTD_getFrameContentSize(m->body, m->body_len);
        if (v != ZSTD_CONTENTSIZE_ERROR && v != ZSTD_CONTENTSIZE_UNKNOWN)
            n = (int64_t)v;
        break;
    }
    case 0:
    case MQ_SYSFLAG_COMPRESS_ZLIB:
        n = zlib_len(m->body, m->body_len);
        break;
    default: /* LZ4: shown as stored */
        break;
    }
    return (n < 0 ? (int64_t)m->body_len : n) + 1;
}

int64_t store__ri_end(struct store__queue *q, int64_t i)
{
    if (i < 0)
        return 0;
    struct store__mfile *f = store__mlist_find(&q->ri, i * STORE__RI_UNIT);
    if (!f)
        return -1;
    int64_t v = (int64_t)mq_get_be64(f->map + (i * STORE__RI_UNIT - f->base));
    store__mfile_unref(f);
    return v;
}

/* START of entry i in [min, max). */
static int64_t ri_start(struct store__queue *q, int64_t i, int64_t min)
{
    return i == min ? atomic_load(&q->render_base) : store__ri_end(q, i - 1);
}

int store_rendered_size(struct store *s, const char *topic, size_t tlen, int qid, int64_t *base,
                        int64_t *size)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    *base = *size = 0;
    if (!q)
        return 0;
    int64_t max = atomic_load(&q->max_off), min = atomic_load(&q->min_off);
    *base = atomic_load(&q->render_base);
    *size = max > min ? store__ri_end(q, max - 1) : *base;
    if (*size < *base)
        *size = *base;
    return 0;
}

int store_render_find(struct store *s, const char *topic, size_t tlen, int qid, int64_t file_offset,
                      int64_t *queue_offset, int64_t *within)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    if (!q)
        return -ENXIO;
    int64_t min = atomic_load(&q->min_off), max = atomic_load(&q->max_off);
    int64_t base = atomic_load(&q->render_base);
    if (file_offset < base)
        return MQ_EOFFSET_MOVED;
    if (max <= min || file_offset >= store__ri_end(q, max - 1))
        return -ENXIO;
    int64_t lo = min, hi = max - 1; /* first i with END(i) > file_offset */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (store__ri_end(q, mid) > file_offset)
            hi = mid;
        else
            lo = mid + 1;
    }
    *queue_offset = lo;
    *within = file_offset - ri_start(q, lo, min);
    return 0;
}

int store_render_offset(struct store *s, const char *topic, size_t tlen, int qid,
                        int64_t queue_offset, int64_t *file_offset)
{
    struct store__queue *q = store__queue_get(s, topic, tlen, qid);
    if (!q) {
        *file_offset = 0;
        return queue_offset == 0 ? 0 : -ENXIO;
    }
    int64_t min = atomic_load(&q->min_off), max = atomic_load(&q->max_off);
    if (queue_offset < min)
        return MQ_EOFFSET_MOVED;
    if (queue_offset > max)
        return -ENXIO;
    if (queue_offset == max) {
        int64_t base;
        return store_rendered_size(s, topic, tlen, qid, &base, file_offset);
    }
    *file_offset = ri_start(q, queue_offset, min);
    return 0;
}

/* render_index.c — the rendered-bytes index (ours, FORMATS.md 1.3): per queue, the cumulative
 * END of each message's rendering (uncompressed body + "\n"), aligned with the consume queue,
 * so a queue file's size is O(1) and file offset → queue offset is a binary search. */
#include "store/store_int.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "common/mq_err.h"

_Static_assert(STORE__RI_UNIT == 8, "rendered-index entry, FORMATS.md 1.3");

/* Inflates a zlib stream, into out when given, else only to count its bytes: its length, or
 * -1 when it is not a zlib stream or inflates to more than STORE_RENDER_MAX bytes (then
 * out is left as it was); -ENOMEM. */
static int64_t zlib_body(const struct mq_msg *m, struct mq_buf *out)
{
    uint8_t scratch[16384];
    size_t start = out ? out->len : 0;
    z_stream z = {0};
    int64_t total = -1;
    if (inflateInit(&z) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)m->body;
    z.avail_in = m->body_len;
    for (;;) {
        size_t room = sizeof(scratch);
        if (out && mq_buf_reserve(out, room) != 0) {
            total = -ENOMEM;
            break;
        }
        z.next_out = out ? out->data + out->len : scratch;
        z.avail_out = (uInt)room;
        int rc = inflate(&z, Z_NO_FLUSH);
        if (out)
            out->len += room - z.avail_out;
        if (z.total_out > STORE_RENDER_MAX) /* a bomb, or just too big: shown as stored */
            break;
        if (rc == Z_STREAM_END) {
            total = (int64_t)z.total_out; /* bytes after the stream are ignored */
            break;
        }
        if (rc != Z_OK || (z.avail_in == 0 && z.avail_out != 0))
            break;
    }
    inflateEnd(&z);
    if (total < 0 && out)
        out->len = start;
    return total;
}

/* A zstd frame states its uncompressed size: counted at that size when it is at most
 * STORE_RENDER_MAX (nothing is decompressed to count); read, a frame that does not decode to
 * exactly that shows that many zero bytes, so the size the index counted holds. */
static int64_t zstd_body(const struct mq_msg *m, struct mq_buf *out)
{
    unsigned long long n = ZSTD_getFrameContentSize(m->body, m->body_len);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > STORE_RENDER_MAX)
        return -1;
    if (!out)
        return (int64_t)n;
    int rc = mq_buf_reserve(out, (size_t)n);
    if (rc)
        return rc;
    size_t got = ZSTD_decompress(out->data + out->len, (size_t)n, m->body, m->body_len);
    if (ZSTD_isError(got) || got != n)
        memset(out->data + out->len, 0, (size_t)n);
    out->len += (size_t)n;
    return (int64_t)n;
}

/* The one rule for both (FORMATS.md 1.3): the uncompressed length, or -1 for "as stored". */
static int64_t body_render(const struct mq_msg *m, struct mq_buf *out)
{
    switch (m->sysflag & MQ_SYSFLAG_COMPRESS_MASK) {
    case MQ_SYSFLAG_COMPRESS_ZSTD:
        return zstd_body(m, out);
    case 0:
    case MQ_SYSFLAG_COMPRESS_ZLIB:
        return zlib_body(m, out);
    default: /* LZ4: shown as stored */
        return -1;
    }
}

int64_t store__render_len(const struct mq_msg *m)
{
    if (!(m->sysflag & MQ_SYSFLAG_COMPRESSED))
        return (int64_t)m->body_len + 1;
    int64_t n = body_render(m, NULL);
    /* -ENOMEM (a 16 KiB inflate state) counts as stored: the only way the two could differ */
    return (n < 0 ? (int64_t)m->body_len : n) + 1;
}

int store_render_body(const struct mq_msg *m, struct mq_buf *out)
{
    if (!(m->sysflag & MQ_SYSFLAG_COMPRESSED))
        return mq_buf_append(out, m->body, m->body_len);
    int64_t n = body_render(m, out);
    if (n == -ENOMEM)
        return -ENOMEM;
    return n < 0 ? mq_buf_append(out, m->body, m->body_len) : 0;
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

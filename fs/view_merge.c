/* view_merge.c — topic/<Topic> for a topic on several brokers: the brokers' topic views merged
 * by store time (docs/FS.md "Log views"; docs/FORMATS.md MQFS_RENDER_AT_TIME).
 *
 * Order: message m of broker b sorts by (store time, broker name, b's commitlog order); on one
 * broker store times never decrease in commitlog order, so "b's messages stored before t" is a
 * prefix of b's topic view, of off_b(t) bytes. The file holds the messages stored in [T0, W):
 * W = the least of the brokers' watermarks (every message stored before it is readable, every
 * later one is stored at or after it), T0 = the greatest retention horizon (retention on any
 * broker then only removes the file's head). Every byte once served at an offset therefore
 * stays there until retention removes the head (or the route changes); new messages are
 * appended. Size = Σ_b off_b(W) − off_b(T0).
 *
 * Reading: a per-open cursor holds, per broker, a time t and its offset c = off_b(t), the
 * listing of the broker's next distinct store times with their offsets (up to 64 per request,
 * MQFS_RENDER_AT_TIME's fromTimestamp) and a buffer of its view's bytes. The merge itself is
 * local: the broker with the least (next time, name) contributes the messages stored at that
 * time, and so on. A read at the cursor (cat, tail -f) costs one watermark round (which also
 * lists for brokers whose listing ran out) plus a request per 64 store times and per buffer of
 * bytes; any other offset is located by a search over time (15 probes per request, one request
 * per broker and round). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "fs/mqfs_int.h"

#define MB_MAX       32
#define PROBES       (MQC_AT_TIME_MAX - 1)
#define WALK_MAX_GAP (4 << 20)  /* reads further ahead than this locate instead of walking */
#define FETCH_MIN    (64 << 10) /* bytes fetched from a broker at least per MQFS_READ */

struct mb { /* one broker */
    struct mqfs_broker_ref ref;
    int64_t w, since; /* this read's watermark and retention horizon */
    int64_t lo;       /* off(T0) */
    int64_t t, c;     /* cursor: c = off(t), the messages stored before t lie behind it */
    /* The listing from the cursor on: groups gi..ng, group j = the messages stored at times[j],
     * bytes [toffs[j], toffs[j + 1] or tend). Listed below lw (the broker's watermark then);
     * full: as many as a request gives, more may follow. */
    int gi, ng, full;
    int64_t lw, tend;
    int64_t times[MQC_TIMES_MAX], toffs[MQC_TIMES_MAX];
    char *buf; /* bytes [boff, boff + blen) of the broker's topic view */
    size_t cap, blen;
    int64_t boff;
};

struct merge_view {
    pthread_mutex_t lock;
    int nb;
    struct mb b[MB_MAX]; /* in name order */
    int64_t t0, wmin;
    int lo_ok;   /* lo of every broker is off(t0) */
    int valid;   /* the cursor is a position of the current content */
    int64_t pos; /* file offset of the cursor: Σ (c − lo) */
};

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const struct mqfs_broker_ref *)a)->name,
                  ((const struct mqfs_broker_ref *)b)->name);
}

static int ask(struct mqfs *fs, const char *topic, const struct mqfs_broker_ref *b,
               const int64_t *t, int n, int64_t from, struct mqc_view_times *out)
{
    int rc = mqc_view_at_time(fs->admin, b->addr, topic, t, n, from, out);
    if (rc)
        mq_warn("topic %s on %s: time lookup: %s", topic, b->name, mq_strerror(rc));
    return rc ? mqfs__view_errno(rc) : 0;
}

static void drop_cursor(struct merge_view *v)
{
    v->valid = 0;
    for (int i = 0; i < v->nb; i++)
        v->b[i].gi = v->b[i].ng = 0;
}

/* Takes the route's brokers (sorted by name); a different set drops the cursor. */
static void set_brokers(struct merge_view *v, const struct mqfs_broker_ref *refs, int nrefs)
{
    struct mqfs_broker_ref sorted[MB_MAX];
    int n = nrefs < MB_MAX ? nrefs : MB_MAX;
    memcpy(sorted, refs, (size_t)n * sizeof(*refs));
    qsort(sorted, (size_t)n, sizeof(*sorted), cmp_ref);
    int same = n == v->nb;
    for (int i = 0; same && i < n; i++)
        same =
            !strcmp(sorted[i].name, v->b[i].ref.name) && !strcmp(sorted[i].addr, v->b[i].ref.addr);
    if (same)
        return;
    for (int i = 0; i < v->nb; i++)
        free(v->b[i].buf);
    memset(v->b, 0, sizeof(v->b));
    for (int i = 0; i < n; i++)
        v->b[i].ref = sorted[i];
    v->nb = n;
    v->valid = v->lo_ok = 0;
}

/* Takes a listing asked from b->t. A listing that does not start at the cursor means the broker
 * lost messages it had shown (retention, a wiped store): the cursor goes. */
static void take_listing(struct merge_view *v, struct mb *b, const struct mqc_view_times *r)
{
    if ((r->ntimes ? r->toffs[0] : r->tend) != b->c) {
        drop_cursor(v);
        return;
    }
    b->ng = r->ntimes;
    b->gi = 0;
    b->full = r->ntimes == MQC_TIMES_MAX;
    b->lw = r->watermark;
    b->tend = r->tend;
    memcpy(b->times, r->times, (size_t)r->ntimes * sizeof(*r->times));
    memcpy(b->toffs, r->toffs, (size_t)r->ntimes * sizeof(*r->toffs));
}

/* One round: every broker's watermark and horizon (and a listing for a valid cursor that used
 * its own up); then T0, W and, when T0 moved, off(T0). */
static int refresh(struct mqfs *fs, const char *topic, struct merge_view *v)
{
    struct mqc_view_times r;
    int64_t t0 = 0, w = INT64_MAX;
    for (int i = 0; i < v->nb; i++) {
        struct mb *b = &v->b[i];
        int list = v->valid && b->gi == b->ng;
        int rc = ask(fs, topic, &b->ref, NULL, 0, list ? b->t : -1, &r);
        if (rc)
            return rc;
        if (list && v->valid)
            take_listing(v, b, &r);
        b->w = r.watermark;
        b->since = r.retained_since;
        t0 = b->since > t0 ? b->since : t0;
        w = b->w < w ? b->w : w;
    }
    if (t0 > w)
        t0 = w;
    v->wmin = w;
    if (v->lo_ok && t0 == v->t0)
        return 0;
    v->t0 = t0;
    drop_cursor(v);
    for (int i = 0; i < v->nb; i++) {
        int rc = ask(fs, topic, &v->b[i].ref, &t0, 1, -1, &r);
        if (rc)
            return rc;
        v->b[i].lo = r.off[0];
        v->b[i].blen = 0; /* retention may have taken what the buffer holds */
    }
    v->lo_ok = 1;
    return 0;
}

/* Places the cursor at the largest time t with G(t) = Σ (off(t) − lo) <= x. Returns 0, 1 when x
 * is at or past the end, or a negative errno. */
static int locate(struct mqfs *fs, const char *topic, struct merge_view *v, int64_t x)
{
    int64_t lo = v->t0, hi = v->wmin, p[MQC_AT_TIME_MAX], g[MQC_AT_TIME_MAX];
    int first = 1;
    struct mqc_view_times r;
    drop_cursor(v);
    while (first || hi - lo > 1) {
        int k = 0;
        if (first)
            p[k++] = hi; /* is x inside the file at all? */
        int64_t gap = hi - lo - 1, want = gap < PROBES ? gap : PROBES;
        for (int64_t j = 1; j <= want; j++)
            p[k++] = lo + (hi - lo) * j / (want + 1);
        memset(g, 0, sizeof(g));
        for (int i = 0; i < v->nb; i++) {
            int rc = ask(fs, topic, &v->b[i].ref, p, k, -1, &r);
            if (rc)
                return rc;
            for (int j = 0; j < k; j++)
                g[j] += r.off[j] - v->b[i].lo;
        }
        for (int j = 0; j < k; j++) {
            if (g[j] <= x && p[j] > lo && p[j] < hi)
                lo = p[j];
            else if (g[j] > x && p[j] < hi)
                hi = p[j];
            else if (g[j] <= x && p[j] == hi)
                return 1; /* G(W) <= x: the end */
        }
        first = 0;
    }
    int64_t pos = 0;
    for (int i = 0; i < v->nb; i++) { /* the cursor at lo, with the listings from there */
        struct mb *b = &v->b[i];
        int rc = ask(fs, topic, &b->ref, &lo, 1, lo, &r);
        if (rc)
            return rc;
        b->t = lo;
        b->c = r.off[0];
        take_listing(v, b, &r);
        pos += b->c - b->lo;
    }
    v->pos = pos;
    v->valid = 1;
    return 0;
}

/* The store time of b's next message below W (listing more when needed), or -1 when none. */
static int64_t next_time(struct mqfs *fs, const char *topic, struct merge_view *v, struct mb *b,
                         int *err)
{
    if (b->gi == b->ng && (b->full || b->lw < v->wmin)) {
        struct mqc_view_times r;
        if ((*err = ask(fs, topic, &b->ref, NULL, 0, b->t, &r)) != 0)
            return -1;
        take_listing(v, b, &r);
        if (!v->valid) {
            *err = MQ_EOFFSET_MOVED;
            return -1;
        }
    }
    return b->gi < b->ng && b->times[b->gi] < v->wmin ? b->times[b->gi] : -1;
}

/* Copies up to want bytes of b's topic view from offset `from`, through b's buffer. Returns the
 * bytes, MQ_EOFFSET_MOVED when they are gone, or a negative errno. */
static long fetch(struct mqfs *fs, const char *topic, struct mb *b, int64_t from, char *dst,
                  size_t want)
{
    if (from < b->boff || from >= b->boff + (int64_t)b->blen) {
        size_t len = want > FETCH_MIN ? want : FETCH_MIN;
        if (len > b->cap) {
            char *nb = realloc(b->buf, len);
            if (!nb)
                return -ENOMEM;
            b->buf = nb;
            b->cap = len;
        }
        size_t got = 0;
        b->blen = 0;
        int rc = mqc_view_read(fs->admin, b->ref.addr, topic, -1, from, b->buf, len, &got, NULL);
        if (rc == 0 && got == 0)
            rc = MQ_EOFFSET_MOVED; /* the bytes below its watermark are gone: retention */
        if (rc)
            return rc == MQ_EOFFSET_MOVED ? rc : mqfs__view_errno(rc);
        b->boff = from;
        b->blen = got;
    }
    size_t n = (size_t)(b->boff + (int64_t)b->blen - from);
    n = n < want ? n : want;
    memcpy(dst, b->buf + (from - b->boff), n);
    return (long)n;
}

/* Fills buf with up to size bytes from file offset x. Returns the bytes or a negative errno;
 * MQ_EOFFSET_MOVED when retention raced the read (the cursor is dropped). */
static long fill(struct mqfs *fs, const char *topic, struct merge_view *v, char *buf, size_t size,
                 int64_t x)
{
    int rc = refresh(fs, topic, v);
    if (rc)
        return rc;
    if (!v->valid || x < v->pos || x - v->pos > WALK_MAX_GAP) {
        rc = locate(fs, topic, v, x);
        if (rc)
            return rc == 1 ? 0 : rc;
    }
    size_t got = 0;
    while (got < size) {
        struct mb *a = NULL; /* the least (next time, name) */
        int64_t at = -1;
        for (int i = 0; i < v->nb; i++) {
            int64_t t = next_time(fs, topic, v, &v->b[i], &rc);
            if (rc) {
                drop_cursor(v);
                return rc;
            }
            if (t >= 0 && (!a || t < at)) {
                a = &v->b[i];
                at = t;
            }
        }
        if (!a)
            break; /* the end of the content */
        int g = a->gi;
        int64_t end = g + 1 < a->ng ? a->toffs[g + 1] : a->tend, len = end - a->c;
        if (x < v->pos + len) {
            size_t want = size - got;
            if ((int64_t)want > v->pos + len - x)
                want = (size_t)(v->pos + len - x);
            long n = fetch(fs, topic, a, a->c + (x - v->pos), buf + got, want);
            if (n < 0) {
                drop_cursor(v);
                return n;
            }
            got += (size_t)n;
            x += n;
            if (x < v->pos + len)
                continue; /* the group goes on: the cursor stays at its start */
        }
        v->pos += len; /* past the group */
        a->c = end;
        a->t = at + 1;
        a->gi++;
    }
    return (long)got;
}

int mqfs__merge_read(fuse_req_t req, struct mqfs_handle *h, const struct mqfs_broker_ref *refs,
                     int nrefs, size_t size, off_t off)
{
    pthread_mutex_lock(&h->lock);
    struct merge_view *v = h->view;
    if (!v && (v = calloc(1, sizeof(*v))) != NULL) {
        pthread_mutex_init(&v->lock, NULL);
        h->view = v;
    }
    pthread_mutex_unlock(&h->lock);
    char *buf = malloc(size ? size : 1);
    if (!v || !buf) {
        free(buf);
        return -ENOMEM;
    }
    pthread_mutex_lock(&v->lock);
    set_brokers(v, refs, nrefs);
    long got = MQ_EOFFSET_MOVED;
    for (int attempt = 0; attempt < 3 && got == MQ_EOFFSET_MOVED; attempt++)
        got = fill(h->fs, h->node.topic, v, buf, size, (int64_t)off);
    pthread_mutex_unlock(&v->lock);
    if (got == MQ_EOFFSET_MOVED)
        got = -EIO;
    if (got >= 0)
        fuse_reply_buf(req, buf, (size_t)got);
    free(buf);
    return got < 0 ? (int)got : 0;
}

int mqfs__merge_size(struct mqfs *fs, const char *topic, const struct mqfs_broker_ref *refs,
                     int nrefs, uint64_t *size, int64_t *newest)
{
    /* Two rounds: the watermarks and horizons, then off(T0) and off(W) in one request each. */
    struct mqc_view_times r;
    int64_t t0 = 0, w = INT64_MAX, total = 0;
    int rc = 0;
    for (int i = 0; i < nrefs && rc == 0; i++) {
        if ((rc = ask(fs, topic, &refs[i], NULL, 0, -1, &r)) != 0)
            break;
        t0 = r.retained_since > t0 ? r.retained_since : t0;
        w = r.watermark < w ? r.watermark : w;
    }
    int64_t t[2] = {t0 < w ? t0 : w, w};
    *newest = -1;
    for (int i = 0; i < nrefs && rc == 0; i++) {
        if ((rc = ask(fs, topic, &refs[i], t, 2, -1, &r)) != 0)
            break;
        total += r.off[1] - r.off[0];
        /* The file's newest message: the newest stored before W, if not before T0. */
        if (r.prev[1] >= t[0] && r.prev[1] > *newest)
            *newest = r.prev[1];
    }
    *size = rc ? 0 : (uint64_t)total;
    return rc;
}

void mqfs__merge_release(struct mqfs_handle *h)
{
    struct merge_view *v = h->view;
    if (!v)
        return;
    for (int i = 0; i < v->nb; i++)
        free(v->b[i].buf);
    pthread_mutex_destroy(&v->lock);
    free(v);
    h->view = NULL;
}

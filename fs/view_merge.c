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
 * Reading: a per-open cursor holds, per broker, a time t, its offset c = off_b(t) and the store
 * time n of the message at c; the broker with the least (n, name) contributes a run of its
 * view up to the next message of another broker, one lookup per run. A read at the cursor (cat,
 * tail -f) costs one watermark round plus the runs it crosses; any other offset is located by a
 * search over time (16 probes per request, one request per broker and round). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "fs/mqfs_int.h"

#define MB_MAX       32
#define PROBES       (MQC_AT_TIME_MAX - 1)
#define WALK_MAX_GAP (1 << 20) /* reads further ahead than this locate instead of walking */

struct mb { /* one broker */
    struct mqfs_broker_ref ref;
    int64_t w, since; /* this read's watermark and retention horizon */
    int64_t lo;       /* off(T0) */
    int64_t t, c, n;  /* cursor: c = off(t), n = store time of the message at c (-1: none yet) */
};

struct merge_view {
    pthread_mutex_t lock;
    int nb;
    struct mb b[MB_MAX]; /* in name order */
    int64_t t0, wmin;
    int lo_ok;   /* lo of every broker is off(t0) */
    int valid;   /* the cursor is a position of the current content */
    int64_t pos; /* file offset of the cursor: Σ (c − lo) */
    /* The run at the cursor (run < 0: not computed): broker `run` contributes [c, run_end), then
     * its cursor becomes (run_t, run_end, run_n). run_cap: the W that capped it, or -1. */
    int run;
    int64_t run_end, run_t, run_n, run_cap;
};

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const struct mqfs_broker_ref *)a)->name,
                  ((const struct mqfs_broker_ref *)b)->name);
}

static int ask(struct mqfs *fs, const char *topic, const struct mb *b, const int64_t *t, int n,
               struct mqc_view_times *out)
{
    int rc = mqc_view_at_time(fs->admin, b->ref.addr, topic, t, n, out);
    if (rc)
        mq_warn("topic %s on %s: time lookup: %s", topic, b->ref.name, mq_strerror(rc));
    return rc ? mqfs__send_errno(rc) : 0;
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
    memset(v->b, 0, sizeof(v->b));
    for (int i = 0; i < n; i++)
        v->b[i].ref = sorted[i];
    v->nb = n;
    v->valid = v->lo_ok = 0;
    v->run = -1;
}

/* One round: every broker's watermark and horizon (and, for a valid cursor, the store time of
 * the message at a cursor that had none yet); then T0, W and, when T0 moved, off(T0). */
static int refresh(struct mqfs *fs, const char *topic, struct merge_view *v)
{
    struct mqc_view_times r;
    int64_t t0 = 0, w = INT64_MAX;
    for (int i = 0; i < v->nb; i++) {
        struct mb *b = &v->b[i];
        int probe = v->valid && b->n < 0;
        int rc = ask(fs, topic, b, &b->t, probe, &r);
        if (rc)
            return rc;
        if (probe && r.off[0] != b->c)
            v->valid = 0; /* the broker lost messages it had shown: start over */
        else if (probe)
            b->n = r.next[0];
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
    v->valid = 0;
    v->run = -1;
    for (int i = 0; i < v->nb; i++) {
        int rc = ask(fs, topic, &v->b[i], &t0, 1, &r);
        if (rc)
            return rc;
        v->b[i].lo = r.off[0];
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
    while (first || hi - lo > 1) {
        int k = 0;
        if (first)
            p[k++] = hi; /* is x inside the file at all? */
        int64_t gap = hi - lo - 1, want = gap < PROBES ? gap : PROBES;
        for (int64_t j = 1; j <= want; j++)
            p[k++] = lo + (hi - lo) * j / (want + 1);
        memset(g, 0, sizeof(g));
        for (int i = 0; i < v->nb; i++) {
            int rc = ask(fs, topic, &v->b[i], p, k, &r);
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
    for (int i = 0; i < v->nb; i++) {
        struct mb *b = &v->b[i];
        int rc = ask(fs, topic, b, &lo, 1, &r);
        if (rc)
            return rc;
        b->t = lo;
        b->c = r.off[0];
        b->n = r.next[0];
        pos += b->c - b->lo;
    }
    v->pos = pos;
    v->valid = 1;
    v->run = -1;
    return 0;
}

/* Computes the run at the cursor. Returns 0, 1 at the end of the content, or a negative errno. */
static int next_run(struct mqfs *fs, const char *topic, struct merge_view *v)
{
    int a = -1, c = -1; /* the least and second least (n, name) below W */
    for (int i = 0; i < v->nb; i++) {
        int64_t n = v->b[i].n;
        if (n < 0 || n >= v->wmin)
            continue;
        if (a < 0 || n < v->b[a].n) {
            c = a;
            a = i;
        } else if (c < 0 || n < v->b[c].n) {
            c = i;
        }
    }
    if (a < 0)
        return 1;
    int64_t limit = v->wmin;
    if (c >= 0) {
        int64_t lc = a < c ? v->b[c].n + 1 : v->b[c].n; /* ties go to the smaller name */
        limit = lc < limit ? lc : limit;
    }
    struct mqc_view_times r;
    int rc = ask(fs, topic, &v->b[a], &limit, 1, &r);
    if (rc)
        return rc;
    if (r.off[0] <= v->b[a].c) {
        v->valid = 0; /* cannot be while the broker keeps its messages */
        return -EIO;
    }
    v->run = a;
    v->run_end = r.off[0];
    v->run_t = limit;
    v->run_n = r.next[0];
    v->run_cap = limit == v->wmin ? v->wmin : -1;
    return 0;
}

static void advance(struct merge_view *v)
{
    struct mb *b = &v->b[v->run];
    v->pos += v->run_end - b->c;
    b->c = v->run_end;
    b->t = v->run_t;
    b->n = v->run_n;
    v->run = -1;
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
    if (v->run >= 0 && v->run_cap >= 0 && v->run_cap != v->wmin)
        v->run = -1; /* W moved: the run may go further now */
    size_t got = 0;
    while (got < size) {
        if (v->run < 0 && (rc = next_run(fs, topic, v)) != 0)
            return rc == 1 ? (long)got : rc;
        struct mb *b = &v->b[v->run];
        int64_t len = v->run_end - b->c;
        if (x >= v->pos + len) {
            advance(v);
            continue;
        }
        size_t want = size - got, n = 0;
        if ((int64_t)want > v->pos + len - x)
            want = (size_t)(v->pos + len - x);
        rc = mqc_view_read(fs->admin, b->ref.addr, topic, -1, b->c + (x - v->pos), buf + got, want,
                           &n, NULL);
        if (rc == 0 && n == 0)
            rc = MQ_EOFFSET_MOVED; /* the bytes below its watermark are gone: retention */
        if (rc) {
            v->valid = 0;
            v->run = -1;
            return rc == MQ_EOFFSET_MOVED ? rc : mqfs__send_errno(rc);
        }
        got += n;
        x += (int64_t)n;
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
        v->run = -1;
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
                     int nrefs, uint64_t *size)
{
    struct merge_view *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    set_brokers(v, refs, nrefs);
    /* Two rounds: the watermarks and horizons, then off(T0) and off(W) in one request each. */
    struct mqc_view_times r;
    int64_t t0 = 0, w = INT64_MAX, total = 0;
    int rc = 0;
    for (int i = 0; i < v->nb && rc == 0; i++) {
        if ((rc = ask(fs, topic, &v->b[i], NULL, 0, &r)) != 0)
            break;
        t0 = r.retained_since > t0 ? r.retained_since : t0;
        w = r.watermark < w ? r.watermark : w;
    }
    int64_t t[2] = {t0 < w ? t0 : w, w};
    for (int i = 0; i < v->nb && rc == 0; i++)
        if ((rc = ask(fs, topic, &v->b[i], t, 2, &r)) == 0)
            total += r.off[1] - r.off[0];
    free(v);
    *size = rc ? 0 : (uint64_t)total;
    return rc;
}

void mqfs__merge_release(struct mqfs_handle *h)
{
    struct merge_view *v = h->view;
    if (!v)
        return;
    pthread_mutex_destroy(&v->lock);
    free(v);
    h->view = NULL;
}

/* lines.c — line assembly for writes to topic and key files (docs/FS.md "Sending"): the
 * carried partial line of an open file plus the bytes of one write() become complete lines
 * (the '\n' is not part of a body), sent in order as batches bounded by the encoded batch
 * size and a message count. Pure: the send is a callback, so every split boundary and every
 * failure is unit-tested without a broker.
 *
 * Atomicity: everything that can be checked is checked before the first send (empty lines,
 * oversized lines), so a write either sends all its lines, or none (error, carry unchanged),
 * or — only when a second or later batch of a very large write fails — a prefix of whole
 * lines, reported as a short write. A line that grows past the limit across writes is dropped
 * whole (discard_line): the part already accepted is never sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/mqfs.h"

#define DEF_MAX_LINE    (4u << 20)
#define DEF_BATCH_BYTES (4u << 20)
#define DEF_BATCH_MSGS  16384
#define CARRY_KEEP      (64u << 10) /* an emptied carry larger than this is freed */

void mqfs_lines_init(struct mqfs_lines *l, const struct mqfs_lines_cfg *cfg)
{
    memset(l, 0, sizeof(*l));
    if (cfg)
        l->cfg = *cfg;
    if (!l->cfg.max_line)
        l->cfg.max_line = DEF_MAX_LINE;
    if (!l->cfg.batch_bytes)
        l->cfg.batch_bytes = DEF_BATCH_BYTES;
    if (!l->cfg.batch_msgs)
        l->cfg.batch_msgs = DEF_BATCH_MSGS;
}

void mqfs_lines_destroy(struct mqfs_lines *l)
{
    free(l->carry);
    l->carry = NULL;
    l->carry_len = l->carry_cap = 0;
    free(l->refused);
    l->refused = NULL;
    l->refused_len = 0;
    l->discarding = 0;
}

static int carry_reserve(struct mqfs_lines *l, size_t need)
{
    if (need <= l->carry_cap)
        return 0;
    size_t cap = l->carry_cap ? l->carry_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > l->cfg.max_line && need <= l->cfg.max_line)
        cap = l->cfg.max_line;
    uint8_t *p = realloc(l->carry, cap);
    if (!p)
        return -ENOMEM;
    l->carry = p;
    l->carry_cap = cap;
    return 0;
}

static void carry_clear(struct mqfs_lines *l)
{
    l->carry_len = 0;
    if (l->carry_cap > CARRY_KEEP) {
        free(l->carry);
        l->carry = NULL;
        l->carry_cap = 0;
    }
}

/* Oversized lines. A line that grows past max_line after part of it was accepted (the kernel
 * hands mqfs a large write() in 1 MiB requests, and returns a short count when a later one
 * fails) cannot be taken back: the accepted part is dropped, and every write is refused with
 * -EMSGSIZE up to and including the one that holds the line's '\n' — this write first. The
 * refused end of the line (from that write's start through the '\n') is kept: the caller
 * writes those very bytes again after a short write (cat, stdio, Python's buffered writer at
 * exit, even twice), and they must not become a line of their own. So a write that matches it
 * from its start (as far as either goes) is refused too; the first write that does not, or a
 * flush, forgets it. A line that starts in this write is refused as a whole like any bad
 * write: nothing of it was accepted, so nothing changes. */
static void forget_refused(struct mqfs_lines *l)
{
    free(l->refused);
    l->refused = NULL;
    l->refused_len = 0;
}

/* Refuses a write starting at p (its first '\n' at nl, or none) as part of an oversized line. */
static long refuse_rest(struct mqfs_lines *l, const uint8_t *p, const uint8_t *nl)
{
    l->discarding = 1;
    if (nl) {
        size_t len = (size_t)(nl - p) + 1;
        uint8_t *end = malloc(len);
        if (end) { /* without memory the line stays open: the next write ends it, refused */
            memcpy(end, p, len);
            l->refused = end;
            l->refused_len = len;
            l->discarding = 0;
        }
    }
    return -EMSGSIZE;
}

static long discard_line(struct mqfs_lines *l, const uint8_t *p, const uint8_t *nl)
{
    if (l->carry_len == 0)
        return -EMSGSIZE;
    carry_clear(l);
    return refuse_rest(l, p, nl);
}

/* Whether p (n bytes) is the caller writing the refused end of an oversized line again. */
static int is_refused_again(struct mqfs_lines *l, const uint8_t *p, size_t n)
{
    if (!l->refused)
        return 0;
    size_t k = n < l->refused_len ? n : l->refused_len;
    if (memcmp(p, l->refused, k) == 0)
        return 1;
    forget_refused(l);
    return 0;
}

/* Checks the lines of p[start..n) (the first one continuing `carried` bytes) and the tail after
 * the last '\n', which becomes the carry: 0, -EINVAL (an empty line) or -EMSGSIZE. */
static int check_lines(const struct mqfs_lines *l, const uint8_t *p, size_t n, size_t start,
                       size_t carried)
{
    for (;;) {
        const uint8_t *nl = memchr(p + start, '\n', n - start);
        size_t len = (nl ? (size_t)(nl - p) : n) - start + carried;
        if (len > l->cfg.max_line)
            return -EMSGSIZE;
        if (!nl)
            return 0;
        if (len == 0)
            return -EINVAL; /* RocketMQ cannot store an empty body */
        start = (size_t)(nl - p) + 1;
        carried = 0;
    }
}

/* The next batch: up to cap complete lines of p from *pos within the batch limits (at least
 * one), each checked as check_lines does; with `joined`, the first one is the carry (which
 * already holds the carried bytes and the write's head). Returns the count (0 when only a
 * partial line is left) with *pos past the last line's '\n', or the first line's error. */
static long collect(const struct mqfs_lines *l, const uint8_t *p, size_t n, size_t *pos, int joined,
                    struct mqc_body *vec, size_t cap)
{
    size_t k = 0, bytes = 0, scan = *pos;
    while (k < cap && scan < n) {
        const uint8_t *nl = memchr(p + scan, '\n', n - scan);
        if (!nl)
            break;
        struct mqc_body ln = {p + scan, (size_t)(nl - p) - scan};
        if (joined && k == 0)
            ln = (struct mqc_body){l->carry, l->carry_len};
        if (ln.len == 0)
            return -EINVAL;
        if (ln.len > l->cfg.max_line)
            return -EMSGSIZE;
        size_t cost = ln.len + l->cfg.msg_overhead;
        if (k > 0 && bytes + cost > l->cfg.batch_bytes)
            break;
        vec[k++] = ln;
        bytes += cost;
        scan = (size_t)(nl - p) + 1;
    }
    *pos = scan;
    return (long)k;
}

/* One pass over the bytes in the usual case (every line of the write fits one batch): the
 * first batch is collected and checked at once, only what lies beyond it is checked apart. */
long mqfs_lines_write(struct mqfs_lines *l, const void *buf, size_t n, mqfs_send_fn send, void *arg)
{
    const uint8_t *p = buf;
    if (n == 0)
        return 0;
    if (is_refused_again(l, p, n))
        return -EMSGSIZE;
    const uint8_t *first_nl = memchr(p, '\n', n);
    if (l->discarding)
        return refuse_rest(l, p, first_nl);
    size_t old_carry = l->carry_len;
    if (!first_nl) { /* no complete line: everything joins the carry */
        if (old_carry + n > l->cfg.max_line)
            return discard_line(l, p, NULL);
        int rc = carry_reserve(l, old_carry + n);
        if (rc)
            return rc;
        memcpy(l->carry + old_carry, p, n);
        l->carry_len += n;
        return (long)n;
    }
    /* The first line is carry + head: made contiguous in the carry buffer, whose old length is
     * restored if nothing of this write is sent. */
    size_t head = (size_t)(first_nl - p);
    if (old_carry + head > l->cfg.max_line)
        return discard_line(l, p, first_nl);
    size_t cap = n / 2 + 1; /* complete lines in p: at most one per two bytes, plus the first */
    cap = cap < l->cfg.batch_msgs ? cap : l->cfg.batch_msgs;
    struct mqc_body *vec = malloc(cap * sizeof(*vec));
    if (!vec)
        return -ENOMEM;
    long rc = 0;
    if (old_carry > 0) {
        if ((rc = carry_reserve(l, old_carry + head)) != 0)
            goto out;
        memcpy(l->carry + old_carry, p, head);
        l->carry_len = old_carry + head;
    }
    size_t pos = 0;      /* next unsent byte of p */
    size_t consumed = 0; /* bytes of p covered by accepted batches */
    size_t scan = 0;
    long k = collect(l, p, n, &scan, old_carry > 0, vec, cap);
    if (k < 0 || (rc = check_lines(l, p, n, scan, 0)) != 0) {
        rc = k < 0 ? k : rc;
        l->carry_len = old_carry; /* nothing of this write consumed */
        goto out;
    }
    for (int nbatch = 0; k > 0; nbatch++) {
        rc = send(arg, vec, (size_t)k);
        if (rc) {
            if (nbatch == 0) {
                l->carry_len = old_carry; /* nothing of this write consumed */
                goto out;
            }
            rc = 0; /* a short write: the caller's retry of the rest meets the error */
            goto out;
        }
        pos = consumed = scan;
        if (old_carry > 0) {
            carry_clear(l);
            old_carry = 0;
        }
        k = collect(l, p, n, &scan, 0, vec, cap); /* checked above: cannot fail */
    }
    /* The tail after the last '\n' is the new carry (checked above). */
    if (pos < n) {
        if ((rc = carry_reserve(l, n - pos)) != 0) {
            /* The lines were sent; leave the tail unconsumed (a short write). */
            rc = 0;
            goto out;
        }
        memcpy(l->carry, p + pos, n - pos);
        l->carry_len = n - pos;
        consumed = n;
    }
out:
    free(vec);
    return rc ? rc : (long)consumed;
}

int mqfs_lines_flush(struct mqfs_lines *l, mqfs_send_fn send, void *arg)
{
    forget_refused(l);
    if (l->discarding) { /* the writer's close ends the oversized line: nothing of it goes */
        l->discarding = 0;
        return -EMSGSIZE;
    }
    if (l->carry_len == 0)
        return 0;
    struct mqc_body ln = {l->carry, l->carry_len};
    int rc = send(arg, &ln, 1);
    if (rc == 0)
        carry_clear(l);
    return rc;
}

/* lines.c — line assembly for writes to topic and key files (docs/FS.md "Sending"): the
 * carried partial line of an open file plus the bytes of one write() become complete lines
 * (the '\n' is not part of a body), sent in order as batches bounded by the encoded batch
 * size and a message count. Pure: the send is a callback, so every split boundary and every
 * failure is unit-tested without a broker.
 *
 * Atomicity: everything that can be checked is checked before the first send (empty lines,
 * oversized lines), so a write either sends all its lines, or none (error, carry unchanged),
 * or — only when a second or later batch of a very large write fails — a prefix of whole
 * lines, reported as a short write.
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

/* Checks every line of carry + p[0..n) before anything is sent; counts the complete ones. */
static int precheck(const struct mqfs_lines *l, const uint8_t *p, size_t n, size_t *lines)
{
    size_t start = 0, carried = l->carry_len;
    *lines = 0;
    for (;;) {
        const uint8_t *nl = memchr(p + start, '\n', n - start);
        size_t len = (nl ? (size_t)(nl - p) : n) - start + carried;
        if (len > l->cfg.max_line)
            return -EMSGSIZE;
        if (!nl)
            return 0;
        if (len == 0)
            return -EINVAL; /* RocketMQ cannot store an empty body */
        ++*lines;
        start = (size_t)(nl - p) + 1;
        carried = 0;
    }
}

long mqfs_lines_write(struct mqfs_lines *l, const void *buf, size_t n, mqfs_send_fn send, void *arg)
{
    const uint8_t *p = buf;
    if (n == 0)
        return 0;
    size_t nlines;
    int rc = precheck(l, p, n, &nlines);
    if (rc)
        return rc;
    const uint8_t *first_nl = memchr(p, '\n', n);
    if (!first_nl) { /* no complete line: everything joins the carry */
        if ((rc = carry_reserve(l, l->carry_len + n)) != 0)
            return rc;
        memcpy(l->carry + l->carry_len, p, n);
        l->carry_len += n;
        return (long)n;
    }
    size_t batch_cap = nlines < l->cfg.batch_msgs ? nlines : l->cfg.batch_msgs;
    struct mqfs_line *vec = malloc(batch_cap * sizeof(*vec));
    if (!vec)
        return -ENOMEM;
    /* The first line is carry + prefix: made contiguous in the carry buffer, whose old length
     * is restored if its batch fails. */
    size_t old_carry = l->carry_len, head = (size_t)(first_nl - p);
    if (old_carry > 0) {
        if ((rc = carry_reserve(l, old_carry + head)) != 0)
            goto out;
        memcpy(l->carry + old_carry, p, head);
        l->carry_len = old_carry + head;
    }
    size_t pos = 0;      /* next unsent byte of p */
    size_t consumed = 0; /* bytes of p covered by accepted batches */
    int nbatch = 0;
    while (pos < n) {
        size_t k = 0, bytes = 0, scan = pos;
        while (k < batch_cap && scan < n) {
            const uint8_t *nl = memchr(p + scan, '\n', n - scan);
            if (!nl)
                break;
            struct mqfs_line ln = {p + scan, (size_t)(nl - p) - scan};
            if (scan == 0 && old_carry > 0)
                ln = (struct mqfs_line){l->carry, l->carry_len};
            size_t cost = ln.len + l->cfg.msg_overhead;
            if (k > 0 && bytes + cost > l->cfg.batch_bytes)
                break;
            vec[k++] = ln;
            bytes += cost;
            scan = (size_t)(nl - p) + 1;
        }
        if (k == 0)
            break; /* only a partial line is left */
        rc = send(arg, vec, k);
        if (rc) {
            if (nbatch == 0) {
                l->carry_len = old_carry; /* nothing of this write consumed */
                goto out;
            }
            rc = 0; /* a short write: the caller's retry of the rest meets the error */
            goto out;
        }
        nbatch++;
        pos = consumed = scan;
        if (old_carry > 0) {
            carry_clear(l);
            old_carry = 0;
        }
    }
    /* The tail after the last '\n' is the new carry (precheck bounded its length). */
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
    if (l->carry_len == 0)
        return 0;
    struct mqfs_line ln = {l->carry, l->carry_len};
    int rc = send(arg, &ln, 1);
    if (rc == 0)
        carry_clear(l);
    return rc;
}

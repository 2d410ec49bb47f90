/* batch_enc.c — SEND_BATCH_MESSAGE bodies (FORMATS.md Part 2: the batch body): n messages of
 * one topic validated and sized first, then encoded in one pass into one allocation; each
 * entry's properties are the user's, KEYS, TAGS, UNIQ_KEY and WAIT, written by the same code
 * as a single send's (mqc__props_put). */
#include <errno.h>
#include <string.h>

#include "client/client_int.h"
#include "common/mq_batch.h"
#include "common/mq_bytes.h"
#include "common/mq_util.h"

/* Appends "NAME\1" + val + "\2" at w; returns the end. */
static uint8_t *put_prop(uint8_t *w, const char *name, size_t nlen, const char *val, size_t vlen)
{
    memcpy(w, name, nlen);
    w[nlen] = 1;
    memcpy(w + nlen + 1, val, vlen);
    w[nlen + 1 + vlen] = 2;
    return w + nlen + vlen + 2;
}

/* The entry header of a batch message and its body (FORMATS.md Part 2: the batch body);
 * returns where the properties' length goes. */
static uint8_t *put_entry_head(uint8_t *w, size_t entry, int32_t flag, const void *body, size_t len)
{
    mq_put_be32(w, (uint32_t)entry);
    memset(w + 4, 0, 8);
    mq_put_be32(w + 12, (uint32_t)flag);
    mq_put_be32(w + 16, (uint32_t)len);
    memcpy(w + 20, body, len);
    return w + 20 + len;
}

#define PROP_UNIQ_LEN (8 + 2 + 32) /* UNIQ_KEY\1<32 hex>\2 */
#define PROP_WAIT     "WAIT\001true\002"

/* Length of an optional string property's value, remembered across messages that share the
 * pointer (mqfs and most batches give every message the same tags and keys). */
static size_t opt_len(const char *v, const char **last, size_t *last_len)
{
    if (!v || !*v)
        return 0;
    if (v != *last) {
        *last = v;
        *last_len = strlen(v);
    }
    return *last_len;
}

size_t mqc__props_len(size_t user, size_t kl, size_t tl)
{
    return user + (kl ? 6 + kl : 0) + (tl ? 6 + tl : 0) + PROP_UNIQ_LEN + sizeof(PROP_WAIT) - 1;
}

/* The properties' length of batch message x, or -EMSGSIZE. */
static long batch_props_len(const struct mqc_message *x, const char **lk, size_t *lkl,
                            const char **lt, size_t *ltl)
{
    size_t len = mqc__props_len(x->props_len, opt_len(x->keys, lk, lkl), opt_len(x->tags, lt, ltl));
    return len > 32767 ? -EMSGSIZE : (long)len;
}

/* Writes the properties every message of a send shares — x's own, KEYS and TAGS (kl, tl bytes)
 * and "UNIQ_KEY\1" — at w; returns the end, where the message's id goes. */
static uint8_t *put_shared_props(uint8_t *w, const struct mqc_message *x, size_t kl, size_t tl)
{
    if (x->props_len)
        memcpy(w, x->props, x->props_len);
    w += x->props_len;
    w = kl ? put_prop(w, "KEYS", 4, x->keys, kl) : w;
    w = tl ? put_prop(w, "TAGS", 4, x->tags, tl) : w;
    memcpy(w, "UNIQ_KEY\001", 9);
    return w + 9;
}

/* After the 32 characters of a UNIQ_KEY value at w: its end and WAIT; returns the end. */
static uint8_t *put_uniq_end_wait(uint8_t *w)
{
    w[32] = 2;
    memcpy(w + 33, PROP_WAIT, sizeof(PROP_WAIT) - 1);
    return w + 33 + sizeof(PROP_WAIT) - 1;
}

/* Writes the next UNIQ_KEY value of u, its end and WAIT at w; returns the end. */
static uint8_t *put_uniq_wait(uint8_t *w, struct mqc_uniq_seq *u)
{
    mqc_uniq_ids_next(u, (char *)w);
    return put_uniq_end_wait(w);
}

uint8_t *mqc__props_put(uint8_t *w, const struct mqc_message *m, size_t kl, size_t tl,
                        const char uniq[32])
{
    w = put_shared_props(w, m, kl, tl);
    memcpy(w, uniq, 32);
    return put_uniq_end_wait(w);
}

/* Room for `total` bytes at the end of out and n UNIQ_KEYs: where to write, or NULL. */
static uint8_t *reserve(struct mq_buf *out, size_t total, size_t n, struct mqc_uniq_seq *u)
{
    if (mq_buf_reserve(out, total) != 0)
        return NULL;
    mqc_uniq_ids_begin(u, n);
    return out->data + out->len;
}

int mqc__batch_encode(const struct mqc_message *m, size_t n, size_t max, struct mq_buf *out,
                      char uniq[33])
{
    if (n == 0 || !m[0].topic || mq_check_topic(m[0].topic, strlen(m[0].topic)))
        return -EINVAL;
    const char *topic = m[0].topic, *lk = NULL, *lt = NULL;
    size_t lkl = 0, ltl = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mqc_message *x = &m[i];
        if (x->topic != topic && (!x->topic || strcmp(x->topic, topic) != 0))
            return -EINVAL; /* one topic per batch */
        if (x->delay_level)
            return -EINVAL; /* RocketMQ: "TimeDelayLevel is not supported for batching" */
        if (!x->body || x->body_len == 0)
            return -EINVAL;
        if (x->body_len > max)
            return -EMSGSIZE;
        long pl = batch_props_len(x, &lk, &lkl, &lt, &ltl);
        if (pl < 0)
            return (int)pl;
        total += MQ_BATCH_ENTRY_FIXED + x->body_len + (size_t)pl;
        if (total > max)
            return -EMSGSIZE;
    }
    struct mqc_uniq_seq u;
    uint8_t *w = reserve(out, total, n, &u);
    if (!w)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct mqc_message *x = &m[i];
        size_t kl = opt_len(x->keys, &lk, &lkl), tl = opt_len(x->tags, &lt, &ltl);
        size_t pl = (size_t)batch_props_len(x, &lk, &lkl, &lt, &ltl);
        w = put_entry_head(w, MQ_BATCH_ENTRY_FIXED + x->body_len + pl, x->flag, x->body,
                           x->body_len);
        mq_put_be16(w, (uint16_t)pl);
        uint8_t *id = put_shared_props(w + 2, x, kl, tl);
        w = put_uniq_wait(id, &u);
        if (i == 0) {
            memcpy(uniq, id, 32);
            uniq[32] = 0;
        }
    }
    out->len += total;
    return 0;
}

/* The properties shared by every message (the user's, KEYS, TAGS and "UNIQ_KEY\1") are written
 * once, into the first entry, and copied from there. */
int mqc__batch_encode_bodies(const struct mqc_message *t, const struct mqc_body *b, size_t n,
                             size_t max, struct mq_buf *out, char uniq[33])
{
    if (n == 0 || !t->topic || mq_check_topic(t->topic, strlen(t->topic)) || t->delay_level)
        return -EINVAL;
    size_t kl = t->keys ? strlen(t->keys) : 0, tl = t->tags ? strlen(t->tags) : 0;
    size_t pl = mqc__props_len(t->props_len, kl, tl);
    size_t shared = pl - (PROP_UNIQ_LEN - 9) - (sizeof(PROP_WAIT) - 1); /* up to "UNIQ_KEY\1" */
    size_t total = 0;
    if (pl > 32767)
        return -EMSGSIZE;
    for (size_t i = 0; i < n; i++) {
        if (!b[i].p || b[i].len == 0)
            return -EINVAL;
        if (b[i].len > max)
            return -EMSGSIZE;
        total += MQ_BATCH_ENTRY_FIXED + b[i].len + pl;
    }
    if (total > max)
        return -EMSGSIZE;
    struct mqc_uniq_seq u;
    uint8_t *w = reserve(out, total, n, &u), *first = NULL;
    if (!w)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        w = put_entry_head(w, MQ_BATCH_ENTRY_FIXED + b[i].len + pl, t->flag, b[i].p, b[i].len);
        mq_put_be16(w, (uint16_t)pl);
        w += 2;
        if (first) {
            memcpy(w, first, shared);
            w += shared;
        } else {
            first = w;
            w = put_shared_props(w, t, kl, tl);
        }
        w = put_uniq_wait(w, &u);
    }
    memcpy(uniq, first + shared, 32);
    uniq[32] = 0;
    out->len += total;
    return 0;
}

/* mq_msg.c — commitlog record encode/decode/validation, properties and offset message ids
 * (docs/FORMATS.md §1.1). Decoding treats every byte as untrusted: each length is checked against
 * the bytes available before it is used. */
#include "common/mq_msg.h"

#include <errno.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_util.h"

_Static_assert(MQ_MSG_HDR_V4 == 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2,
               "record fixed part, FORMATS.md 1.1");

static size_t host_len(const struct mq_host *h)
{
    return h->v6 ? 20 : 8;
}

int64_t mq_msg_record_size(const struct mq_msg *m)
{
    if (m->topic_len == 0 || m->topic_len > MQ_MSG_TOPIC_MAX || m->props_len > MQ_MSG_PROPS_MAX)
        return -EINVAL;
    return (int64_t)MQ_MSG_HDR_V4 + (int64_t)(host_len(&m->born_host) - 8) +
           (int64_t)(host_len(&m->store_host) - 8) + m->body_len + m->topic_len + m->props_len;
}

static uint8_t *put_host(uint8_t *p, const struct mq_host *h)
{
    size_t alen = h->v6 ? 16 : 4;
    memcpy(p, h->addr, alen);
    mq_put_be32(p + alen, h->port);
    return p + alen + 4;
}

int64_t mq_msg_encode_crc(const struct mq_msg *m, uint32_t crc, uint8_t *buf, size_t cap)
{
    int64_t total = mq_msg_record_size(m);
    if (total < 0)
        return total;
    if ((uint64_t)total > cap)
        return -ENOSPC;
    int32_t sysflag = m->sysflag & ~(MQ_SYSFLAG_BORNHOST_V6 | MQ_SYSFLAG_STOREHOST_V6);
    if (m->born_host.v6)
        sysflag |= MQ_SYSFLAG_BORNHOST_V6;
    if (m->store_host.v6)
        sysflag |= MQ_SYSFLAG_STOREHOST_V6;
    uint8_t *p = buf;
    mq_put_be32(p, (uint32_t)total);
    mq_put_be32(p + 4, MQ_MSG_MAGIC_V1);
    mq_put_be32(p + 8, crc);
    mq_put_be32(p + 12, (uint32_t)m->queue_id);
    mq_put_be32(p + 16, (uint32_t)m->flag);
    mq_put_be64(p + 20, (uint64_t)m->queue_offset);
    mq_put_be64(p + 28, (uint64_t)m->phys_offset);
    mq_put_be32(p + 36, (uint32_t)sysflag);
    mq_put_be64(p + 40, (uint64_t)m->born_ts);
    p = put_host(p + 48, &m->born_host);
    mq_put_be64(p, (uint64_t)m->store_ts);
    p = put_host(p + 8, &m->store_host);
    mq_put_be32(p, (uint32_t)m->reconsume_times);
    mq_put_be64(p + 4, (uint64_t)m->prepared_tx_offset);
    mq_put_be32(p + 12, m->body_len);
    p += 16;
    if (m->body_len)
        memcpy(p, m->body, m->body_len);
    p += m->body_len;
    *p++ = (uint8_t)m->topic_len;
    memcpy(p, m->topic, m->topic_len);
    p += m->topic_len;
    mq_put_be16(p, m->props_len);
    p += 2;
    if (m->props_len)
        memcpy(p, m->props, m->props_len);
    return total;
}

int64_t mq_msg_encode(const struct mq_msg *m, uint8_t *buf, size_t cap)
{
    return mq_msg_encode_crc(m, mq_crc32(m->body, m->body_len), buf, cap);
}

static const uint8_t *get_host(const uint8_t *p, int v6, struct mq_host *h)
{
    size_t alen = v6 ? 16 : 4;
    memset(h, 0, sizeof(*h));
    h->v6 = (uint8_t)(v6 != 0);
    memcpy(h->addr, p, alen);
    h->port = mq_get_be32(p + alen);
    return p + alen + 4;
}

/* The index of the first byte 0, 1 or 2 in p[i, len), or len: eight bytes at a time, inline
 * (names and values are some ten bytes long, where a call to memchr costs more than the search). */
static inline size_t find_low(const char *p, size_t i, size_t len)
{
    const uint64_t ones = 0x0101010101010101ull;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t t = (w - 3 * ones) & ~w & (ones << 7); /* bytes under 3; the lowest is exact */
        if (t)
            return i + ((size_t)__builtin_ctzll(t) >> 3); /* little-endian: the first byte */
    }
    for (; i < len; i++)
        if ((unsigned char)p[i] < 3)
            return i;
    return len;
}

/* The index of the first byte c (1 or 2) in p[i, len), or len. */
static inline size_t find_sep(const char *p, size_t i, size_t len, char c)
{
    while ((i = find_low(p, i, len)) < len && p[i] != c)
        i++;
    return i;
}

/* One NAME 0x01 VALUE [0x02] pair of props at *pos (RocketMQ tolerates a missing final
 * 0x02): 1 with the pair and *pos past it, 0 at the end, -EBADMSG when no 0x01 follows. */
static inline int props_next(const char *props, size_t len, size_t *pos, const char **name,
                             size_t *nlen, const char **val, size_t *vlen)
{
    size_t i = *pos;
    if (i >= len)
        return 0;
    size_t sep = find_sep(props, i, len, 1);
    if (sep == len)
        return -EBADMSG;
    size_t v = sep + 1, end = find_sep(props, v, len, 2);
    *name = props + i;
    *nlen = sep - i;
    *val = props + v;
    *vlen = end - v;
    *pos = end < len ? end + 1 : len;
    return 1;
}

int mq_props_next(const char *props, size_t len, size_t *pos, const char **name, size_t *nlen,
                  const char **val, size_t *vlen)
{
    return props_next(props, len, pos, name, nlen, val, vlen);
}

int mq_props_check(const char *props, size_t len)
{
    /* props_next's pairs in one pass over the bytes under 3, and no NUL byte */
    size_t name = 0, i = 0;
    int in_value = 0;
    while ((i = find_low(props, i, len)) < len) {
        char c = props[i];
        if (c == 0)
            return -EBADMSG;
        if (!in_value && c == 1) {
            if (i == name)
                return -EBADMSG; /* an empty name */
            in_value = 1;
        } else if (in_value && c == 2) {
            in_value = 0;
            name = i + 1;
        }
        i++;
    }
    return in_value || name == len ? 0 : -EBADMSG; /* else a name without 0x01 */
}

int64_t mq_msg_decode(const uint8_t *p, size_t n, uint32_t max_body, int flags, struct mq_msg *out)
{
    static const struct mq_msg zero; /* copied, not memset: no `rep stos` per record */
    *out = zero;
    if (n < 8)
        return -ENODATA;
    uint32_t total = mq_get_be32(p);
    uint32_t magic = mq_get_be32(p + 4);
    if (total == 0 && magic == 0)
        return -ENODATA;
    if (magic == MQ_MSG_MAGIC_BLANK) {
        if (total < 8)
            return MQ_CORRUPT_BKPT;
        out->total_size = total;
        out->magic = magic;
        return total;
    }
    if (magic != MQ_MSG_MAGIC_V1 && magic != MQ_MSG_MAGIC_V2)
        return MQ_CORRUPT_BKPT;
    if (total > n || total < MQ_MSG_HDR_V4)
        return MQ_CORRUPT_BKPT;
    out->total_size = total;
    out->magic = magic;
    out->body_crc = mq_get_be32(p + 8);
    out->queue_id = (int32_t)mq_get_be32(p + 12);
    out->flag = (int32_t)mq_get_be32(p + 16);
    out->queue_offset = (int64_t)mq_get_be64(p + 20);
    out->phys_offset = (int64_t)mq_get_be64(p + 28);
    out->sysflag = (int32_t)mq_get_be32(p + 36);
    out->born_ts = (int64_t)mq_get_be64(p + 40);
    int born6 = (out->sysflag & MQ_SYSFLAG_BORNHOST_V6) != 0;
    int store6 = (out->sysflag & MQ_SYSFLAG_STOREHOST_V6) != 0;
    size_t fixed =
        MQ_MSG_HDR_V4 + (born6 ? 12 : 0) + (store6 ? 12 : 0) + (magic == MQ_MSG_MAGIC_V2 ? 1 : 0);
    if (total < fixed)
        return MQ_CORRUPT_BKPT;
    const uint8_t *q = get_host(p + 48, born6, &out->born_host);
    out->store_ts = (int64_t)mq_get_be64(q);
    q = get_host(q + 8, store6, &out->store_host);
    out->reconsume_times = (int32_t)mq_get_be32(q);
    out->prepared_tx_offset = (int64_t)mq_get_be64(q + 4);
    uint32_t blen = mq_get_be32(q + 12);
    q += 16;
    /* fixed already counts the length fields; the variable parts must fit in total */
    if (blen > total - fixed || (max_body && blen > max_body))
        return MQ_CORRUPT_BKPT;
    out->body = q;
    out->body_len = blen;
    q += blen;
    uint32_t tlen;
    if (magic == MQ_MSG_MAGIC_V2) {
        tlen = mq_get_be16(q);
        q += 2;
    } else {
        tlen = *q++;
        if (tlen > MQ_MSG_TOPIC_MAX) /* a negative Java byte */
            return MQ_CORRUPT_BKPT;
    }
    if (tlen == 0 || tlen > total - fixed - blen)
        return MQ_CORRUPT_BKPT;
    out->topic = (const char *)q;
    out->topic_len = (uint16_t)tlen;
    q += tlen;
    uint32_t plen = mq_get_be16(q);
    q += 2;
    if (plen > MQ_MSG_PROPS_MAX || fixed + blen + tlen + plen != total)
        return MQ_CORRUPT_BKPT;
    out->props = (const char *)q;
    out->props_len = (uint16_t)plen;
    if ((flags & MQ_MSG_CHECK_CRC) && mq_crc32(out->body, blen) != out->body_crc)
        return MQ_CORRUPT_BKPT;
    if ((flags & MQ_MSG_CHECK_STRICT) &&
        ((magic == MQ_MSG_MAGIC_V1 && mq_check_topic(out->topic, tlen) != 0) ||
         mq_props_check(out->props, plen) != 0))
        return MQ_CORRUPT_BKPT;
    return total;
}

int mq_props_foreach(const char *props, size_t len,
                     int (*fn)(const char *name, size_t nlen, const char *val, size_t vlen,
                               void *arg),
                     void *arg)
{
    size_t pos = 0, nlen, vlen;
    const char *name, *val;
    int r;
    while ((r = props_next(props, len, &pos, &name, &nlen, &val, &vlen)) == 1) {
        int rc = fn(name, nlen, val, vlen, arg);
        if (rc)
            return rc;
    }
    return r < 0 ? MQ_CORRUPT_BKPT : 0;
}

struct props_find {
    const char *name;
    size_t nlen;
    const char *val;
    size_t vlen;
};

static int find_cb(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    struct props_find *f = arg;
    if (nlen != f->nlen || memcmp(name, f->name, nlen) != 0)
        return 0;
    f->val = val;
    f->vlen = vlen;
    return 1;
}

int mq_props_get(const char *props, size_t len, const char *name, const char **val, size_t *vlen)
{
    struct props_find f = {name, strlen(name), NULL, 0};
    int rc = mq_props_foreach(props, len, find_cb, &f);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -ENOENT;
    *val = f.val;
    *vlen = f.vlen;
    return 0;
}

int mq_props_add(struct mq_buf *b, const char *name, const char *value)
{
    if (strpbrk(name, "\x01\x02") || strpbrk(value, "\x01\x02") || !*name)
        return -EINVAL;
    int rc = mq_buf_append_str(b, name);
    if (!rc)
        rc = mq_buf_append(b, "\x01", 1);
    if (!rc)
        rc = mq_buf_append_str(b, value);
    if (!rc)
        rc = mq_buf_append(b, "\x02", 1);
    return rc;
}

int mq_props_copy_except(const char *props, size_t len, const char *const *drop, size_t ndrop,
                         struct mq_buf *b)
{
    size_t pos = 0, nlen, vlen;
    const char *name, *val;
    int r;
    while ((r = props_next(props, len, &pos, &name, &nlen, &val, &vlen)) == 1) {
        int keep = nlen > 0;
        for (size_t k = 0; keep && k < ndrop; k++)
            keep = !(strlen(drop[k]) == nlen && memcmp(drop[k], name, nlen) == 0);
        if (keep && (mq_buf_append(b, name, nlen) || mq_buf_append(b, "\x01", 1) ||
                     mq_buf_append(b, val, vlen) || mq_buf_append(b, "\x02", 1)))
            return -ENOMEM;
    }
    return r; /* 0, or -EBADMSG, quietly: the bytes may be a client's */
}

int mq_delay_levels_parse(const char *text, int64_t *ms, int max)
{
    int n = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        int64_t v = 0;
        const char *d = p;
        while (*p >= '0' && *p <= '9' && v < ((int64_t)1 << 30))
            v = v * 10 + (*p++ - '0');
        int64_t unit = *p == 's'   ? 1000
                       : *p == 'm' ? 60000
                       : *p == 'h' ? 3600000
                       : *p == 'd' ? 86400000
                                   : 0;
        if (p == d || !unit || (p[1] != ' ' && p[1] != '\0') || n == max)
            return -EINVAL;
        ms[n++] = v * unit;
        p++;
    }
    return n ? n : -EINVAL;
}

int mq_msgid_host(const struct mq_host *store_host, char *out)
{
    uint8_t raw[20];
    size_t alen = store_host->v6 ? 16 : 4;
    memcpy(raw, store_host->addr, alen);
    mq_put_be32(raw + alen, store_host->port);
    mq_hex_put(out, raw, alen + 4);
    return (int)(2 * (alen + 4));
}

void mq_msgid_offset(int64_t phys_offset, char *out)
{
    uint8_t raw[8];
    mq_put_be64(raw, (uint64_t)phys_offset);
    mq_hex_put(out, raw, 8);
}

int mq_msgid_encode(const struct mq_host *store_host, int64_t phys_offset, char *out)
{
    int n = mq_msgid_host(store_host, out);
    mq_msgid_offset(phys_offset, out + n);
    out[n + 16] = 0;
    return n + 16;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mq_msgid_decode(const char *id, size_t len, struct mq_host *store_host, int64_t *phys_offset)
{
    uint8_t raw[28];
    if (len != 32 && len != 56)
        return -EINVAL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(id[2 * i]), lo = hexval(id[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    size_t alen = len == 56 ? 16 : 4;
    memset(store_host, 0, sizeof(*store_host));
    store_host->v6 = (uint8_t)(len == 56);
    memcpy(store_host->addr, raw, alen);
    store_host->port = mq_get_be32(raw + alen);
    *phys_offset = (int64_t)mq_get_be64(raw + alen + 4);
    return 0;
}

/* mq_bytes.c — the growable byte buffer (see mq_bytes.h). */
#include "common/mq_bytes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void mq_buf_init(struct mq_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void mq_buf_destroy(struct mq_buf *b)
{
    free(b->data);
    mq_buf_init(b);
}

int mq_buf_reserve(struct mq_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return -ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mq_buf_append(struct mq_buf *b, const void *p, size_t n)
{
    int rc = mq_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int mq_buf_append_str(struct mq_buf *b, const char *s)
{
    return mq_buf_append(b, s, strlen(s));
}

int mq_buf_printf(struct mq_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = mq_buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int mq_buf_put_be16(struct mq_buf *b, uint16_t v)
{
    uint8_t t[2];
    mq_put_be16(t, v);
    return mq_buf_append(b, t, 2);
}

int mq_buf_put_be32(struct mq_buf *b, uint32_t v)
{
    uint8_t t[4];
    mq_put_be32(t, v);
    return mq_buf_append(b, t, 4);
}

int mq_buf_put_be64(struct mq_buf *b, uint64_t v)
{
    uint8_t t[8];
    mq_put_be64(t, v);
    return mq_buf_append(b, t, 8);
}

uint8_t *mq_buf_steal(struct mq_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    mq_buf_init(b);
    return p;
}

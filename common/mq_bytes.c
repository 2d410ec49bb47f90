/* mq_bytes.c — the growable byte buffer and hex digits of bytes (see mq_bytes.h). */
#include "common/mq_bytes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* "00".."FF": two characters per byte in one copy */
static const char hex2[513] = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
                              "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"
                              "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"
                              "606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F"
                              "808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F"
                              "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF"
                              "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
                              "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF";

void mq_hex_put(char *out, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hex2 + 2 * in[i], 2);
}

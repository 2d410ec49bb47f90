/* mq_bytes.h — big-endian field access and a growable byte buffer.
 *
 * RocketMQ's record and frame formats are big-endian (docs/FORMATS.md); every module reads and
 * writes them through these helpers rather than through casts of unaligned pointers.
 */
#ifndef MQ_BYTES_H
#define MQ_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t mq_get_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t mq_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t mq_get_be64(const uint8_t *p)
{
    return (uint64_t)mq_get_be32(p) << 32 | mq_get_be32(p + 4);
}
static inline void mq_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void mq_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void mq_put_be64(uint8_t *p, uint64_t v)
{
    mq_put_be32(p, (uint32_t)(v >> 32));
    mq_put_be32(p + 4, (uint32_t)v);
}

/* Writes n bytes as 2n upper-case hex digits (no terminator): message ids, UNIQ_KEY. */
void mq_hex_put(char *out, const uint8_t *in, size_t n);

/* A growable buffer. Caller-owned storage: mq_buf_init / mq_buf_destroy. `data` is owned by the
 * buffer and valid until the next call that grows it or until mq_buf_destroy. */
struct mq_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

void mq_buf_init(struct mq_buf *b);
void mq_buf_destroy(struct mq_buf *b);
/* Makes room for `extra` more bytes. Returns 0 or -ENOMEM. */
int mq_buf_reserve(struct mq_buf *b, size_t extra);
int mq_buf_append(struct mq_buf *b, const void *p, size_t n);
int mq_buf_append_str(struct mq_buf *b, const char *s);
int mq_buf_printf(struct mq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mq_buf_put_be16(struct mq_buf *b, uint16_t v);
int mq_buf_put_be32(struct mq_buf *b, uint32_t v);
int mq_buf_put_be64(struct mq_buf *b, uint64_t v);
/* Hands the bytes to the caller (free() them) and leaves the buffer empty. */
uint8_t *mq_buf_steal(struct mq_buf *b, size_t *len);

#endif

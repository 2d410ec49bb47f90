/* mq_batch.c — SEND_BATCH_MESSAGE body encoding and decoding (see mq_batch.h). */
#include "common/mq_batch.h"

#include <errno.h>

#include "common/mq_bytes.h"

int mq_batch_append(struct mq_buf *out, int32_t flag, const void *body, size_t body_len,
                    const char *props, size_t props_len)
{
    if (props_len > 32767 || body_len > INT32_MAX - MQ_BATCH_ENTRY_FIXED - props_len)
        return -EMSGSIZE;
    size_t total = MQ_BATCH_ENTRY_FIXED + body_len + props_len;
    int rc = mq_buf_reserve(out, total);
    if (rc)
        return rc;
    uint8_t *p = out->data + out->len;
    mq_put_be32(p, (uint32_t)total);
    mq_put_be32(p + 4, 0);
    mq_put_be32(p + 8, 0);
    mq_put_be32(p + 12, (uint32_t)flag);
    mq_put_be32(p + 16, (uint32_t)body_len);
    if (body_len)
        memcpy(p + 20, body, body_len);
    mq_put_be16(p + 20 + body_len, (uint16_t)props_len);
    if (props_len)
        memcpy(p + 22 + body_len, props, props_len);
    out->len += total;
    return 0;
}

int mq_batch_next(const uint8_t *p, size_t len, size_t *pos, struct mq_batch_entry *e)
{
    if (*pos == len)
        return 0;
    if (*pos > len || len - *pos < MQ_BATCH_ENTRY_FIXED)
        return -EBADMSG;
    const uint8_t *q = p + *pos;
    size_t avail = len - *pos;
    uint32_t total = mq_get_be32(q);
    uint32_t body_len = mq_get_be32(q + 16);
    if (total < MQ_BATCH_ENTRY_FIXED || total > avail || body_len > total - MQ_BATCH_ENTRY_FIXED)
        return -EBADMSG;
    uint16_t props_len = mq_get_be16(q + 20 + body_len);
    if ((size_t)MQ_BATCH_ENTRY_FIXED + body_len + props_len != total)
        return -EBADMSG;
    e->flag = (int32_t)mq_get_be32(q + 12);
    e->body = q + 20;
    e->body_len = body_len;
    e->props = (const char *)(q + 22 + body_len);
    e->props_len = props_len;
    *pos += total;
    return 1;
}

/* mq_batch.h — the body of SEND_BATCH_MESSAGE: RocketMQ's MessageDecoder.encodeMessages, one
 * entry per message (docs/FORMATS.md Part 2, "Batch body"):
 *
 *   OFFSET  SIZE  FIELD
 *   0       4     TOTALSIZE (this entry, incl. itself)
 *   4       4     MAGICCODE (0 on the wire)
 *   8       4     BODYCRC (0 on the wire)
 *   12      4     FLAG
 *   16      4     BODYLENGTH = n
 *   20      n     BODY
 *   20+n    2     PROPERTIESLENGTH = m
 *   22+n    m     PROPERTIES ("name\x01value\x02"...)
 *
 * Big-endian. The client encodes, the broker decodes (untrusted input: every length checked).
 */
#ifndef MQ_BATCH_H
#define MQ_BATCH_H

#include <stddef.h>
#include <stdint.h>

struct mq_buf;

#define MQ_BATCH_ENTRY_FIXED 22 /* bytes of an entry besides body and properties */

/* Appends one entry. Returns 0, -EMSGSIZE (properties over 32767 bytes) or -ENOMEM. */
int mq_batch_append(struct mq_buf *out, int32_t flag, const void *body, size_t body_len,
                    const char *props, size_t props_len);

/* One decoded entry; pointers borrow from the batch body. */
struct mq_batch_entry {
    int32_t flag;
    const uint8_t *body;
    size_t body_len;
    const char *props; /* not NUL-terminated */
    size_t props_len;
};

/* Decodes the entry at *pos of (p, len) and advances *pos. Returns 1 with an entry, 0 at the
 * clean end, or -EBADMSG when the entry is malformed (lengths that disagree or overrun). */
int mq_batch_next(const uint8_t *p, size_t len, size_t *pos, struct mq_batch_entry *e);

#endif

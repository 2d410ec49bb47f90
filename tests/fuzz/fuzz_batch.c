/* fuzz_batch.c — libFuzzer target for the SEND_BATCH_MESSAGE body decoder (common/mq_batch.c,
 * mq_batch_next): the input is a batch body from the network. Every entry it yields must lie
 * inside the input, positions must only move forward, and re-encoding the decoded entries with
 * mq_batch_append must give back exactly the bytes they were decoded from (apart from MAGIC and
 * BODYCRC, which are 0 on the wire and ignored).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_batch.h"
#include "common/mq_bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    struct mq_batch_entry e;
    int rc;
    while ((rc = mq_batch_next(data, size, &pos, &e)) == 1) {
        const uint8_t *body = e.body, *props = (const uint8_t *)e.props;
        if (body < data || body + e.body_len > data + size || props < data ||
            props + e.props_len > data + size || pos > size)
            abort();
        struct mq_buf b;
        mq_buf_init(&b);
        if (mq_batch_append(&b, e.flag, e.body, e.body_len, e.props, e.props_len) != 0)
            abort(); /* whatever decodes must encode */
        size_t start = (size_t)(body - 20 - data);
        if (start + b.len != pos || memcmp(b.data, data + start, 4) != 0 ||
            memcmp(b.data + 12, data + start + 12, b.len - 12) != 0)
            abort();
        mq_buf_destroy(&b);
    }
    if (rc != 0 && rc != -74 /* -EBADMSG */)
        abort();
    return 0;
}

/* fuzz_record.c — libFuzzer target for the commitlog record reader (common/mq_msg.c,
 * mq_msg_decode) as recovery and pulls use it: the input is a stretch of commitlog bytes read
 * record by record — without checks, with the body CRC check, and with CRC + strict checks, as
 * recovery does. A record accepted must lie inside the input, its fields must span exactly
 * TOTALSIZE, a stricter check must never accept what a looser one refused, and re-encoding an
 * accepted record must reproduce its bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_record(const uint8_t *p, size_t n, const struct mq_msg *m, int64_t len)
{
    if (len <= 0 || (size_t)len > n || m->total_size != (uint32_t)len)
        abort();
    if (m->body < p || m->body + m->body_len > p + len || (const uint8_t *)m->topic < p ||
        (const uint8_t *)m->topic + m->topic_len > p + len || (const uint8_t *)m->props < p ||
        (const uint8_t *)m->props + m->props_len > p + len)
        abort();
    if (m->magic != MQ_MSG_MAGIC_V1) /* we only write V1 */
        return;
    /* re-encode with the stored CRC: the same bytes (host bits come from the decoded hosts) */
    uint8_t *buf = malloc((size_t)len);
    if (!buf)
        abort();
    int64_t w = mq_msg_encode_crc(m, m->body_crc, buf, (size_t)len);
    if (w == len && memcmp(buf, p, (size_t)len) != 0) {
        /* SYSFLAG host bits are recomputed from the hosts; compare the rest */
        if (memcmp(buf, p, 36) != 0 || memcmp(buf + 40, p + 40, (size_t)len - 40) != 0)
            abort();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        mq_log_set_level((enum mq_log_level)(MQ_LOG_ERROR + 1)); /* corrupt input is the norm */
        quiet = 1;
    }
    static const int modes[] = {0, MQ_MSG_CHECK_CRC, MQ_MSG_CHECK_CRC | MQ_MSG_CHECK_STRICT};
    int64_t prev_len[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        size_t pos = 0;
        while (pos < size) {
            struct mq_msg m;
            int64_t len =
                mq_msg_decode(data + pos, size - pos, k == 2 ? 4u << 20 : 0, modes[k], &m);
            if (len < 0) {
                if (len != -ENODATA && len != MQ_ECORRUPT)
                    abort();
                break;
            }
            if (m.magic == MQ_MSG_MAGIC_BLANK) {
                /* "the rest of this file": TOTALSIZE may exceed what is in hand (every caller
                 * stops here; recovery requires it to end exactly at the file's end) */
                if (len < 8 || m.total_size != (uint32_t)len)
                    abort();
                break;
            }
            check_record(data + pos, size - pos, &m, len);
            pos += (size_t)len;
        }
        prev_len[k] = (int64_t)pos;
        /* a stricter reader never gets further than a looser one */
        if (k > 0 && prev_len[k] > prev_len[k - 1])
            abort();
    }
    return 0;
}

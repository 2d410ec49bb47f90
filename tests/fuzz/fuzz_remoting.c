/* fuzz_remoting.c — libFuzzer target for the remoting codec: the input is treated as a byte
 * stream of frames (rpc_frame_check + rpc_frame_decode, as a connection reads them), as a bare
 * JSON header, as a bare binary header and as a fastjson body; every command that decodes is
 * re-encoded in both serializations and must decode again to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_bytes.h"
#include "remoting/remoting.h"

static void check_roundtrip(const struct rpc_cmd *c)
{
    for (int ser = 0; ser < 2; ser++) {
        struct mq_buf b;
        struct rpc_cmd *d = NULL;
        size_t flen;
        mq_buf_init(&b);
        int rc = rpc_cmd_encode(c, ser, &b);
        if (rc == 0) {
            /* encoding succeeded: the result must be a valid frame with the same fields */
            if (rpc_frame_check(b.data, b.len, SIZE_MAX, &flen) != 0 || flen != b.len ||
                rpc_frame_decode(b.data, b.len, NULL, &d) != 0)
                abort();
            if (d->code != (ser ? (int16_t)c->code : c->code) || d->opaque != c->opaque ||
                d->flag != c->flag || d->body_len != c->body_len)
                abort();
            if (c->body_len && memcmp(d->body, c->body, c->body_len) != 0)
                abort();
            const char *r1 = rpc_cmd_remark(c), *r2 = rpc_cmd_remark(d);
            /* an empty binary remark decodes as none; JSON turns bytes that are not UTF-8
             * into U+FFFD, so only the binary form is byte-exact */
            if (ser == RPC_SER_ROCKETMQ && r1 && *r1 && (!r2 || strcmp(r1, r2) != 0))
                abort();
            if (ser == RPC_SER_ROCKETMQ && d->ext_n != c->ext_n)
                abort();
        }
        rpc_cmd_free(d);
        mq_buf_destroy(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. a stream of frames */
    size_t pos = 0;
    while (pos < size) {
        size_t flen;
        if (rpc_frame_check(data + pos, size - pos, 1u << 20, &flen) != 0)
            break;
        void *copy = malloc(flen);
        if (!copy)
            break;
        memcpy(copy, data + pos, flen);
        struct rpc_cmd *cmd = NULL;
        if (rpc_frame_decode(copy, flen, copy, &cmd) == 0) {
            (void)rpc_cmd_ext_get(cmd, "topic");
            check_roundtrip(cmd);
        }
        rpc_cmd_free(cmd);
        pos += flen;
    }
    /* 2. bare headers */
    struct rpc_cmd *c = rpc_cmd_new(0);
    if (c && rpc_header_decode_json(data, size, c) == 0)
        check_roundtrip(c);
    rpc_cmd_free(c);
    c = rpc_cmd_new(0);
    if (c && rpc_header_decode_bin(data, size, c) == 0)
        check_roundtrip(c);
    rpc_cmd_free(c);
    /* 3. a fastjson body */
    json_t *v = rpc_json_loads(data, size);
    json_decref(v);
    return 0;
}

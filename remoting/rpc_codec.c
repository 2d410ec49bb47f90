/* rpc_codec.c — the remoting frame and RocketMQ's binary header serialization
 * (RemotingCommand.java decode/encode, RocketMQSerializable.java; docs/FORMATS.md Part 2,
 * "Frame" and "Binary header"). Pure functions over byte ranges: every length is checked
 * against the bytes that remain before it is used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_bytes.h"
#include "common/mq_log.h"
#include "remoting/remoting_int.h"

#define BIN_FIXED 17 /* code 2, language 1, version 2, opaque 4, flag 4, remark len 4 */

int rpc_frame_check(const uint8_t *p, size_t avail, size_t max_frame, size_t *frame_len)
{
    if (avail < 4)
        return -EAGAIN;
    uint32_t len = mq_get_be32(p);
    if (len > INT32_MAX || (size_t)len + 4 > max_frame)
        return -EMSGSIZE;
    if (len < 4)
        return -EBADMSG;
    if (avail < (size_t)len + 4)
        return -EAGAIN;
    *frame_len = (size_t)len + 4;
    return 0;
}

int rpc_frame_decode(const uint8_t *p, size_t len, void *keep, struct rpc_cmd **out)
{
    struct rpc_cmd *cmd = NULL;
    int rc = -EBADMSG;
    *out = NULL;
    if (len < RPC_FRAME_PREFIX || mq_get_be32(p) != len - 4)
        goto out;
    uint32_t x = mq_get_be32(p + 4);
    uint32_t ser = x >> 24, hlen = x & 0xFFFFFF;
    if (hlen > len - RPC_FRAME_PREFIX)
        goto out;
    cmd = rpc_cmd_new(0);
    if (!cmd) {
        rc = -ENOMEM;
        goto out;
    }
    if (ser == RPC_SER_JSON)
        rc = rpc_header_decode_json(p + RPC_FRAME_PREFIX, hlen, cmd);
    else if (ser == RPC_SER_ROCKETMQ)
        rc = rpc_header_decode_bin(p + RPC_FRAME_PREFIX, hlen, cmd);
    else
        rc = -EBADMSG;
    if (rc)
        goto out;
    cmd->serialize = (uint8_t)ser;
    size_t blen = len - RPC_FRAME_PREFIX - hlen;
    const uint8_t *body = p + RPC_FRAME_PREFIX + hlen;
    if (blen == 0) {
        /* no body: RemotingCommand.body stays null */
    } else if (keep) {
        rpc_cmd_set_body_ref(cmd, body, blen, free, keep);
        keep = NULL;
    } else if ((rc = rpc_cmd_set_body_copy(cmd, body, blen)) != 0) {
        goto out;
    }
    *out = cmd;
    cmd = NULL;
    rc = 0;
out:
    rpc_cmd_free(cmd);
    free(keep);
    return rc;
}

int rpc_header_decode_bin(const uint8_t *p, size_t len, struct rpc_cmd *cmd)
{
    size_t pos = 0;
    if (len < BIN_FIXED)
        return -EBADMSG;
    int rc = rpc__cmd_reserve(cmd, len + 16, 8);
    if (rc)
        return rc;
    cmd->code = (int16_t)mq_get_be16(p);
    cmd->language = p[2];
    cmd->version = (int16_t)mq_get_be16(p + 3);
    cmd->opaque = (int32_t)mq_get_be32(p + 5);
    cmd->flag = (int32_t)mq_get_be32(p + 9);
    uint32_t rlen = mq_get_be32(p + 13);
    pos = BIN_FIXED;
    if (rlen > len - pos)
        return -EBADMSG;
    if (rlen > 0) {
        uint32_t off;
        if ((rc = rpc__str_add(cmd, (const char *)p + pos, rlen, &off)) != 0)
            return rc;
        cmd->remark = off + 1;
        pos += rlen;
    }
    if (len - pos < 4)
        return -EBADMSG;
    uint32_t elen = mq_get_be32(p + pos);
    pos += 4;
    if (elen > len - pos)
        return -EBADMSG;
    size_t end = pos + elen;
    while (pos < end) {
        if (end - pos < 2)
            return -EBADMSG;
        uint16_t kl = mq_get_be16(p + pos);
        pos += 2;
        if (kl > 0x7FFF || kl > end - pos)
            return -EBADMSG;
        const char *k = (const char *)p + pos;
        pos += kl;
        if (end - pos < 4)
            return -EBADMSG;
        uint32_t vl = mq_get_be32(p + pos);
        pos += 4;
        if (vl > end - pos)
            return -EBADMSG;
        if ((rc = rpc__ext_append(cmd, k, kl, (const char *)p + pos, vl)) != 0)
            return rc;
        pos += vl;
    }
    if (pos != len)
        return -EBADMSG; /* trailing bytes after extFields */
    return 0;
}

static int encode_bin(const struct rpc_cmd *cmd, struct mq_buf *out)
{
    const char *remark = rpc_cmd_remark(cmd);
    size_t rlen = remark ? strlen(remark) : 0, elen = 0;
    for (uint32_t i = 0; i < cmd->ext_n; i++) {
        if (cmd->ext[i].klen > 0x7FFF)
            return -EINVAL;
        elen += 2 + (size_t)cmd->ext[i].klen + 4 + cmd->ext[i].vlen;
    }
    if (rlen > INT32_MAX || elen > INT32_MAX)
        return -EMSGSIZE;
    int rc = mq_buf_reserve(out, BIN_FIXED + rlen + 4 + elen);
    if (rc)
        return rc;
    uint8_t *w = out->data + out->len;
    mq_put_be16(w, (uint16_t)cmd->code);
    w[2] = cmd->language;
    mq_put_be16(w + 3, (uint16_t)cmd->version);
    mq_put_be32(w + 5, (uint32_t)cmd->opaque);
    mq_put_be32(w + 9, (uint32_t)cmd->flag);
    mq_put_be32(w + 13, (uint32_t)rlen);
    w += BIN_FIXED;
    if (rlen) {
        memcpy(w, remark, rlen);
        w += rlen;
    }
    mq_put_be32(w, (uint32_t)elen);
    w += 4;
    for (uint32_t i = 0; i < cmd->ext_n; i++) {
        const char *k = cmd->strs + cmd->ext[i].key, *v = cmd->strs + cmd->ext[i].val;
        size_t kl = cmd->ext[i].klen, vl = cmd->ext[i].vlen;
        mq_put_be16(w, (uint16_t)kl);
        memcpy(w + 2, k, kl);
        w += 2 + kl;
        mq_put_be32(w, (uint32_t)vl);
        memcpy(w + 4, v, vl);
        w += 4 + vl;
    }
    out->len = (size_t)(w - out->data);
    return 0;
}

int rpc_cmd_encode_head(const struct rpc_cmd *cmd, int ser, struct mq_buf *out)
{
    size_t start = out->len;
    /* room for a typical header (a send's reply has ~170 bytes): one allocation, no realloc */
    int rc = mq_buf_reserve(out, RPC_FRAME_PREFIX + 248);
    if (rc)
        return rc;
    out->len += RPC_FRAME_PREFIX;
    if (ser == RPC_SER_JSON)
        rc = rpc__header_encode_json(cmd, out);
    else if (ser == RPC_SER_ROCKETMQ)
        rc = encode_bin(cmd, out);
    else
        rc = -EINVAL;
    if (rc)
        goto fail;
    size_t hlen = out->len - start - RPC_FRAME_PREFIX;
    if (hlen > 0xFFFFFF || hlen + cmd->body_len + 4 > INT32_MAX) {
        rc = -EMSGSIZE;
        goto fail;
    }
    mq_put_be32(out->data + start, (uint32_t)(4 + hlen + cmd->body_len));
    mq_put_be32(out->data + start + 4, (uint32_t)ser << 24 | (uint32_t)hlen);
    return 0;
fail:
    out->len = start;
    return rc;
}

int rpc_cmd_encode(const struct rpc_cmd *cmd, int ser, struct mq_buf *out)
{
    int rc = rpc_cmd_encode_head(cmd, ser, out);
    if (rc == 0 && cmd->body)
        rc = mq_buf_append(out, cmd->body, cmd->body_len);
    for (uint32_t i = 0; rc == 0 && i < cmd->nsegs; i++)
        rc = mq_buf_append(out, cmd->segs[i].p, cmd->segs[i].len);
    return rc;
}

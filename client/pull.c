/* pull.c — PULL_MESSAGE: building the request and decoding the response, whose body is raw
 * commitlog records (docs/FORMATS.md §1.1). Compressed bodies are inflated (zlib, RocketMQ 4.x)
 * or decompressed (zstd, compression type bits); the tag filter is re-checked on exact strings
 * because the broker matches hash codes only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "client/client_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_msg.h"
#include "common/mq_tags.h"
#include "remoting/remoting.h"

#define REQ_PULL_MESSAGE      11
#define PULL_SYS_COMMIT       1 /* PullSysFlag */
#define PULL_SYS_SUSPEND      2
#define PULL_SYS_SUBSCRIPTION 4
#define MAX_INFLATED          (64u << 20)

/* What a pull result owns: the response (bodies point into it) and inflated bodies. */
struct pull_priv {
    struct rpc_cmd *resp;
    void **bufs;
    size_t nbufs;
};

void mqc_pull_result_destroy(struct mqc_pull_result *r)
{
    struct pull_priv *p = r->priv_;
    if (p) {
        for (size_t i = 0; i < p->nbufs; i++)
            free(p->bufs[i]);
        free(p->bufs);
        rpc_cmd_free(p->resp);
        free(p);
    }
    free(r->msgs);
    memset(r, 0, sizeof(*r));
}

int mqc_msg_prop(const struct mqc_msg *m, const char *name, const char **val, size_t *len)
{
    int rc = mq_props_get(m->props, m->props_len, name, val, len);
    return rc == 0 ? 0 : -ENOENT;
}

struct rpc_cmd *mqc__pull_request(const char *group, const struct mqc_mq *mq, const char *expr,
                                  int sql, int64_t offset, int max_msgs, int suspend_ms,
                                  int64_t commit_offset)
{
    struct rpc_cmd *c = rpc_cmd_new(REQ_PULL_MESSAGE);
    if (!c)
        return NULL;
    int sys = PULL_SYS_SUBSCRIPTION | (suspend_ms > 0 ? PULL_SYS_SUSPEND : 0) |
              (commit_offset >= 0 ? PULL_SYS_COMMIT : 0);
    int rc = rpc_cmd_ext_set(c, "consumerGroup", group);
    rc = rc ? rc : rpc_cmd_ext_set(c, "topic", mq->topic);
    rc = rc ? rc : rpc_cmd_ext_set_int64(c, "queueId", mq->queue_id);
    rc = rc ? rc : rpc_cmd_ext_set_int64(c, "queueOffset", offset);
    rc = rc ? rc : rpc_cmd_ext_set_int64(c, "maxMsgNums", max_msgs);
    rc = rc ? rc : rpc_cmd_ext_set_int64(c, "sysFlag", sys);
    rc = rc ? rc : rpc_cmd_ext_set_int64(c, "commitOffset", commit_offset >= 0 ? commit_offset : 0);
    rc =
        rc ? rc : rpc_cmd_ext_set_int64(c, "suspendTimeoutMillis", suspend_ms > 0 ? suspend_ms : 0);
    rc = rc ? rc : rpc_cmd_ext_set(c, "subscription", expr && *expr ? expr : "*");
    rc = rc ? rc : rpc_cmd_ext_set_int64(c, "subVersion", 0);
    rc = rc ? rc : rpc_cmd_ext_set(c, "expressionType", sql ? "SQL92" : "TAG");
    if (rc) {
        rpc_cmd_free(c);
        return NULL;
    }
    return c;
}

/* Inflates a compressed body into a new buffer kept by the result. */
static int decompress(struct pull_priv *pp, const struct mq_msg *rec, const uint8_t **body,
                      size_t *len)
{
    int type = rec->sysflag & MQ_SYSFLAG_COMPRESS_MASK;
    void *out = NULL;
    size_t olen = 0;
    if (type == MQ_SYSFLAG_COMPRESS_ZSTD) {
        unsigned long long sz = ZSTD_getFrameContentSize(rec->body, rec->body_len);
        if (sz == ZSTD_CONTENTSIZE_ERROR || sz == ZSTD_CONTENTSIZE_UNKNOWN || sz > MAX_INFLATED)
            return -EBADMSG;
        out = malloc(sz ? sz : 1);
        if (!out)
            return -ENOMEM;
        size_t n = ZSTD_decompress(out, sz, rec->body, rec->body_len);
        if (ZSTD_isError(n)) {
            free(out);
            return -EBADMSG;
        }
        olen = n;
    } else if (type == 0 || type == MQ_SYSFLAG_COMPRESS_ZLIB) {
        size_t cap = rec->body_len * 4 + 64;
        for (;;) {
            if (cap > MAX_INFLATED)
                cap = MAX_INFLATED;
            void *p = realloc(out, cap);
            if (!p) {
                free(out);
                return -ENOMEM;
            }
            out = p;
            uLongf dl = cap;
            int zr = uncompress(out, &dl, rec->body, rec->body_len);
            if (zr == Z_OK) {
                olen = dl;
                break;
            }
            if (zr != Z_BUF_ERROR || cap == MAX_INFLATED) {
                free(out);
                return -EBADMSG;
            }
            cap *= 2;
        }
    } else {
        return -ENOTSUP; /* LZ4: not supported */
    }
    void **bufs = realloc(pp->bufs, (pp->nbufs + 1) * sizeof(*bufs));
    if (!bufs) {
        free(out);
        return -ENOMEM;
    }
    pp->bufs = bufs;
    pp->bufs[pp->nbufs++] = out;
    *body = out;
    *len = olen;
    return 0;
}

/* How many records the body holds, from their leading TOTALSIZE fields alone (FORMATS.md,
 * commitlog record); stops at the first implausible size, which decode_body then reports. */
static size_t count_records(const uint8_t *p, size_t len)
{
    size_t n = 0;
    for (size_t pos = 0; len - pos >= 4; n++) {
        uint32_t size = mq_get_be32(p + pos);
        if (size < 4 || size > len - pos)
            break;
        pos += size;
    }
    return n;
}

static int decode_body(struct pull_priv *pp, const struct mqc_mq *mq, const struct mq_tags *tags,
                       struct mqc_pull_result *out)
{
    const uint8_t *p = pp->resp->body;
    size_t len = pp->resp->body_len, pos = 0, cap = count_records(p, len);
    /* One allocation of the right size: growing by doubling copied the (large) mqc_msg array
     * several times per pull, the biggest cost of a 1,024-message pull after decoding. */
    if (cap > 0 && !(out->msgs = malloc(cap * sizeof(*out->msgs))))
        return -ENOMEM;
    size_t topic_n = strnlen(mq->topic, sizeof(mq->topic) - 1) + 1;
    size_t broker_n = strnlen(mq->broker, sizeof(mq->broker) - 1) + 1;
    while (pos < len) {
        struct mq_msg rec;
        int64_t n = mq_msg_decode(p + pos, len - pos, 0, 0, &rec);
        if (n <= 0 || rec.magic == MQ_MSG_MAGIC_BLANK) {
            mq_warn("pull from %s:%d: malformed record at %zu: %s", mq->broker, mq->queue_id, pos,
                    mq_strerror(n < 0 ? (int)n : MQ_ECORRUPT));
            return -EBADMSG;
        }
        pos += (size_t)n;
        if (tags && !tags->all) {
            const char *tag = NULL;
            size_t tlen = 0;
            if (mq_props_get(rec.props, rec.props_len, MQ_PROP_TAGS, &tag, &tlen) != 0)
                tag = NULL;
            if (!mq_tags_match(tags, tag, tlen))
                continue;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 32;
            struct mqc_msg *m = realloc(out->msgs, cap * sizeof(*m));
            if (!m)
                return -ENOMEM;
            out->msgs = m;
        }
        struct mqc_msg *m = &out->msgs[out->n];
        /* Every field is set below; of the queue only the strings are copied (not the whole
         * 260-byte struct, nor a memset of the message first): this loop runs per message. */
        memcpy(m->mq.topic, mq->topic, topic_n);
        memcpy(m->mq.broker, mq->broker, broker_n);
        m->mq.queue_id = mq->queue_id;
        if (mq->queue_id < 0) { /* lookups: each record names its own topic and queue */
            m->mq.queue_id = rec.queue_id;
            snprintf(m->mq.topic, sizeof(m->mq.topic), "%.*s", (int)rec.topic_len, rec.topic);
        }
        m->queue_offset = rec.queue_offset;
        m->phys_offset = rec.phys_offset;
        m->born_ts = rec.born_ts;
        m->store_ts = rec.store_ts;
        m->flag = rec.flag;
        m->sysflag = rec.sysflag;
        m->reconsume_times = rec.reconsume_times;
        m->body = rec.body;
        m->body_len = rec.body_len;
        m->props = rec.props;
        m->props_len = rec.props_len;
        mq_msgid_encode(&rec.store_host, rec.phys_offset, m->msg_id);
        if (rec.sysflag & MQ_SYSFLAG_COMPRESSED) {
            int rc = decompress(pp, &rec, &m->body, &m->body_len);
            if (rc)
                return rc;
        }
        out->n++;
    }
    return 0;
}

int mqc__pull_parse(struct rpc_cmd *resp, const struct mqc_mq *mq, const struct mq_tags *tags,
                    struct mqc_pull_result *out)
{
    memset(out, 0, sizeof(*out));
    struct pull_priv *pp = calloc(1, sizeof(*pp));
    if (!pp) {
        rpc_cmd_free(resp);
        return -ENOMEM;
    }
    pp->resp = resp;
    out->priv_ = pp;
    switch (resp->code) {
    case RPC_SUCCESS:
        out->status = MQC_PULL_FOUND;
        break;
    case RPC_PULL_NOT_FOUND:
        out->status = MQC_PULL_NO_NEW_MSG;
        break;
    case RPC_PULL_RETRY_IMMEDIATELY:
        out->status = MQC_PULL_NO_MATCHED;
        break;
    case RPC_PULL_OFFSET_MOVED:
        out->status = MQC_PULL_OFFSET_ILLEGAL;
        break;
    default: {
        int err = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
        mqc_pull_result_destroy(out);
        return err;
    }
    }
    if (rpc_cmd_ext_get_int64(resp, "nextBeginOffset", &out->next_offset) ||
        rpc_cmd_ext_get_int64(resp, "minOffset", &out->min_offset) ||
        rpc_cmd_ext_get_int64(resp, "maxOffset", &out->max_offset)) {
        mqc_pull_result_destroy(out);
        return -EBADMSG;
    }
    if (out->status == MQC_PULL_FOUND && resp->body) {
        int rc = decode_body(pp, mq, tags, out);
        if (rc) {
            mqc_pull_result_destroy(out);
            return rc;
        }
    }
    return 0;
}

int mqc__records_parse(struct rpc_cmd *resp, const struct mqc_mq *mq, struct mqc_pull_result *out)
{
    memset(out, 0, sizeof(*out));
    struct pull_priv *pp = calloc(1, sizeof(*pp));
    if (!pp) {
        rpc_cmd_free(resp);
        return -ENOMEM;
    }
    pp->resp = resp;
    out->priv_ = pp;
    out->status = MQC_PULL_FOUND;
    int rc = resp->body ? decode_body(pp, mq, NULL, out) : 0;
    if (rc)
        mqc_pull_result_destroy(out);
    return rc;
}

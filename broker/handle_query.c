/* handle_query.c — lookups: QUERY_MESSAGE (by key, through the index files), VIEW_MESSAGE_BY_ID
 * (by physical offset), and the file interface's extension requests over the rendered-bytes
 * index (docs/FORMATS.md Part 3): a queue's rendered size and the mapping between file offsets
 * and queue offsets, so mqfs can serve exact, seekable files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_msg.h"

#define QUERY_MAX 64

/* Whether a record carries key in KEYS (space-separated) or as its UNIQ_KEY. */
static int has_key(const struct mq_msg *m, const char *key, size_t klen)
{
    const char *v;
    size_t vlen;
    if (mq_props_get(m->props, m->props_len, MQ_PROP_UNIQ_KEY, &v, &vlen) == 0 && vlen == klen &&
        memcmp(v, key, klen) == 0)
        return 1;
    if (mq_props_get(m->props, m->props_len, MQ_PROP_KEYS, &v, &vlen) != 0)
        return 0;
    const char *end = v + vlen;
    while (v < end) {
        const char *sp = memchr(v, ' ', (size_t)(end - v));
        size_t n = sp ? (size_t)(sp - v) : (size_t)(end - v);
        if (n == klen && memcmp(v, key, klen) == 0)
            return 1;
        v += n + 1;
    }
    return 0;
}

static int on_query_message(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                            void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    const char *key = topic ? brk__need(req, "key", resp) : NULL;
    if (!key)
        return RPC_REPLY;
    int32_t max = QUERY_MAX;
    int64_t begin = 0, end = INT64_MAX;
    (void)rpc_cmd_ext_get_int32(req, "maxNum", &max);
    (void)rpc_cmd_ext_get_int64(req, "beginTimestamp", &begin);
    (void)rpc_cmd_ext_get_int64(req, "endTimestamp", &end);
    if (max <= 0 || max > QUERY_MAX)
        max = QUERY_MAX;
    if (end <= 0)
        end = INT64_MAX;
    int64_t phys[QUERY_MAX];
    size_t klen = strlen(key);
    int n = store_query_by_key(b->store, topic, strlen(topic), key, klen, begin, end, phys, max);
    struct mq_buf body;
    mq_buf_init(&body);
    int64_t last_phys = 0, last_ts = 0;
    for (int i = 0; i < n; i++) {
        struct store_get_result *got = NULL;
        struct mq_msg m;
        if (store_get_by_phys(b->store, phys[i], &got))
            continue;
        /* The index compares hashes only: keep records whose topic and key really match. */
        if (mq_msg_decode(got->msgs[0].data, got->msgs[0].len, 0, 0, &m) > 0 &&
            m.topic_len == strlen(topic) && memcmp(m.topic, topic, m.topic_len) == 0 &&
            has_key(&m, key, klen) &&
            mq_buf_append(&body, got->msgs[0].data, got->msgs[0].len) == 0) {
            if (phys[i] > last_phys) {
                last_phys = phys[i];
                last_ts = m.store_ts;
            }
        }
        store_release(b->store, got);
    }
    if (body.len == 0) {
        mq_buf_destroy(&body);
        *resp = brk__resp(req, RPC_QUERY_NOT_FOUND,
                          "can not find message, maybe time range "
                          "not correct");
        return RPC_REPLY;
    }
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    if (!*resp || rpc_cmd_ext_set_int64(*resp, "indexLastUpdateTimestamp", last_ts) ||
        rpc_cmd_ext_set_int64(*resp, "indexLastUpdatePhyoffset", last_phys)) {
        rpc_cmd_free(*resp);
        mq_buf_destroy(&body);
        *resp = NULL;
        return -ENOMEM;
    }
    size_t len;
    uint8_t *p = mq_buf_steal(&body, &len);
    rpc_cmd_take_body(*resp, p, len);
    return RPC_REPLY;
}

static int on_view_by_id(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                         void *arg)
{
    struct broker *b = arg;
    int64_t phys;
    if (rpc_cmd_ext_get_int64(req, "offset", &phys) || phys < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "the request header lacks a valid 'offset'");
        return RPC_REPLY;
    }
    struct store_get_result *got = NULL;
    int rc = store_get_by_phys(b->store, phys, &got);
    if (rc) {
        char remark[96];
        snprintf(remark, sizeof(remark), "can not find message by the offset %lld",
                 (long long)phys);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
        return RPC_REPLY;
    }
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    rc = *resp ? rpc_cmd_set_body_copy(*resp, got->msgs[0].data, got->msgs[0].len) : -ENOMEM;
    store_release(b->store, got);
    if (rc) {
        rpc_cmd_free(*resp);
        *resp = NULL;
        return rc;
    }
    return RPC_REPLY;
}

/* ---- the file interface's extension (FORMATS.md Part 3) ---- */

static int on_render(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    int32_t qid;
    if (!topic)
        return RPC_REPLY;
    if (rpc_cmd_ext_get_int32(req, "queueId", &qid) || qid < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "queueId must be a non-negative integer");
        return RPC_REPLY;
    }
    size_t tl = strlen(topic);
    int64_t base = 0, size = 0, v = 0, within = 0;
    int rc = store_rendered_size(b->store, topic, tl, qid, &base, &size);
    const char *key = NULL;
    if (rc == 0 && req->code == REQ_MQFS_RENDER_FIND) {
        int64_t off;
        if (rpc_cmd_ext_get_int64(req, "fileOffset", &off)) {
            *resp = brk__resp(req, RPC_SYSTEM_ERROR, "fileOffset must be an integer");
            return RPC_REPLY;
        }
        rc = store_render_find(b->store, topic, tl, qid, off, &v, &within);
        key = "queueOffset";
    } else if (rc == 0 && req->code == REQ_MQFS_RENDER_OFFSET) {
        int64_t qoff;
        if (rpc_cmd_ext_get_int64(req, "queueOffset", &qoff)) {
            *resp = brk__resp(req, RPC_SYSTEM_ERROR, "queueOffset must be an integer");
            return RPC_REPLY;
        }
        rc = store_render_offset(b->store, topic, tl, qid, qoff, &v);
        key = "fileOffset";
    }
    if (rc == MQ_EOFFSET_MOVED || rc == -ENXIO) {
        *resp = brk__resp(req, rc == MQ_EOFFSET_MOVED ? RPC_PULL_OFFSET_MOVED : RPC_PULL_NOT_FOUND,
                          rc == MQ_EOFFSET_MOVED ? "below the retained start" : "past the end");
    } else if (rc) {
        *resp = brk__resp_errno(req, rc, "rendered index");
        return RPC_REPLY;
    } else {
        *resp = brk__resp(req, RPC_SUCCESS, NULL);
    }
    if (!*resp)
        return -ENOMEM;
    int e = rpc_cmd_ext_set_int64(*resp, "base", base);
    e = e ? e : rpc_cmd_ext_set_int64(*resp, "size", size);
    e = e ? e
          : rpc_cmd_ext_set_int64(*resp, "minOffset", store_min_offset(b->store, topic, tl, qid));
    e = e ? e
          : rpc_cmd_ext_set_int64(*resp, "maxOffset", store_max_offset(b->store, topic, tl, qid));
    e = e ? e
          : rpc_cmd_ext_set_int64(*resp, "lastStoreTimestamp",
                                  store_newest_time(b->store, topic, tl, qid, INT64_MAX));
    if (!e && key && (*resp)->code == RPC_SUCCESS) {
        e = rpc_cmd_ext_set_int64(*resp, key, v);
        if (!e && req->code == REQ_MQFS_RENDER_FIND)
            e = rpc_cmd_ext_set_int64(*resp, "within", within);
    }
    if (e) {
        rpc_cmd_free(*resp);
        *resp = NULL;
        return -ENOMEM;
    }
    return RPC_REPLY;
}

/* Completes a read's answer *resp (NULL: out of memory): sets n int64 fields, and the body
 * when rc is 0. Frees body. */
static int finish_read(struct rpc_cmd **resp, int rc, struct mq_buf *body, const char *const *keys,
                       const int64_t *vals, size_t n)
{
    for (size_t i = 0; *resp && i < n; i++) {
        if (rpc_cmd_ext_set_int64(*resp, keys[i], vals[i])) {
            rpc_cmd_free(*resp);
            *resp = NULL;
        }
    }
    if (*resp && rc == 0 && body->len) {
        size_t len;
        uint8_t *p = mq_buf_steal(body, &len);
        rpc_cmd_take_body(*resp, p, len);
    }
    mq_buf_destroy(body);
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int on_read(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    int32_t qid;
    int64_t off, max = 1 << 20;
    if (!topic)
        return RPC_REPLY;
    if (rpc_cmd_ext_get_int32(req, "queueId", &qid) || qid < -1 ||
        rpc_cmd_ext_get_int64(req, "fileOffset", &off) || off < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "queueId (-1: the whole topic) and fileOffset "
                          "must be integers");
        return RPC_REPLY;
    }
    (void)rpc_cmd_ext_get_int64(req, "maxBytes", &max);
    struct mq_buf body;
    mq_buf_init(&body);
    int64_t base = 0, size = 0, newest = -1;
    struct brk_topic t;
    int rc;
    if (qid >= 0)
        rc = brk__render_read(b, topic, qid, off, max, &body, &base, &size, &newest);
    else if (brk_topics_get(b->topics, topic, &t) == 0)
        rc =
            brk__render_topic_read(b, topic, t.read_queues, off, max, &body, &base, &size, &newest);
    else
        rc = -ENOENT;
    if (rc == MQ_EOFFSET_MOVED)
        *resp = brk__resp(req, RPC_PULL_OFFSET_MOVED, "below the retained start");
    else if (rc)
        *resp = brk__resp_errno(req, rc, "read rendered view");
    else
        *resp = brk__resp(req, RPC_SUCCESS, NULL);
    const char *keys[] = {"base", "size", "nextFileOffset", "lastStoreTimestamp"};
    int64_t vals[] = {base, size, off + (int64_t)body.len, newest};
    return finish_read(resp, rc, &body, keys, vals, 4);
}

/* MQFS_READ_RECORDS: raw records from a position, filtered by tag hash (view_records.c). */
static int on_read_records(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    const char *expr = rpc_cmd_ext_get(req, "subscription");
    int32_t qid, max_msgs = 256;
    int64_t pos, max_bytes = 1 << 20;
    if (!topic)
        return RPC_REPLY;
    if (rpc_cmd_ext_get_int32(req, "queueId", &qid) || qid < -1 ||
        rpc_cmd_ext_get_int64(req, "position", &pos) || pos < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "queueId (-1: the whole topic) and position must be integers");
        return RPC_REPLY;
    }
    (void)rpc_cmd_ext_get_int32(req, "maxMsgNums", &max_msgs);
    (void)rpc_cmd_ext_get_int64(req, "maxBytes", &max_bytes);
    struct mq_buf body;
    mq_buf_init(&body);
    int64_t next = pos, min = 0, max = 0;
    struct brk_topic t;
    int nq = brk_topics_get(b->topics, topic, &t) == 0 ? t.read_queues : 0; /* unknown: empty */
    int rc = brk__records_read(b, topic, qid, nq, pos, expr, max_msgs, max_bytes, &body, &next,
                               &min, &max);
    *resp = rc ? brk__resp_errno(req, rc, "read records") : brk__resp(req, RPC_SUCCESS, NULL);
    const char *keys[] = {"nextBeginOffset", "minOffset", "maxOffset"};
    int64_t vals[] = {next, min, max};
    return finish_read(resp, rc ? -1 : 0, &body, keys, vals, rc ? 0 : 3);
}

void brk__register_query_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_MQFS_READ_RECORDS, on_read_records, b, RPC_HANDLER_WORKER);
    rpc_server_handle(b->srv, REQ_MQFS_READ, on_read, b, RPC_HANDLER_WORKER);
    rpc_server_handle(b->srv, REQ_QUERY_MESSAGE, on_query_message, b, RPC_HANDLER_WORKER);
    rpc_server_handle(b->srv, REQ_VIEW_MESSAGE_BY_ID, on_view_by_id, b, 0);
    rpc_server_handle(b->srv, REQ_MQFS_RENDER_INFO, on_render, b, 0);
    rpc_server_handle(b->srv, REQ_MQFS_RENDER_FIND, on_render, b, 0);
    rpc_server_handle(b->srv, REQ_MQFS_RENDER_OFFSET, on_render, b, 0);
}

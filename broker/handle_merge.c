/* handle_merge.c — MQFS_RENDER_AT_TIME (FORMATS.md Part 3): what mqfs needs to merge a topic's
 * views from several brokers by store time. For each asked time t the answer gives the topic
 * view's byte offset of the first message stored at or after t and that message's store time,
 * and the store time of the newest message stored before t (what mqfs shows as the merged
 * file's mtime), plus the broker's store-time watermark and its retention horizon; optionally
 * the list of the distinct store times from a time on (below the watermark) with their
 * offsets, so that mqfs merges many messages per request. Store times never decrease in
 * commitlog order, so "stored before t" is a prefix of the view. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

#define AT_TIME_MAX 16 /* times per request */
#define TIMES_MAX   64 /* listed store times per request */

/* Parses "t1,t2,..." (at most AT_TIME_MAX non-negative integers). Returns the count or -1. */
static int parse_times(const char *s, int64_t *out)
{
    int n = 0;
    while (s && *s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || n == AT_TIME_MAX || (*end && *end != ','))
            return -1;
        out[n++] = v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static int set_list(struct rpc_cmd *resp, const char *key, const int64_t *v, int n)
{
    char buf[TIMES_MAX * 21 + 1];
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%" PRId64, i ? "," : "", v[i]);
    return rpc_cmd_ext_set(resp, key, buf);
}

static int on_render_at_time(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                             void *arg)
{
    struct broker *b = arg;
    const char *topic = brk__need(req, "topic", resp);
    if (!topic)
        return RPC_REPLY;
    int32_t qid;
    int64_t ts[AT_TIME_MAX], offs[AT_TIME_MAX], next[AT_TIME_MAX], prev[AT_TIME_MAX];
    const char *list = rpc_cmd_ext_get(req, "timestamps");
    int n = list ? parse_times(list, ts) : 0;
    if (!list && rpc_cmd_ext_get(req, "timestamp"))
        n = rpc_cmd_ext_get_int64(req, "timestamp", &ts[0]) || ts[0] < 0 ? -1 : 1;
    if (rpc_cmd_ext_get_int32(req, "queueId", &qid) || qid != -1 || n < 0) {
        *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                          "queueId must be -1 and timestamp(s) at most 16 non-negative integers");
        return RPC_REPLY;
    }
    struct brk_topic t;
    if (brk_topics_get(b->topics, topic, &t) != 0) {
        *resp = brk__resp_errno(req, -ENOENT, "topic");
        return RPC_REPLY;
    }
    if (t.read_queues > BRK_MAX_QUEUES) { /* the topic table holds no more (meta.h) */
        *resp = brk__resp_errno(req, -EINVAL, "topic view by time");
        return RPC_REPLY;
    }
    size_t tl = strlen(topic);
    /* The watermark first: the lookups below then see every message stored before it. */
    int64_t w = store_watermark(b->store);
    int64_t since = store_retained_since(b->store);
    int rc = since < 0 ? (int)since : 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = store_topic_at_time(b->store, topic, tl, t.read_queues, ts[i], &offs[i], &next[i],
                                 &prev[i]);
    /* The listing: the distinct store times from fromTimestamp on, below the watermark. */
    int64_t from = -1, count = TIMES_MAX, times[TIMES_MAX], toffs[TIMES_MAX], tend = 0;
    int nt = 0;
    if (rc == 0 && rpc_cmd_ext_get(req, "fromTimestamp")) {
        (void)rpc_cmd_ext_get_int64(req, "count", &count);
        if (rpc_cmd_ext_get_int64(req, "fromTimestamp", &from) || from < 0 || count < 1 ||
            count > TIMES_MAX) {
            *resp = brk__resp(req, RPC_SYSTEM_ERROR,
                              "fromTimestamp must be non-negative and count in 1..64");
            return RPC_REPLY;
        }
        nt = store_topic_times(b->store, topic, tl, t.read_queues, from, w, (int)count, times,
                               toffs, &tend);
        rc = nt < 0 ? nt : 0;
    }
    if (rc) {
        *resp = brk__resp_errno(req, rc, "topic view by time");
        return RPC_REPLY;
    }
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    if (!*resp)
        return -ENOMEM;
    int e = rpc_cmd_ext_set_int64(*resp, "watermark", w);
    e = e ? e : rpc_cmd_ext_set_int64(*resp, "retainedSince", since);
    e = e ? e : set_list(*resp, "fileOffsets", offs, n);
    e = e ? e : set_list(*resp, "storeTimestamps", next, n);
    e = e ? e : set_list(*resp, "prevStoreTimestamps", prev, n);
    if (!e && from >= 0) {
        e = set_list(*resp, "times", times, nt);
        e = e ? e : set_list(*resp, "timeOffsets", toffs, nt);
        e = e ? e : rpc_cmd_ext_set_int64(*resp, "timesEnd", tend);
    }
    if (!e && n > 0) {
        e = rpc_cmd_ext_set_int64(*resp, "fileOffset", offs[0]);
        e = e ? e : rpc_cmd_ext_set_int64(*resp, "storeTimestamp", next[0]);
    }
    if (e) {
        rpc_cmd_free(*resp);
        *resp = NULL;
        return -ENOMEM;
    }
    return RPC_REPLY;
}

void brk__register_merge_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_MQFS_RENDER_AT_TIME, on_render_at_time, b, RPC_HANDLER_WORKER);
}

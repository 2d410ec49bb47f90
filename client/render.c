/* render.c — the file interface's view of a queue, read through the broker's extension
 * requests (docs/FORMATS.md Part 3: MQFS_RENDER_INFO 30001, MQFS_READ 30004): each message as
 * its body + "\n", with exact sizes and byte offsets; MQFS_READ_RECORDS (30005), the raw
 * records from a position with a tag filter, for the views mqfs renders itself; and
 * MQFS_RENDER_AT_TIME (30006), a topic view's positions by store time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/mq_err.h"
#include "common/mq_tags.h"
#include "remoting/remoting.h"

#define REQ_MQFS_RENDER_INFO    30001
#define REQ_MQFS_READ           30004
#define REQ_MQFS_READ_RECORDS   30005
#define REQ_MQFS_RENDER_AT_TIME 30006

static struct rpc_cmd *request(int code, const char *topic, int queue_id)
{
    struct rpc_cmd *req = rpc_cmd_new(code);
    if (req &&
        (rpc_cmd_ext_set(req, "topic", topic) || rpc_cmd_ext_set_int64(req, "queueId", queue_id))) {
        rpc_cmd_free(req);
        req = NULL;
    }
    return req;
}

/* Sends req (freed here) to the broker at addr. */
static int call(struct mqc_admin *a, const char *addr, struct rpc_cmd *req, struct rpc_cmd **resp)
{
    int rc = rpc_client_call(a->inst->rpc, addr, req, a->inst->cfg.send_timeout_ms, resp);
    rpc_cmd_free(req);
    return rc;
}

static int read_info(const struct rpc_cmd *resp, struct mqc_view_info *info)
{
    if (!info)
        return 0;
    memset(info, 0, sizeof(*info));
    if (rpc_cmd_ext_get_int64(resp, "base", &info->base) ||
        rpc_cmd_ext_get_int64(resp, "size", &info->size))
        return -EBADMSG;
    (void)rpc_cmd_ext_get_int64(resp, "minOffset", &info->min_offset);
    (void)rpc_cmd_ext_get_int64(resp, "maxOffset", &info->max_offset);
    if (rpc_cmd_ext_get_int64(resp, "lastStoreTimestamp", &info->last_ts))
        info->last_ts = -1; /* a broker older than the field */
    return 0;
}

int mqc_view_info(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                  struct mqc_view_info *info)
{
    struct rpc_cmd *req = request(REQ_MQFS_RENDER_INFO, topic, queue_id), *resp = NULL;
    if (!req)
        return -ENOMEM;
    int rc = call(a, addr, req, &resp);
    if (rc)
        return rc;
    rc = resp->code == RPC_SUCCESS ? read_info(resp, info)
                                   : mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    rpc_cmd_free(resp);
    return rc;
}

int mqc_view_read(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                  int64_t offset, void *buf, size_t len, size_t *got, struct mqc_view_info *info)
{
    *got = 0;
    struct rpc_cmd *req = request(REQ_MQFS_READ, topic, queue_id), *resp = NULL;
    if (!req || rpc_cmd_ext_set_int64(req, "fileOffset", offset) ||
        rpc_cmd_ext_set_int64(req, "maxBytes", (int64_t)len)) {
        rpc_cmd_free(req);
        return -ENOMEM;
    }
    int rc = call(a, addr, req, &resp);
    if (rc)
        return rc;
    if (resp->code == RPC_PULL_OFFSET_MOVED)
        rc = MQ_EOFFSET_MOVED;
    else if (resp->code != RPC_SUCCESS)
        rc = mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    if (rc == 0 || rc == MQ_EOFFSET_MOVED) {
        int irc = read_info(resp, info);
        rc = rc ? rc : irc;
    }
    if (rc == 0 && resp->body_len) {
        size_t n = resp->body_len < len ? resp->body_len : len;
        memcpy(buf, resp->body, n);
        *got = n;
    }
    rpc_cmd_free(resp);
    return rc;
}

int mqc_view_records(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                     int64_t pos, const char *expr, int max_msgs, int64_t max_bytes,
                     struct mqc_pull_result *out)
{
    memset(out, 0, sizeof(*out));
    struct mq_tags tags;
    int rc = mq_tags_parse(expr, &tags);
    if (rc)
        return rc;
    struct rpc_cmd *req = request(REQ_MQFS_READ_RECORDS, topic, queue_id), *resp = NULL;
    if (!req || rpc_cmd_ext_set_int64(req, "position", pos) ||
        rpc_cmd_ext_set_int64(req, "maxMsgNums", max_msgs) ||
        rpc_cmd_ext_set_int64(req, "maxBytes", max_bytes) ||
        rpc_cmd_ext_set(req, "subscription", expr && *expr ? expr : "*")) {
        rpc_cmd_free(req);
        mq_tags_destroy(&tags);
        return -ENOMEM;
    }
    rc = rpc_client_call(a->inst->rpc, addr, req, a->inst->cfg.send_timeout_ms, &resp);
    rpc_cmd_free(req);
    if (rc == 0) {
        struct mqc_mq mq = {.queue_id = queue_id};
        snprintf(mq.topic, sizeof(mq.topic), "%s", topic);
        /* Exact tags re-checked here: the broker matched hash codes only. */
        rc = mqc__pull_parse(resp, &mq, &tags, out);
        if (rc == 0 && out->status != MQC_PULL_FOUND) {
            mqc_pull_result_destroy(out);
            rc = -EBADMSG;
        }
    }
    mq_tags_destroy(&tags);
    return rc;
}

/* Parses a comma-separated list of at most max integers; *n gets the count. */
static int get_list(const struct rpc_cmd *resp, const char *key, int64_t *v, int max, int *n)
{
    const char *s = rpc_cmd_ext_get(resp, key);
    *n = 0;
    if (!s)
        return -EBADMSG;
    while (*s) {
        char *end;
        if (*n == max)
            return -EBADMSG;
        v[(*n)++] = strtoll(s, &end, 10);
        if (end == s || (*end != ',' && *end != 0))
            return -EBADMSG;
        s = *end ? end + 1 : end;
    }
    return 0;
}

static int read_times(const struct rpc_cmd *resp, int n, int listing, struct mqc_view_times *out)
{
    int got, got2;
    if (rpc_cmd_ext_get_int64(resp, "watermark", &out->watermark) ||
        rpc_cmd_ext_get_int64(resp, "retainedSince", &out->retained_since))
        return -EBADMSG;
    if (n && (get_list(resp, "fileOffsets", out->off, MQC_AT_TIME_MAX, &got) || got != n ||
              get_list(resp, "storeTimestamps", out->next, MQC_AT_TIME_MAX, &got) || got != n))
        return -EBADMSG;
    if (!n || get_list(resp, "prevStoreTimestamps", out->prev, MQC_AT_TIME_MAX, &got) || got != n)
        for (int i = 0; i < MQC_AT_TIME_MAX; i++)
            out->prev[i] = -1; /* none asked, or a broker older than the field */
    out->ntimes = 0;
    if (listing && (get_list(resp, "times", out->times, MQC_TIMES_MAX, &got) ||
                    get_list(resp, "timeOffsets", out->toffs, MQC_TIMES_MAX, &got2) ||
                    got != got2 || rpc_cmd_ext_get_int64(resp, "timesEnd", &out->tend)))
        return -EBADMSG;
    out->ntimes = listing ? got : 0;
    return 0;
}

int mqc_view_at_time(struct mqc_admin *a, const char *addr, const char *topic, const int64_t *t,
                     int n, int64_t from, struct mqc_view_times *out)
{
    if (n < 0 || n > MQC_AT_TIME_MAX)
        return -EINVAL;
    char list[MQC_AT_TIME_MAX * 21 + 1];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%lld", i ? "," : "",
                                (long long)t[i]);
    struct rpc_cmd *req = request(REQ_MQFS_RENDER_AT_TIME, topic, -1), *resp = NULL;
    if (!req || rpc_cmd_ext_set(req, "timestamps", list) ||
        (from >= 0 && (rpc_cmd_ext_set_int64(req, "fromTimestamp", from) ||
                       rpc_cmd_ext_set_int64(req, "count", MQC_TIMES_MAX)))) {
        rpc_cmd_free(req);
        return -ENOMEM;
    }
    int rc = call(a, addr, req, &resp);
    if (rc)
        return rc;
    rc = resp->code == RPC_SUCCESS ? read_times(resp, n, from >= 0, out)
                                   : mqc__errno_of_response(resp->code, rpc_cmd_remark(resp));
    rpc_cmd_free(resp);
    return rc;
}

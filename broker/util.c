/* util.c — response helpers and the single mapping from errno to RocketMQ response codes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_err.h"
#include "common/mq_util.h"

struct rpc_cmd *brk__resp(const struct rpc_cmd *req, int code, const char *remark)
{
    return rpc_cmd_new_response(req, code, remark);
}

struct rpc_cmd *brk__resp_json(const struct rpc_cmd *req, const json_t *body)
{
    struct rpc_cmd *resp = body ? brk__resp(req, RPC_SUCCESS, NULL) : NULL;
    if (resp && rpc_cmd_set_body_json(resp, body)) {
        rpc_cmd_free(resp);
        resp = NULL;
    }
    return resp;
}

struct rpc_cmd *brk__resp_errno(const struct rpc_cmd *req, int err, const char *what)
{
    int code;
    char remark[256];
    switch (err) {
    case -ENOSPC:
        /* Clients (ours: client/instance.c) recognise the "disk full" prefix. */
        code = RPC_SERVICE_NOT_AVAILABLE;
        snprintf(remark, sizeof(remark), "disk full: %s refused, the store is not writable", what);
        return brk__resp(req, code, remark);
    case -EMSGSIZE:
        code = RPC_MESSAGE_ILLEGAL;
        break;
    case -EINVAL:
    case -EBADMSG:
        code = RPC_MESSAGE_ILLEGAL;
        break;
    case -ENOENT:
        code = RPC_TOPIC_NOT_EXIST;
        break;
    case -EACCES:
    case -EPERM:
        code = RPC_NO_PERMISSION;
        break;
    case -EBUSY:
    case -EAGAIN:
        code = RPC_SYSTEM_BUSY;
        break;
    case -ETIMEDOUT:
        code = RPC_FLUSH_DISK_TIMEOUT;
        break;
    case -EIO:
        code = RPC_SERVICE_NOT_AVAILABLE;
        break;
    default:
        code = RPC_SYSTEM_ERROR;
        break;
    }
    snprintf(remark, sizeof(remark), "%s: %s", what,
             err == -EMSGSIZE ? "message too large" : mq_strerror(err));
    return brk__resp(req, code, remark);
}

const char *brk__need(const struct rpc_cmd *req, const char *key, struct rpc_cmd **resp)
{
    const char *v = rpc_cmd_ext_get(req, key);
    if (!v) {
        char remark[128];
        snprintf(remark, sizeof(remark), "the request header lacks '%s'", key);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
    }
    return v;
}

int brk__ensure_topic(struct broker *b, const char *topic, int queues, int create,
                      struct brk_topic *out)
{
    if (brk_topics_get(b->topics, topic, out) == 0)
        return 0;
    if (!create)
        return -ENOENT;
    if (mq_check_topic(topic, strlen(topic)))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", topic);
    out->read_queues = out->write_queues = queues;
    out->perm = BRK_PERM_READ | BRK_PERM_WRITE;
    int rc = brk_topics_put(b->topics, out);
    if (rc == 0)
        brk__register_soon(b);
    return rc;
}

int brk__ensure_group(struct broker *b, const char *group, struct brk_group *out)
{
    if (brk_groups_get(b->groups, group, out) == 0)
        return 0;
    if (!b->conf.auto_create_group)
        return -ENOENT;
    if (mq_check_topic(group, strlen(group)))
        return -EINVAL;
    brk_group_defaults(out, group);
    return brk_groups_put_later(b->groups, out);
}

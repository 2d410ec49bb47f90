/* handle_client.c — client bookkeeping requests: HEART_BEAT (consumer groups and their
 * subscriptions; creates the group and its %RETRY% topic), UNREGISTER_CLIENT,
 * GET_CONSUMER_LIST_BY_GROUP (what a consumer needs to rebalance), CHECK_CLIENT_CONFIG
 * (compiles an SQL92 subscription with enablePropertyFilter, else refuses it) and
 * GET_CONSUMER_CONNECTION_LIST (who is in a group). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_sql.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

static int on_heartbeat(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                        void *arg)
{
    struct broker *b = arg;
    struct brk_heartbeat hb;
    int rc =
        req->body ? brk_heartbeat_parse((const char *)req->body, req->body_len, &hb) : -EBADMSG;
    hb.language = req->language;
    hb.version = req->version;
    if (rc == -ENOMEM) {
        *resp = brk__resp_errno(req, rc, "decode the heartbeat");
        return RPC_REPLY;
    }
    if (rc) {
        char remark[128];
        if (rc == -E2BIG) /* say which limit, not "malformed" */
            snprintf(remark, sizeof(remark),
                     "HeartbeatData: a subscription expression is longer than %d bytes",
                     BRK_SUB_EXPR_MAX - 1);
        else
            snprintf(remark, sizeof(remark), "malformed HeartbeatData body");
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
        return RPC_REPLY;
    }
    int created = 0;
    for (size_t i = 0; i < hb.nconsumers; i++) {
        struct brk_group g;
        const char *group = hb.consumers[i].group;
        if (brk__ensure_group(b, group, &g) != 0)
            continue;
        /* Every group gets a retry topic, as RocketMQ's heartbeat handler does. */
        char retry[BRK_NAME_MAX];
        struct brk_topic t;
        if ((size_t)snprintf(retry, sizeof(retry), "%s%s", BRK_RETRY_PREFIX, group) < 128 &&
            brk_topics_get(b->topics, retry, &t) != 0) {
            created |= brk__ensure_topic(b, retry, g.retry_queue_nums > 0 ? g.retry_queue_nums : 1,
                                         1, &t) == 0;
        }
    }
    /* Stock clients ask the NameServers for %RETRY%<group> right after their first heartbeat
     * (docs/INTEROP.md): register before answering. This handler runs on a worker thread. */
    if (created)
        (void)brk__register_all(b, 0);
    rc = brk_consumers_heartbeat(b->consumers, &hb, conn, mq_mono_us() / 1000);
    brk__tx_producers(b->tx, &hb, conn, mq_mono_us() / 1000);
    brk_heartbeat_destroy(&hb);
    *resp = rc ? brk__resp_errno(req, rc, "heartbeat") : brk__resp(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int on_unregister_client(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                                void *arg)
{
    struct broker *b = arg;
    const char *cid = brk__need(req, "clientID", resp);
    if (!cid)
        return RPC_REPLY;
    const char *group = rpc_cmd_ext_get(req, "consumerGroup");
    if (group && *group)
        (void)brk_consumers_unregister(b->consumers, group, cid);
    *resp = brk__resp(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int on_consumer_list(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                            void *arg)
{
    struct broker *b = arg;
    const char *group = brk__need(req, "consumerGroup", resp);
    if (!group)
        return RPC_REPLY;
    char(*ids)[256] = NULL;
    size_t n = 0;
    int rc = brk_consumers_ids(b->consumers, group, &ids, &n);
    if (rc) {
        *resp = brk__resp_errno(req, rc, "consumer list");
        return RPC_REPLY;
    }
    if (n == 0) { /* RocketMQ answers SYSTEM_ERROR when the group has no live consumer */
        free(ids);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, "no consumer for this group");
        return RPC_REPLY;
    }
    json_t *list = json_array(), *root = json_object();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(ids[i]));
    json_object_set_new(root, "consumerIdList", list);
    free(ids);
    *resp = brk__resp_json(req, root);
    json_decref(root);
    return *resp ? RPC_REPLY : -ENOMEM;
}

/* CHECK_CLIENT_CONFIG: a stock client asks it before it subscribes with an expression that is
 * not a tag expression (SQL92). As RocketMQ's ClientManageProcessor.checkClientConfig: with
 * enablePropertyFilter=false such a subscription is refused (SYSTEM_ERROR); with true the
 * expression is compiled and one that does not compile is SUBSCRIPTION_PARSE_FAILED, its
 * message as the remark. A body that is not such JSON is SYSTEM_ERROR. */
static int on_check_client(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                           void *arg)
{
    struct broker *b = arg;
    json_error_t jerr;
    json_t *body = req->body ? json_loadb((const char *)req->body, req->body_len, 0, &jerr) : NULL;
    json_t *sd = json_object_get(body, "subscriptionData");
    const char *type = json_string_value(json_object_get(sd, "expressionType"));
    const char *expr = json_string_value(json_object_get(sd, "subString"));
    char remark[320];
    if (req->body_len && (!json_is_object(body) || (sd && !json_is_object(sd)))) {
        /* RocketMQ's CheckClientRequestBody.decode throws: the request fails (SYSTEM_ERROR).
         * Answering SUCCESS would tell the client an expression it never sent is fine. */
        snprintf(remark, sizeof(remark), "malformed CHECK_CLIENT_CONFIG body: %.200s",
                 body ? "not an object with an object subscriptionData" : jerr.text);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
    } else if (!sd || brk_expr_is_tag(type)) {
        *resp = brk__resp(req, RPC_SUCCESS, NULL);
    } else if (!b->conf.property_filter) {
        snprintf(remark, sizeof(remark),
                 "The broker does not support consumer to filter message by %.32s", type);
        *resp = brk__resp(req, RPC_SYSTEM_ERROR, remark);
    } else if (strcmp(type, "SQL92") != 0) {
        snprintf(remark, sizeof(remark), "unsupported expression type %.32s (TAG or SQL92)", type);
        *resp = brk__resp(req, RPC_SUBSCRIPTION_PARSE_FAILED, remark);
    } else if (expr && strlen(expr) >= BRK_SUB_EXPR_MAX) {
        /* a heartbeat carrying it would be refused: say so now */
        snprintf(remark, sizeof(remark),
                 "Invalid MessageSelector. longer than %d bytes, the most a subscription may be",
                 BRK_SUB_EXPR_MAX - 1);
        *resp = brk__resp(req, RPC_SUBSCRIPTION_PARSE_FAILED, remark);
    } else {
        struct mq_sql *q = NULL;
        int rc = mq_sql_compile(expr, expr ? strlen(expr) : 0, &q, remark, sizeof(remark));
        mq_sql_free(q);
        if (rc == -ENOMEM)
            *resp = brk__resp_errno(req, rc, "compile the subscription");
        else
            *resp = brk__resp(req, rc ? RPC_SUBSCRIPTION_PARSE_FAILED : RPC_SUCCESS,
                              rc ? remark : NULL);
    }
    json_decref(body);
    return *resp ? RPC_REPLY : -ENOMEM;
}

static const char *conn_peer(void *conn)
{
    return rpc_conn_peer(conn);
}

/* GET_CONSUMER_CONNECTION_LIST (RocketMQ's mqadmin consumerConnection, the dashboard): the
 * group's live clients, their subscriptions and consume settings; CONSUMER_NOT_ONLINE (206)
 * when it has none (AdminBrokerProcessor.getConsumerConnectionList). */
static int on_consumer_connection(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                                  void *arg)
{
    struct broker *b = arg;
    const char *group = brk__need(req, "consumerGroup", resp);
    if (!group)
        return RPC_REPLY;
    json_t *body = NULL;
    int rc = brk_consumers_connection(b->consumers, group, conn_peer, rpc_lang_name, &body);
    if (rc == -ENOENT) {
        char remark[200];
        snprintf(remark, sizeof(remark), "the consumer group[%.130s] not online", group);
        *resp = brk__resp(req, 206 /* CONSUMER_NOT_ONLINE */, remark);
        return RPC_REPLY;
    }
    *resp = rc ? brk__resp_errno(req, rc, "consumer connection") : brk__resp_json(req, body);
    json_decref(body);
    return *resp ? RPC_REPLY : -ENOMEM;
}

void brk__register_client_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_GET_CONSUMER_CONNECTION_LIST, on_consumer_connection, b, 0);
    rpc_server_handle(b->srv, REQ_CHECK_CLIENT_CONFIG, on_check_client, b, 0);
    rpc_server_handle(b->srv, REQ_HEART_BEAT, on_heartbeat, b, RPC_HANDLER_WORKER);
    rpc_server_handle(b->srv, REQ_UNREGISTER_CLIENT, on_unregister_client, b, 0);
    rpc_server_handle(b->srv, REQ_GET_CONSUMER_LIST_BY_GROUP, on_consumer_list, b, 0);
}

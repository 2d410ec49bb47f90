/* ns_handlers.c — the NameServer's request table (DefaultRequestProcessor): request code ->
 * handler for route queries, topic deletion and the KV config; the broker-facing handlers
 * live in ns_register.c. Also the daemon's configuration keys.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_conf.h"
#include "common/mq_log.h"
#include "namesrv/namesrv_int.h"

const struct mq_conf_key ns_conf_keys[] = {
    {"listenAddr", MQ_CONF_STR, offsetof(struct ns_config, listenAddr),
     sizeof(((struct ns_config *)0)->listenAddr), "127.0.0.1", 0, 0,
     "address to listen on (numeric IPv4 or IPv6)"},
    {"listenPort", MQ_CONF_INT, offsetof(struct ns_config, listenPort), 0, "9876", 0, 65535,
     "TCP port (NettyServerConfig.listenPort)"},
    {"serverSelectorThreads", MQ_CONF_INT, offsetof(struct ns_config, serverSelectorThreads), 0,
     "2", 1, 64, "I/O threads, one event loop each"},
    {"serverWorkerThreads", MQ_CONF_INT, offsetof(struct ns_config, serverWorkerThreads), 0, "0", 0,
     64, "worker threads for handlers (0: handlers run on the I/O threads)"},
    {"scanNotActiveBrokerInterval", MQ_CONF_INT64,
     offsetof(struct ns_config, scanNotActiveBrokerInterval), 0, "10000", 10, 3600000,
     "ms between liveness scans"},
    {"brokerChannelExpiredTime", MQ_CONF_INT64,
     offsetof(struct ns_config, brokerChannelExpiredTime), 0, "120000", 10, 86400000,
     "ms of silence after which a broker is dropped"},
    {"orderMessageEnable", MQ_CONF_BOOL, offsetof(struct ns_config, orderMessageEnable), 0, "false",
     0, 1, "fill TopicRouteData.orderTopicConf from the ORDER_TOPIC_CONFIG namespace"},
    {"kvConfigPath", MQ_CONF_STR, offsetof(struct ns_config, kvConfigPath),
     sizeof(((struct ns_config *)0)->kvConfigPath), "", 0, 0,
     "file persisting the KV config (empty: memory only)"},
    {"maxFrameSize", MQ_CONF_INT64, offsetof(struct ns_config, maxFrameSize), 0, "16777216", 1024,
     1073741824, "largest accepted frame in bytes"},
    {"serverChannelMaxIdleTimeSeconds", MQ_CONF_INT,
     offsetof(struct ns_config, serverChannelMaxIdleTimeSeconds), 0, "120", 0, 86400,
     "close connections silent this long (0: never); brokers register every 30 s"},
    {"logLevel", MQ_CONF_STR, offsetof(struct ns_config, logLevel),
     sizeof(((struct ns_config *)0)->logLevel), "info", 0, 0, "debug, info, warn or error"},
};
const size_t ns_conf_nkeys = sizeof(ns_conf_keys) / sizeof(ns_conf_keys[0]);

int ns__need(struct rpc_cmd *req, struct rpc_cmd **resp, const char *key, const char **out)
{
    *out = rpc_cmd_ext_get(req, key);
    if (*out)
        return 0;
    *resp = rpc_cmd_new_response(req, RPC_SYSTEM_ERROR, NULL);
    if (*resp)
        rpc_cmd_set_remarkf(*resp, "the custom field <%s> is null", key);
    return -EINVAL;
}

int ns__need_int64(struct rpc_cmd *req, struct rpc_cmd **resp, const char *key, int64_t *out)
{
    int rc = rpc_cmd_ext_get_int64(req, key, out);
    if (rc == 0)
        return 0;
    *resp = rpc_cmd_new_response(req, RPC_SYSTEM_ERROR, NULL);
    if (*resp)
        rpc_cmd_set_remarkf(*resp, "the custom field <%s> is %s", key,
                            rc == -ENOENT ? "null" : "not an integer");
    return -EINVAL;
}

static struct rpc_cmd *json_response(struct rpc_cmd *req, json_t *body)
{
    struct rpc_cmd *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    if (resp && body && rpc_cmd_set_body_json(resp, body) != 0) {
        rpc_cmd_free(resp);
        resp = NULL;
    }
    json_decref(body);
    return resp;
}

static int h_route(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *topic;
    if (ns__need(req, resp, "topic", &topic))
        return RPC_REPLY;
    json_t *route = ns_routes_topic_route(ctx->routes, topic);
    if (!route) {
        *resp = rpc_cmd_new_response(req, RPC_TOPIC_NOT_EXIST, NULL);
        if (*resp)
            rpc_cmd_set_remarkf(*resp, "No topic route info in name server for the topic: %s",
                                topic);
        return RPC_REPLY;
    }
    if (ctx->conf && ctx->conf->orderMessageEnable) {
        char *conf = ns_kv_get(ctx->kv, NS_ORDER_TOPIC_CONFIG, topic);
        if (conf)
            json_object_set_new(route, "orderTopicConf", json_string(conf));
        free(conf);
    }
    *resp = json_response(req, route);
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int h_cluster_info(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                          void *arg)
{
    struct ns_ctx *ctx = arg;
    *resp = json_response(req, ns_routes_cluster_info(ctx->routes));
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int h_topic_list(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                        void *arg)
{
    struct ns_ctx *ctx = arg;
    *resp = json_response(req, ns_routes_topic_list(ctx->routes));
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int h_topics_by_cluster(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                               void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *cluster;
    if (ns__need(req, resp, "cluster", &cluster))
        return RPC_REPLY;
    *resp = json_response(req, ns_routes_topics_by_cluster(ctx->routes, cluster));
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int h_delete_topic(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                          void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *topic;
    if (ns__need(req, resp, "topic", &topic))
        return RPC_REPLY;
    ns_routes_delete_topic(ctx->routes, topic); /* RocketMQ answers SUCCESS either way */
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int h_put_kv(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *ns, *key, *value;
    if (ns__need(req, resp, "namespace", &ns) || ns__need(req, resp, "key", &key) ||
        ns__need(req, resp, "value", &value))
        return RPC_REPLY;
    int rc = ns_kv_put(ctx->kv, ns, key, value);
    if (rc)
        return rc;
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int h_get_kv(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *ns, *key;
    if (ns__need(req, resp, "namespace", &ns) || ns__need(req, resp, "key", &key))
        return RPC_REPLY;
    char *v =
        req->code == 217 ? ns_kv_keys_by_value(ctx->kv, ns, key) : ns_kv_get(ctx->kv, ns, key);
    if (v) {
        *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
        if (*resp)
            rpc_cmd_ext_set(*resp, "value", v);
    } else {
        *resp = rpc_cmd_new_response(req, RPC_QUERY_NOT_FOUND, NULL);
        if (*resp)
            rpc_cmd_set_remarkf(*resp, "No config item, Namespace: %s Key: %s", ns, key);
    }
    free(v);
    return RPC_REPLY;
}

static int h_delete_kv(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *ns, *key;
    if (ns__need(req, resp, "namespace", &ns) || ns__need(req, resp, "key", &key))
        return RPC_REPLY;
    ns_kv_delete(ctx->kv, ns, key);
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

static int h_kv_list(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *ns;
    if (ns__need(req, resp, "namespace", &ns))
        return RPC_REPLY;
    json_t *table = ns_kv_table(ctx->kv, ns);
    if (!table) {
        *resp = rpc_cmd_new_response(req, RPC_QUERY_NOT_FOUND, NULL);
        if (*resp)
            rpc_cmd_set_remarkf(*resp, "No config item, Namespace: %s", ns);
        return RPC_REPLY;
    }
    *resp = json_response(req, table);
    return *resp ? RPC_REPLY : -ENOMEM;
}

static int h_unsupported(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                         void *arg)
{
    *resp = rpc_cmd_new_response(req, RPC_REQUEST_CODE_NOT_SUPPORTED, NULL);
    if (*resp)
        rpc_cmd_set_remarkf(*resp, " request type %d not supported by mqnamesrv", req->code);
    return RPC_REPLY;
}

static void on_close(struct rpc_conn *conn, void *arg)
{
    struct ns_ctx *ctx = arg;
    ns_routes_conn_closed(ctx->routes, conn);
}

/* RequestCode.java numbers; docs/FORMATS.md Part 2 lists headers and bodies. */
static const struct {
    int32_t code;
    rpc_handler_fn fn;
} table[] = {
    {100, h_put_kv},                 /* PUT_KV_CONFIG */
    {101, h_get_kv},                 /* GET_KV_CONFIG */
    {102, h_delete_kv},              /* DELETE_KV_CONFIG */
    {103, ns__handle_register},      /* REGISTER_BROKER */
    {104, ns__handle_unregister},    /* UNREGISTER_BROKER */
    {105, h_route},                  /* GET_ROUTEINFO_BY_TOPIC */
    {106, h_cluster_info},           /* GET_BROKER_CLUSTER_INFO */
    {206, h_topic_list},             /* GET_ALL_TOPIC_LIST_FROM_NAMESERVER */
    {216, h_delete_topic},           /* DELETE_TOPIC_IN_NAMESRV */
    {217, h_get_kv},                 /* GET_KV_CONFIG_BY_VALUE */
    {219, h_kv_list},                /* GET_KVLIST_BY_NAMESPACE */
    {224, h_topics_by_cluster},      /* GET_TOPICS_BY_CLUSTER */
    {322, ns__handle_query_version}, /* QUERY_DATA_VERSION */
};

int ns_handlers_register(struct rpc_server *srv, struct ns_ctx *ctx)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        int rc = rpc_server_handle(srv, table[i].code, table[i].fn, ctx, 0);
        if (rc)
            return rc;
    }
    rpc_server_handle_default(srv, h_unsupported, ctx, 0);
    rpc_server_on_close(srv, on_close, ctx);
    return 0;
}

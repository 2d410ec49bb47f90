/* namesrv_int.h — internals shared by the files of namesrv/: header-field helpers and the
 * request handlers that live outside ns_handlers.c.
 */
#ifndef MQ_NAMESRV_INT_H
#define MQ_NAMESRV_INT_H

#include <stdint.h>

#include "namesrv/namesrv.h"

#define NS_ORDER_TOPIC_CONFIG "ORDER_TOPIC_CONFIG" /* NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG */

/* Fetches a required extFields entry. On absence sets *resp to a SYSTEM_ERROR response naming
 * the field (as RocketMQ's @CFNotNull check does) and returns -EINVAL. */
int ns__need(struct rpc_cmd *req, struct rpc_cmd **resp, const char *key, const char **out);
int ns__need_int64(struct rpc_cmd *req, struct rpc_cmd **resp, const char *key, int64_t *out);

/* A decoded RegisterBrokerBody (FORMATS.md Part 2, "NameServer bodies"). topics[i].name
 * points into json or names, owned by the struct until ns__reg_body_free. */
struct ns__reg_body {
    struct ns_data_version dv;
    struct ns_topic_conf *topics;
    size_t ntopics;
    json_t *json; /* JSON form: keeps the topic names alive */
    uint8_t *raw; /* compressed form: the inflated bytes */
    char *names;  /* compressed form: the topic names */
};

/* Parses a body in JSON or (compressed != 0) 4.9's deflated form. Returns 0, -EBADMSG,
 * -EMSGSIZE (inflates past 64 MiB) or -ENOMEM; free b with ns__reg_body_free either way. */
int ns__reg_body_parse(const uint8_t *p, size_t len, int compressed, struct ns__reg_body *b);
void ns__reg_body_free(struct ns__reg_body *b);

int ns__handle_register(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                        void *arg);
int ns__handle_unregister(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                          void *arg);
int ns__handle_query_version(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                             void *arg);

#endif

/* namesrv_int.h — internals shared by the files of namesrv/: header-field helpers and the
 * request handlers that live outside ns_handlers.c.
 */
#ifndef MQ_NAMESRV_INT_H
#define MQ_NAMESRV_INT_H

#include "namesrv/namesrv.h"

#define NS_ORDER_TOPIC_CONFIG "ORDER_TOPIC_CONFIG" /* NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG */

/* Fetches a required extFields entry. On absence sets *resp to a SYSTEM_ERROR response naming
 * the field (as RocketMQ's @CFNotNull check does) and returns -EINVAL. */
int ns__need(struct rpc_cmd *req, struct rpc_cmd **resp, const char *key, const char **out);
int ns__need_int64(struct rpc_cmd *req, struct rpc_cmd **resp, const char *key, int64_t *out);

int ns__handle_register(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                        void *arg);
int ns__handle_unregister(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                          void *arg);
int ns__handle_query_version(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                             void *arg);

#endif

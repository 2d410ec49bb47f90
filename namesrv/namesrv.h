/* namesrv.h — mqnamesrv's route registry (RocketMQ's RouteInfoManager), its KV config store
 * (KVConfigManager), and the request handlers that serve them over the remoting server.
 *
 * Tables (docs/FORMATS.md Part 2, "NameServer bodies"): topic -> brokerName -> QueueData,
 * brokerName -> BrokerData, cluster -> brokerNames, brokerAddr -> live info. One reader-writer
 * lock: queries run concurrently, registrations and expiry one at a time.
 */
#ifndef MQ_NAMESRV_H
#define MQ_NAMESRV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/mq_conf.h"
#include "remoting/remoting.h"

#define NS_MASTER_ID 0 /* MixAll.MASTER_ID */

/* ---- route table ---- */

struct ns_routes;

struct ns_data_version { /* DataVersion: timestamp + counter */
    int64_t timestamp, counter;
};

struct ns_topic_conf { /* what a broker registers for one topic (TopicConfig) */
    const char *name;
    int read_queue_nums, write_queue_nums, perm, topic_sys_flag;
};

/* A REGISTER_BROKER request, decoded. Strings are borrowed for the call. */
struct ns_register_req {
    const char *cluster, *broker_name, *broker_addr, *ha_server_addr;
    int64_t broker_id;
    struct ns_data_version dv;
    const struct ns_topic_conf *topics; /* NULL when the request had no body */
    size_t ntopics;
    struct rpc_conn *conn; /* the registering connection (a reference is taken) or NULL */
    int64_t now_ms;
};

struct ns_register_result { /* RegisterBrokerResult */
    char ha_server_addr[128];
    char master_addr[128];
    int routes_updated; /* 1 when the topic routes were rebuilt from this registration */
    int first;          /* 1 when this broker address was not live before */
};

int ns_routes_new(struct ns_routes **out);
/* Frees the tables and drops every connection reference. ns_routes_free(NULL) is a no-op. */
void ns_routes_free(struct ns_routes *r);

/* Registers (or refreshes) a broker. Routes are rebuilt for a master when its data version
 * changed or on its first registration. Returns 0 or -ENOMEM / -EINVAL. */
int ns_routes_register(struct ns_routes *r, const struct ns_register_req *req,
                       struct ns_register_result *res);
/* Removes one broker address; empty broker names and clusters go too, with their queues. */
void ns_routes_unregister(struct ns_routes *r, const char *cluster, const char *addr,
                          const char *broker_name, int64_t broker_id);
/* A connection closed: removes every broker that registered through it. */
void ns_routes_conn_closed(struct ns_routes *r, const struct rpc_conn *conn);
/* Removes brokers silent for longer than expire_ms. Their connections (if any) are returned
 * in a malloc()ed array with one reference each, for the caller to close and unref. Returns
 * the number of brokers removed. */
int ns_routes_scan(struct ns_routes *r, int64_t now_ms, int64_t expire_ms, struct rpc_conn ***conns,
                   size_t *nconns);

/* Queries. Each returns a new JSON value the caller json_decref()s, or NULL. */
json_t *ns_routes_topic_route(struct ns_routes *r, const char *topic); /* TopicRouteData */
json_t *ns_routes_cluster_info(struct ns_routes *r);                   /* ClusterInfo */
json_t *ns_routes_topic_list(struct ns_routes *r);                     /* TopicList */
/* TopicList of the topics with a queue on a broker of `cluster` (GET_TOPICS_BY_CLUSTER). */
json_t *ns_routes_topics_by_cluster(struct ns_routes *r, const char *cluster);
/* Returns 0 or -ENOENT. */
int ns_routes_delete_topic(struct ns_routes *r, const char *topic);
/* QUERY_DATA_VERSION: *changed says whether dv differs from the registered one; when it does
 * not, the broker's liveness is refreshed. *have is 1 and *cur the registered version when the
 * broker is known. */
void ns_routes_query_version(struct ns_routes *r, const char *addr,
                             const struct ns_data_version *dv, int64_t now_ms, int *changed,
                             int *have, struct ns_data_version *cur);
size_t ns_routes_live_count(struct ns_routes *r);

/* ---- KV config (namespace -> key -> value) ---- */

struct ns_kv;

/* path: a JSON file to load and persist to (KVConfigManager's kvConfig.json), or NULL/"" for
 * memory only. Returns 0, -ENOMEM, or -EINVAL when the file exists but is not valid. */
int ns_kv_new(const char *path, struct ns_kv **out);
void ns_kv_free(struct ns_kv *kv);
int ns_kv_put(struct ns_kv *kv, const char *ns, const char *key, const char *value);
int ns_kv_delete(struct ns_kv *kv, const char *ns, const char *key); /* 0 or -ENOENT */
/* Returns a malloc()ed copy of the value, or NULL when absent. */
char *ns_kv_get(struct ns_kv *kv, const char *ns, const char *key);
/* Keys whose value equals `value`, joined by ';' (malloc()ed), or NULL if the namespace is
 * unknown (GET_KV_CONFIG_BY_VALUE). */
char *ns_kv_keys_by_value(struct ns_kv *kv, const char *ns, const char *value);
/* KVTable {"table":{...}} of one namespace (new reference), or NULL when it is empty. */
json_t *ns_kv_table(struct ns_kv *kv, const char *ns);

/* ---- the daemon's request handlers ---- */

struct ns_config {
    char listenAddr[64];
    int listenPort;
    int serverSelectorThreads;
    int serverWorkerThreads;
    int64_t scanNotActiveBrokerInterval; /* ms */
    int64_t brokerChannelExpiredTime;    /* ms */
    int orderMessageEnable;
    char kvConfigPath[512];
    int64_t maxFrameSize;
    int serverChannelMaxIdleTimeSeconds;
    char logLevel[16];
};

/* The configuration keys (RocketMQ's names where they exist). */
extern const struct mq_conf_key ns_conf_keys[];
extern const size_t ns_conf_nkeys;

struct ns_ctx {
    const struct ns_config *conf;
    struct ns_routes *routes;
    struct ns_kv *kv;
};

/* Registers every NameServer request handler and the connection-close hook on srv. ctx must
 * outlive the server. */
int ns_handlers_register(struct rpc_server *srv, struct ns_ctx *ctx);

#endif

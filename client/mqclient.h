/* mqclient.h — libmqclient: RocketMQ producers and pull consumers in C.
 *
 * A client finds brokers through the NameServers (`namesrv`, "host:port;host:port"), caches
 * topic routes (refreshed every 30 s and after a send error) and keeps one connection per
 * broker, shared by every caller. Handles are thread-safe: any number of threads may send
 * through one producer at once. No call busy-waits.
 *
 * Errors are negative errnos: -EINVAL (bad topic name, empty body), -EMSGSIZE (body or batch
 * over maxMessageSize), -ENOENT (topic has no route and cannot be auto-created), -EIO (no broker
 * accepted the message after the retries), -ENOSPC (broker disk full), -ETIMEDOUT,
 * -EAGAIN (async buffer full with fail-fast on).
 */
#ifndef MQ_CLIENT_H
#define MQ_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct mqc_config {
    const char *namesrv;       /* required: "host:port[;host:port...]" */
    const char *group;         /* producer or consumer group; default "DEFAULT_PRODUCER" */
    const char *instance_name; /* part of the client id (ip@instance); default: the pid */
    int send_timeout_ms;       /* per attempt, default 3000 */
    int retries;               /* extra attempts for sync/async sends, default 2 */
    size_t compress_over;      /* compress bodies larger than this, default 4096; 0 = never */
    int compress_zstd;         /* 1 (default): zstd; 0: zlib, which stock 4.x clients read */
    size_t max_message_size;   /* default 4 MiB */
    size_t max_async_bytes;    /* unacknowledged async bytes per producer, default 64 MiB */
    int async_fail_fast;       /* 1: -EAGAIN when full; 0 (default): block until room */
    int fault_avoidance;       /* latency-based broker avoidance, default 1 */
};

/* A message to send. All pointers are borrowed for the duration of the call. */
struct mqc_message {
    const char *topic;
    const char *tags; /* optional, one tag */
    const char *keys; /* optional, space-separated */
    const void *body;
    size_t body_len;
    const char *props; /* optional user properties, "name\x01value\x02..." */
    size_t props_len;
    int32_t flag;
};

enum mqc_send_status {
    MQC_SEND_OK = 0,
    MQC_FLUSH_DISK_TIMEOUT = 1, /* stored, not yet durable within syncFlushTimeout */
    MQC_FLUSH_SLAVE_TIMEOUT = 2,
    MQC_SLAVE_NOT_AVAILABLE = 3,
};

struct mqc_send_result {
    enum mqc_send_status status;
    char msg_id[33];        /* UNIQ_KEY (client id) of the message, or of the batch's first */
    char offset_msg_id[33]; /* broker's offset message id (store host + physical offset) */
    char broker[128];
    int queue_id;
    int64_t queue_offset; /* of the first message for a batch */
};

/* One message queue of a topic. */
struct mqc_mq {
    char topic[128];
    char broker[128];
    int queue_id;
};

struct mqc_producer;

/* Creates a producer. cfg is copied. Returns 0, -EINVAL (no namesrv) or -ENOMEM. */
int mqc_producer_new(const struct mqc_config *cfg, struct mqc_producer **out);
/* Waits for pending async sends (their callbacks run), then frees. NULL is a no-op. */
void mqc_producer_free(struct mqc_producer *p);

/* Sync send; on 0 *res (may be NULL) describes where the message went. */
int mqc_send(struct mqc_producer *p, const struct mqc_message *m, struct mqc_send_result *res);

/* Async send. cb runs exactly once, on the client's network thread (keep it short; do not call
 * sync functions from it), with err 0 and the result or err < 0 and NULL. Returns 0 when the
 * send was started (cb will run), else a negative errno and cb never runs. */
typedef void (*mqc_send_cb)(int err, const struct mqc_send_result *res, void *arg);
int mqc_send_async(struct mqc_producer *p, const struct mqc_message *m, mqc_send_cb cb, void *arg);

/* Oneway: sent without waiting for the broker; no result, no retry. */
int mqc_send_oneway(struct mqc_producer *p, const struct mqc_message *m);

/* Batch: n messages of one topic in one request (never compressed; total ≤ max_message_size).
 * All go to the same queue; res describes the first. */
int mqc_send_batch(struct mqc_producer *p, const struct mqc_message *m, size_t n,
                   struct mqc_send_result *res);

/* Ordered sends: the selector picks the index of the queue among the topic's n writable queues
 * (sorted by broker name, then queue id), e.g. hash(orderId) % n. No retry on another queue. */
typedef size_t (*mqc_selector_fn)(const struct mqc_mq *queues, size_t n,
                                  const struct mqc_message *m, void *arg);
int mqc_send_select(struct mqc_producer *p, const struct mqc_message *m, mqc_selector_fn sel,
                    void *arg, struct mqc_send_result *res);

/* The topic's writable (for_send = 1) or readable queues, fetched from the NameServers.
 * *out is malloc'd (caller frees). Returns 0, -ENOENT (unknown topic) or -errno. */
int mqc_producer_queues(struct mqc_producer *p, const char *topic, int for_send,
                        struct mqc_mq **out, size_t *n);

/* ---- admin: cluster-wide queries to the NameServers (admin.c) ---- */

/* An admin handle: its own NameServer list with failover (cfg as for a producer; only namesrv
 * and send_timeout_ms, the per-NameServer timeout, matter). Thread-safe. */
struct mqc_admin;
int mqc_admin_new(const struct mqc_config *cfg, struct mqc_admin **out);
void mqc_admin_free(struct mqc_admin *a); /* NULL is a no-op */

/* Every topic the NameServers know (GET_ALL_TOPIC_LIST_FROM_NAMESERVER, 206; system topics
 * included). *names is ONE malloc'd block holding the pointer array and the strings: free(*names)
 * releases everything. Returns 0, -EIO/-ECONNREFUSED/-ETIMEDOUT (no NameServer answered),
 * -EBADMSG (malformed answer) or -ENOMEM. */
int mqc_admin_topic_list(struct mqc_admin *a, char ***names, size_t *n);

/* One broker of the cluster (a master when id == 0, else a slave). */
struct mqc_broker_info {
    char cluster[128];
    char name[128];
    int64_t id;
    char addr[64];
};

/* The brokers registered with the NameServers (GET_BROKER_CLUSTER_INFO, 106), sorted by
 * cluster, broker name and id. *out is malloc'd (free it). Errors as for the topic list. */
int mqc_admin_cluster_info(struct mqc_admin *a, struct mqc_broker_info **out, size_t *n);

/* The decoders of those two bodies (pure; exposed for tests): `{"topicList":[...]}` and
 * `{"brokerAddrTable":{...},"clusterAddrTable":{...}}` (bare integer keys accepted). */
int mqc_admin_parse_topic_list(const char *json, size_t len, char ***names, size_t *n);
int mqc_admin_parse_cluster(const char *json, size_t len, struct mqc_broker_info **out, size_t *n);

#endif

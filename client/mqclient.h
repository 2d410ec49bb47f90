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

/* Client settings. A zero field means its default, so `{.namesrv = "..."}` is a complete
 * configuration; turning a feature off takes an explicit value. The one exception is
 * compress_over, where 0 means never: bodies are stored as given unless the caller opts in
 * (RocketMQ's threshold is MQC_COMPRESS_OVER_DEFAULT). */
struct mqc_config {
    const char *namesrv;       /* required: "host:port[;host:port...]" */
    const char *group;         /* producer or consumer group; default "DEFAULT_PRODUCER" */
    const char *instance_name; /* part of the client id (ip@instance); default: the pid */
    int send_timeout_ms;       /* per attempt, default 3000 */
    int retries;               /* extra attempts for sync/async sends: 0 = default 2, < 0 = none */
    size_t compress_over;      /* compress bodies larger than this; 0 = never */
    int compress_type;         /* enum mqc_compress: 0 = default (zstd) */
    size_t max_message_size;   /* default 4 MiB */
    size_t max_async_bytes;    /* unacknowledged async bytes per producer, default 64 MiB */
    int async_fail_fast;       /* 1: -EAGAIN when full; 0 (default): block until room */
    int fault_avoidance;       /* latency-based broker avoidance: 0 = default on, < 0 = off */
    int poll_namesrv_ms;       /* route refresh period (pollNameServerInterval), default 30000 */
};

#define MQC_COMPRESS_OVER_DEFAULT 4096 /* compressMsgBodyOverHowmuch */

/* Body compression: zstd (RocketMQ 5.x compression type bits) or zlib, the only one RocketMQ
 * 4.x clients (and ali-ons) decompress. docs/FORMATS.md "Client conventions". */
enum mqc_compress { MQC_COMPRESS_DEFAULT = 0, MQC_COMPRESS_ZSTD = 1, MQC_COMPRESS_ZLIB = 2 };

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
    /* RocketMQ's delayTimeLevel: 0 = deliver at once; n > 0 = the broker holds the message for
     * the n-th delay of its messageDelayLevel (default 1s 5s 10s 30s 1m ... 2h; past the last
     * level, the last). Single sends only: a batch with a level is -EINVAL. */
    int delay_level;
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
/* Waits for pending async sends (their callbacks run) and until oneway sends were written to
 * their brokers (one heartbeat round trip per such broker), then frees. NULL is a no-op. */
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
/* One message body of mqc_send_batch_bodies, borrowed for the duration of the call. */
struct mqc_body {
    const void *p;
    size_t len;
};
/* Batch of n messages that share everything but the body: topic, tags, keys, flag and user
 * properties come from tmpl (its body is ignored), the bodies from bodies[0..n). The same
 * request and checks as mqc_send_batch, with the shared properties encoded once. */
int mqc_send_batch_bodies(struct mqc_producer *p, const struct mqc_message *tmpl,
                          const struct mqc_body *bodies, size_t n, struct mqc_send_result *res);
/* Async batch: as mqc_send_batch, answered through cb as mqc_send_async (the messages may be
 * reused once the call returns: they are encoded before it does). */
int mqc_send_batch_async(struct mqc_producer *p, const struct mqc_message *m, size_t n,
                         mqc_send_cb cb, void *arg);

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

/* ---- consuming ---- */

/* A pulled message. Pointers are owned by the pull result (or the consumer) it came from and
 * valid until that is released. body is uncompressed; props is `name\x01value\x02...`. */
struct mqc_msg {
    struct mqc_mq mq;
    int64_t queue_offset;
    int64_t phys_offset;
    int64_t born_ts, store_ts;
    int32_t flag, sysflag, reconsume_times;
    const uint8_t *body;
    size_t body_len;
    const char *props;
    size_t props_len;
    char msg_id[57]; /* offset message id: store host + physical offset, uppercase hex */
};

/* A property of a message (TAGS, KEYS, UNIQ_KEY, ...): 0 with (*val, *len) pointing into the
 * message, or -ENOENT. */
int mqc_msg_prop(const struct mqc_msg *m, const char *name, const char **val, size_t *len);

enum mqc_pull_status {
    MQC_PULL_FOUND = 0,
    MQC_PULL_NO_NEW_MSG = 1,    /* PULL_NOT_FOUND: nothing at the offset (yet) */
    MQC_PULL_NO_MATCHED = 2,    /* PULL_RETRY_IMMEDIATELY: entries skipped by the tag filter */
    MQC_PULL_OFFSET_ILLEGAL = 3 /* PULL_OFFSET_MOVED: continue at next_offset */
};

struct mqc_pull_result {
    enum mqc_pull_status status;
    int64_t next_offset, min_offset, max_offset;
    struct mqc_msg *msgs; /* FOUND: messages matching the expression, in queue order */
    size_t n;
    void *priv_;
};
void mqc_pull_result_destroy(struct mqc_pull_result *r);

struct mqc_consumer;

enum mqc_consume_from { MQC_FROM_FIRST = 0, MQC_FROM_LAST = 1, MQC_FROM_TIMESTAMP = 2 };

struct mqc_consumer_opts {
    enum mqc_consume_from from; /* where a new group starts; default FIRST */
    int64_t from_timestamp_ms;  /* with MQC_FROM_TIMESTAMP */
    int rebalance_ms;           /* default 20000; also on NOTIFY_CONSUMER_IDS_CHANGED */
    int heartbeat_ms;           /* default 30000 */
    int persist_ms;             /* offset commit period, default 5000 */
    int suspend_ms;             /* broker long-poll hold, default 20000 */
    int pull_batch;             /* messages per pull, default 32 */
    int queue_buffer;           /* pulled, unconsumed messages kept per queue, default 1000 */
    int retry;                  /* 1: also consume %RETRY%<group>, where the messages passed to
                                 * mqc_consumer_retry_later come back (RocketMQ's push consumer
                                 * does so in clustering mode) */
    struct mqc_admin *shared;   /* optional: use this handle's NameServers, routes and broker
                                 * connections (many consumers, one set of threads); it must
                                 * outlive the consumer */
};

/* A consumer in a group (cfg->group required). Pass opts NULL for defaults. Nothing happens
 * until mqc_consumer_subscribe and mqc_consumer_start. */
int mqc_consumer_new(const struct mqc_config *cfg, const struct mqc_consumer_opts *opts,
                     struct mqc_consumer **out);
/* Subscribes to topic with a tag expression ("*", "TagA || TagB"). Before start only. */
int mqc_consumer_subscribe(struct mqc_consumer *c, const char *topic, const char *expr);
/* Subscribes to topic with an SQL92 expression over the messages' properties (RocketMQ's
 * MessageSelector.bySql: "a IS NOT NULL AND a BETWEEN 1 AND 3"; grammar in docs/FORMATS.md).
 * The broker filters (it needs enablePropertyFilter=true, else every pull of the topic is
 * refused); the messages taken are those it matched, not re-checked here. sql is copied. Before
 * start only, from the thread that owns the consumer. Returns 0, -EINVAL (NULL, or an
 * expression that does not compile), -E2BIG (512 bytes or more: the most a broker keeps for a
 * group's subscription), -EBUSY (started, or 16 subscriptions already), -ENOMEM. */
int mqc_consumer_subscribe_sql(struct mqc_consumer *c, const char *topic, const char *sql);
/* Heartbeats, rebalances, starts pulling its queues in the background. An SQL92 subscription
 * is first shown to each broker of its topic (CHECK_CLIENT_CONFIG, as a stock client's start):
 * -EOPNOTSUPP when one cannot filter by it (enablePropertyFilter=false), -EINVAL when one does
 * not accept the expression, the broker's remark logged; unreachable brokers are skipped. */
int mqc_consumer_start(struct mqc_consumer *c);
/* Commits consumed offsets to the brokers, unregisters from the group, frees. */
void mqc_consumer_free(struct mqc_consumer *c);

/* Takes the next pulled message of any owned queue (round robin). Blocks up to timeout_ms (0:
 * do not block, -1: forever) and returns 0, -EAGAIN (nothing within the time), -EINTR (woken by
 * mqc_consumer_wakeup) or -ESHUTDOWN. The message stays valid until it is acked or nacked; it
 * counts as consumed only when acked. Take and ack messages of a queue in order. */
int mqc_consumer_take(struct mqc_consumer *c, int timeout_ms, struct mqc_msg **out);
/* Marks a taken message consumed: its queue's offset becomes queue_offset + 1, committed to the
 * broker on the persist timer, at rebalance and at free (or now, with mqc_consumer_commit). */
void mqc_consumer_ack(struct mqc_consumer *c, struct mqc_msg *m);
/* Returns a taken message unconsumed: the next take of its queue returns it again. */
void mqc_consumer_nack(struct mqc_consumer *c, struct mqc_msg *m);
/* RocketMQ's RECONSUME_LATER: hands a taken message back to its broker (CONSUMER_SEND_MSG_BACK),
 * which stores it for %RETRY%<group> after the delay of delay_level (0: the broker's back-off,
 * level 3 + reconsume times: 10 s, 30 s, 1 min, ... by default), or in %DLQ%<group> once it was
 * retried 16 times; then acks it, so the queue moves on. It comes back (with opts.retry) from
 * %RETRY%<group>, its reconsume_times one higher and the property RETRY_TOPIC naming its
 * topic. When the broker does not take it, the message is nacked (taken again next) and the
 * error returned. Blocks for one round trip. */
int mqc_consumer_retry_later(struct mqc_consumer *c, struct mqc_msg *m, int delay_level);
/* Sends every changed offset to the brokers now. Returns 0 or the first error. */
int mqc_consumer_commit(struct mqc_consumer *c);
/* Makes a blocked mqc_consumer_take return -EINTR (thread-safe). */
void mqc_consumer_wakeup(struct mqc_consumer *c);
/* Whether the consumer has seen the end of every queue it owns: each answered a pull, nothing
 * is buffered or taken, and the last pull reached the queue's max offset. */
int mqc_consumer_caught_up(struct mqc_consumer *c);
/* Whether a message is ready to take now (for poll()). */
int mqc_consumer_ready(struct mqc_consumer *c);
/* Called (from a client thread) whenever a message becomes ready; for poll notification. */
void mqc_consumer_on_ready(struct mqc_consumer *c, void (*fn)(void *arg), void *arg);
/* The client id this consumer has in its group. */
const char *mqc_consumer_id(const struct mqc_consumer *c);

/* A single pull from one queue at an offset (works with an unstarted consumer: only its
 * NameServer and group settings are used). suspend_ms > 0 lets the broker hold the pull until a
 * message arrives. commit_offset >= 0 also commits that offset for the group. Returns 0 with
 * *out filled (release with mqc_pull_result_destroy) or a negative errno. */
int mqc_pull(struct mqc_consumer *c, const struct mqc_mq *mq, const char *expr, int64_t offset,
             int max_msgs, int suspend_ms, int64_t commit_offset, struct mqc_pull_result *out);
/* As mqc_pull with an SQL92 expression (sql, borrowed for the call) that the broker evaluates;
 * its refusal (no enablePropertyFilter, an expression that does not compile) is a negative
 * errno as mqc_pull maps a broker's answer. */
int mqc_pull_sql(struct mqc_consumer *c, const struct mqc_mq *mq, const char *sql, int64_t offset,
                 int max_msgs, int suspend_ms, int64_t commit_offset, struct mqc_pull_result *out);

/* ---- admin: requests to brokers and NameServers for mqadmin and mqfs (admin_ops.c) ----
 * `addr` arguments are broker addresses "ip:port" (see mqc_admin_cluster_info). Errors are
 * negative errnos: transport errors as rpc_client_call, a refusal mapped as for sends (-EIO,
 * -EACCES, -ENOENT ...). */

/* A topic as UPDATE_AND_CREATE_TOPIC (17) writes it on one broker. */
struct mqc_topic_config {
    const char *topic;
    int read_queues, write_queues; /* 0..1024 */
    int perm;                      /* READ 4 | WRITE 2 (| INHERIT 1); 0 means 6 */
};
int mqc_admin_create_topic(struct mqc_admin *a, const char *addr, const struct mqc_topic_config *t);
/* DELETE_TOPIC_IN_BROKER (215) on one broker. */
int mqc_admin_delete_topic_broker(struct mqc_admin *a, const char *addr, const char *topic);
/* DELETE_TOPIC_IN_NAMESRV (216) on EVERY NameServer of the handle (they do not share state).
 * Returns 0 when all answered SUCCESS, else the first error (the others are still tried). */
int mqc_admin_delete_topic_namesrv(struct mqc_admin *a, const char *topic);
/* UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) with a default SubscriptionGroupConfig body. */
int mqc_admin_create_group(struct mqc_admin *a, const char *addr, const char *group);

/* A topic's route (GET_ROUTEINFO_BY_TOPIC, 105) as the NameServer stores it. */
struct mqc_route_broker {
    char name[128];
    char cluster[128];
    char addr[64]; /* master address, "" when only slaves are known */
};
struct mqc_route_queues {
    char broker[128];
    int read_queues, write_queues, perm, sysflag;
};
struct mqc_topic_route {
    struct mqc_route_broker *brokers; /* sorted by name */
    size_t nbrokers;
    struct mqc_route_queues *queues; /* sorted by broker */
    size_t nqueues;
};
/* Fills *out (release with mqc_topic_route_destroy). Returns 0, -ENOENT (unknown topic),
 * -EBADMSG or a transport error. */
int mqc_admin_topic_route(struct mqc_admin *a, const char *topic, struct mqc_topic_route *out);
void mqc_topic_route_destroy(struct mqc_topic_route *r);
/* The decoder of a TopicRouteData body (pure; exposed for tests). 0, -EBADMSG or -ENOMEM. */
int mqc_admin_parse_route(const char *json, size_t len, struct mqc_topic_route *out);

/* One queue's offsets on its broker: GET_MIN_OFFSET (31), GET_MAX_OFFSET (30), and the store
 * time of its newest message (a one-message pull at max - 1; 0 when the queue is empty). */
struct mqc_queue_stat {
    int64_t min_offset, max_offset;
    int64_t last_store_ms;
};
int mqc_admin_queue_stat(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                         struct mqc_queue_stat *out);
/* A group's committed offset of a queue (QUERY_CONSUMER_OFFSET, 14): 0, or -ENOENT when the
 * broker has none. */
int mqc_admin_consumer_offset(struct mqc_admin *a, const char *addr, const char *group,
                              const char *topic, int queue_id, int64_t *offset);

/* GET_BROKER_RUNTIME_INFO (28): the broker's KV table, sorted by name. *kv is ONE malloc'd block
 * (pairs and strings): free(*kv) releases everything. */
struct mqc_kv {
    const char *name, *value;
};
int mqc_admin_runtime_info(struct mqc_admin *a, const char *addr, struct mqc_kv **kv, size_t *n);

/* GET_CONSUMER_CONNECTION_LIST (203): the ConsumerConnection JSON of a group on the broker at
 * addr (docs/FORMATS.md), NUL-terminated in *json (malloc'd; caller frees). -ENOENT when the
 * group has no live client there (CONSUMER_NOT_ONLINE). */
int mqc_admin_consumer_connection(struct mqc_admin *a, const char *addr, const char *group,
                                  char **json, size_t *len);

/* QUERY_MESSAGE (12) on one broker: the messages of topic whose KEYS or UNIQ_KEY equal key (at
 * most 64). On 0 *out holds them (status FOUND; mq.broker is `broker`); release it with
 * mqc_pull_result_destroy. No match is 0 with out->n == 0. */
int mqc_admin_query_key(struct mqc_admin *a, const char *addr, const char *broker,
                        const char *topic, const char *key, struct mqc_pull_result *out);
/* VIEW_MESSAGE_BY_ID (33): decodes an offset message id (store host + physical offset) and asks
 * that broker. addr (may be NULL) receives the broker's "ip:port". Returns 0 with one message in
 * *out, -EINVAL (not an offset id), -ENOENT (no message there) or a transport error. */
int mqc_admin_view_message(struct mqc_admin *a, const char *msg_id, char addr[64],
                           struct mqc_pull_result *out);

/* Whether the broker at addr knows the subscription group (GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
 * 201): 1, 0, or a negative errno. */
int mqc_admin_group_exists(struct mqc_admin *a, const char *addr, const char *group);
/* The subscription groups the broker at addr knows (GET_ALL_SUBSCRIPTIONGROUP_CONFIG, 201),
 * system groups included, in the broker's order. *names is ONE malloc'd block (pointers and
 * strings, NULL-terminated): free(*names) releases everything. 0, -EBADMSG or a transport
 * error. */
int mqc_admin_group_list(struct mqc_admin *a, const char *addr, char ***names, size_t *n);
/* DELETE_SUBSCRIPTIONGROUP (207) on one broker; clean_offsets also drops the group's committed
 * offsets there (cleanOffset=true). 0 also when the broker did not know the group. */
int mqc_admin_delete_group(struct mqc_admin *a, const char *addr, const char *group,
                           int clean_offsets);

/* The queues a started consumer owns right now (after its last rebalance), sorted. *out is
 * malloc'd (caller frees; NULL when n == 0 is allowed). */
int mqc_consumer_owned(struct mqc_consumer *c, struct mqc_mq **out, size_t *n);

/* ---- the file interface's view of a queue (render.c; docs/FORMATS.md Part 3) ---- */

/* A queue's rendered view: every retained message as body + "\n". Bytes [base, size) exist;
 * bytes below base were deleted by retention. last_ts: the store time (ms) of the view's newest
 * message; -1 when it is empty or the broker does not say (one older than this field). */
struct mqc_view_info {
    int64_t base, size;
    int64_t min_offset, max_offset; /* queue offsets */
    int64_t last_ts;
};
/* MQFS_RENDER_INFO (30001) on the broker at addr. Returns 0 or a negative errno. */
int mqc_view_info(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                  struct mqc_view_info *info);
/* MQFS_READ (30004): up to len bytes of the view from offset into buf; *got is 0 at or past the
 * end. info (may be NULL) gets the view's current bounds. Returns 0, MQ_EOFFSET_MOVED (offset
 * below base; info filled) or a negative errno. */
int mqc_view_read(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                  int64_t offset, void *buf, size_t len, size_t *got, struct mqc_view_info *info);
/* MQFS_READ_RECORDS (30005): the messages of one queue (queue_id >= 0; pos is a queue offset) or
 * of the whole topic on that broker in commitlog order (queue_id -1; pos is a commitlog offset)
 * from pos on whose TAGS match expr ("*" or NULL: all; matched exactly), at most max_msgs and
 * about max_bytes per call. On 0, out->msgs holds them (each names its queue), out->next_offset
 * is where to continue and [out->min_offset, out->max_offset) the positions that exist now: at
 * next_offset >= max_offset everything was read. Release with mqc_pull_result_destroy. */
int mqc_view_records(struct mqc_admin *a, const char *addr, const char *topic, int queue_id,
                     int64_t pos, const char *expr, int max_msgs, int64_t max_bytes,
                     struct mqc_pull_result *out);

/* A broker's topic view by store time (MQFS_RENDER_AT_TIME 30005): for each asked time t[i],
 * off[i] = the view's byte offset of the first message stored at or after t[i] and next[i] =
 * that message's store time (-1: none yet). watermark: every message stored before it is
 * readable and later ones are stored at or after it; prev[i] = the store time of the newest
 * message stored before t[i] (-1: none, or a broker that does not say); retained_since: 0 while
 * the broker's commitlog lost nothing to retention, else the store time of its first retained
 * record. With
 * a listing asked (from >= 0): times[0..ntimes) = the distinct store times from `from` on below
 * the watermark (at most MQC_TIMES_MAX), toffs[i] = the offset of the first message stored at
 * times[i], tend = the offset after the last listed message. */
#define MQC_AT_TIME_MAX 16
#define MQC_TIMES_MAX   64
struct mqc_view_times {
    int64_t watermark, retained_since;
    int64_t off[MQC_AT_TIME_MAX], next[MQC_AT_TIME_MAX], prev[MQC_AT_TIME_MAX];
    int ntimes;
    int64_t times[MQC_TIMES_MAX], toffs[MQC_TIMES_MAX], tend;
};
/* Asks for n (0..MQC_AT_TIME_MAX) times t of the topic view on the broker at addr, and when
 * from >= 0 the listing from that time. Returns 0 or a negative errno. */
int mqc_view_at_time(struct mqc_admin *a, const char *addr, const char *topic, const int64_t *t,
                     int n, int64_t from, struct mqc_view_times *out);

#endif

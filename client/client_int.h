/* client_int.h — internals of libmqclient shared between its files: message queues, topic
 * routes, queue selection with fault avoidance, rebalance allocation, unique message ids.
 *
 * Everything here is pure (no I/O) so the policies can be unit-tested exactly; the producer
 * and consumer call into it under their own locks.
 */
#ifndef MQ_CLIENT_INT_H
#define MQ_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "client/mqclient.h"

#define MQC_NAME_MAX 128 /* broker names, topics, groups: RocketMQ caps topics at 127 */
#define MQC_ADDR_MAX 64  /* "host:port" */

/* struct mqc_mq (mqclient.h) is RocketMQ's MessageQueue: topic, brokerName, queueId.
 * Orders queues as RocketMQ's MessageQueue.compareTo: topic, broker name, queue id. */
int mqc_queue_cmp(const void *a, const void *b);

/* A broker of a route: its name and master address ("" when the master is not known). */
struct mqc_broker {
    char name[MQC_NAME_MAX];
    char cluster[MQC_NAME_MAX];
    char master_addr[MQC_ADDR_MAX];
};

/* A topic's route, decoded from the NameServer's TopicRouteData JSON. Owned by the caller:
 * mqc_route_free(). `pub` are the writable queues on brokers with a known master (where sends
 * go), `sub` the readable queues (what consumers share), each sorted by mqc_queue_cmp. */
struct mqc_route {
    char topic[MQC_NAME_MAX];
    struct mqc_broker *brokers;
    size_t nbrokers;
    struct mqc_mq *pub;
    size_t npub;
    struct mqc_mq *sub;
    size_t nsub;
    int provisional; /* built from TBW102 for a topic the NameServers do not know yet */
};

/* Decodes TopicRouteData JSON (`queueDatas`, `brokerDatas`; brokerAddrs keys may be bare
 * integers, as fastjson writes them). Returns 0, -EBADMSG for malformed JSON or -ENOMEM. */
int mqc_route_parse(const char *topic, const char *json, size_t len, struct mqc_route **out);
void mqc_route_free(struct mqc_route *r);
/* The master address of a broker in the route, or NULL. Valid as long as the route. */
const char *mqc_route_broker_addr(const struct mqc_route *r, const char *broker);

/* Latency-based fault avoidance (RocketMQ 4.x MQFaultStrategy): after a send to a broker took
 * `latency_ms` (or failed: pass isolation=1, counted as 30 s), the broker is avoided for the
 * notAvailableDuration matching the highest latencyMax step reached. Not thread-safe: callers
 * lock. */
#define MQC_FAULT_MAX 64
struct mqc_fault_item {
    char broker[MQC_NAME_MAX];
    int64_t latency_ms;
    int64_t available_after_ms; /* monotonic ms */
};
struct mqc_faults {
    struct mqc_fault_item items[MQC_FAULT_MAX];
    size_t n;
};
int64_t mqc_fault_duration(int64_t latency_ms);
void mqc_fault_update(struct mqc_faults *f, const char *broker, int64_t latency_ms, int isolation,
                      int64_t now_ms);
int mqc_fault_available(const struct mqc_faults *f, const char *broker, int64_t now_ms);

/* Chooses the queue for a send among `n` queues (RocketMQ's selectOneMessageQueue with
 * sendLatencyFaultEnable): round-robin from *index (advanced), skipping queues of
 * `last_failed` (NULL: none) and of brokers `f` marks unavailable; when every queue is
 * excluded it still returns one (preferring a broker other than last_failed). Returns the index
 * into `queues`, or -1 when n == 0. `f` may be NULL. */
int mqc_select_queue(const struct mqc_mq *queues, size_t n, uint32_t *index,
                     const char *last_failed, const struct mqc_faults *f, int64_t now_ms);

/* RocketMQ's AllocateMessageQueueAveragely: which of `nq` queues (sorted) client `cid` owns
 * among `ncids` client ids (sorted). Writes indexes into `queues` to out (room for nq) and
 * returns how many; 0 when cid is not in the list. */
size_t mqc_allocate_averagely(size_t nq, const char *const *cids, size_t ncids, const char *cid,
                              size_t *out);

/* Unique message ids (the UNIQ_KEY property, RocketMQ's MessageClientIDSetter layout):
 * 32 uppercase hex characters = IPv4 (4) + pid (2) + instance hash (4) + milliseconds since the
 * start of the month (4) + counter (2). Thread-safe. `out` gets 33 bytes with the NUL. */
void mqc_uniq_id(char out[33]);
/* The same with the wall clock (mq_now_ms) the caller has read already. */
void mqc_uniq_id_at(char out[33], int64_t now_ms);
/* Ids for a batch: one clock read and one counter reservation for n ids, then each id is the
 * shared 28-hex-digit head (prefix + time) and the next counter value (32 chars, no NUL). */
struct mqc_uniq_seq {
    char head[28];
    uint16_t next;
};
void mqc_uniq_ids_begin(struct mqc_uniq_seq *u, size_t n);
void mqc_uniq_ids_next(struct mqc_uniq_seq *u, char out[32]);

/* ---- message properties and batch bodies (batch_enc.c) ---- */

struct mq_buf;

/* The length of a message's properties: the user's (user bytes), KEYS and TAGS (values of kl
 * and tl bytes, absent when 0), UNIQ_KEY and WAIT. */
size_t mqc__props_len(size_t user, size_t kl, size_t tl);
/* Writes them for m at w (room for mqc__props_len bytes), uniq its 32-character UNIQ_KEY;
 * returns the end. */
uint8_t *mqc__props_put(uint8_t *w, const struct mqc_message *m, size_t kl, size_t tl,
                        const char uniq[32]);

/* Appends the SEND_BATCH_MESSAGE body of messages m[0..n) (one topic, non-empty bodies, the
 * whole at most max bytes) to out; uniq gets the first message's UNIQ_KEY. Returns 0, -EINVAL,
 * -EMSGSIZE or -ENOMEM (out unchanged then). */
int mqc__batch_encode(const struct mqc_message *m, size_t n, size_t max, struct mq_buf *out,
                      char uniq[33]);
/* The same for messages that share everything of t but the body, taken from b[0..n). */
int mqc__batch_encode_bodies(const struct mqc_message *t, const struct mqc_body *b, size_t n,
                             size_t max, struct mq_buf *out, char uniq[33]);

/* ---- the shared client instance: NameServers, route cache, connections ---- */

#include <pthread.h>
#include <stdatomic.h>

#include "common/mq_map.h"

struct rpc_client;
struct rpc_cmd;

#define MQC_DEFAULT_TOPIC      "TBW102" /* auto-creation template topic (TopicValidator) */
#define MQC_DEFAULT_TOPIC_QNUM 4        /* defaultTopicQueueNums */
#define MQC_ROUTE_REFRESH_MS   30000

struct mqc_lease;

struct mqc_instance {
    struct mqc_config cfg; /* strings below are owned copies */
    char *namesrv_str, *group, *instance_name;
    char (*namesrvs)[MQC_ADDR_MAX];
    size_t nns;
    unsigned ns_index; /* under lock: the NameServer that answered last */
    char client_id[192];
    struct rpc_client *rpc;

    pthread_mutex_t lock;
    struct mq_map routes; /* topic -> struct mqc_route * (owned) */
    struct mqc_faults faults;
    /* set (under lock) once a send made a broker unavailable: until then `faults` holds no
     * item that excludes one, and successful fast sends need not be recorded */
    atomic_int faults_used;

    pthread_t timer;
    pthread_cond_t timer_cond;
    int stopping;

    /* Which of this instance's consumers owns which queue (lease.c); its own lock. */
    pthread_mutex_t lease_lock;
    struct mqc_lease *leases;
};

int mqc__instance_new(const struct mqc_config *cfg, const char *default_group,
                      struct mqc_instance **out);
void mqc__instance_free(struct mqc_instance *inst);
/* Frees the queue leases (lease.c) and their lock; mqc__instance_free calls it. */
void mqc__lease_destroy(struct mqc_instance *inst);

/* A call to the NameServers: tries each, starting with the one that answered last. On 0 the
 * caller owns *resp. */
int mqc__namesrv_call(struct mqc_instance *inst, struct rpc_cmd *req, int timeout_ms,
                      struct rpc_cmd **resp);

/* Fetches a topic's route from the NameServers and caches it. When the topic is unknown and
 * `allow_default` is set, caches a route built from TBW102's brokers (the broker creates the
 * topic on first send). Returns 0, -ENOENT or -errno. */
int mqc__route_refresh(struct mqc_instance *inst, const char *topic, int allow_default);

/* Chooses a queue for a send to topic (fetching the route on first use) and copies it and the
 * broker address out. Returns 0, -ENOENT (no route / no writable queue) or -errno. */
int mqc__pick_queue(struct mqc_instance *inst, const char *topic, const char *last_failed,
                    int use_faults, struct mqc_mq *q, char addr[MQC_ADDR_MAX]);

/* The master address of a broker, from any cached route. Returns 0 or -ENOENT. */
int mqc__broker_addr(struct mqc_instance *inst, const char *broker, char addr[MQC_ADDR_MAX]);

/* Records how a send to broker went (fault avoidance). A fast success while no broker was
 * ever made unavailable changes nothing and takes no lock. */
void mqc__report_latency(struct mqc_instance *inst, const char *broker, int64_t latency_ms,
                         int failed);

/* Copies a topic's queues (pub or sub) out of the cache, fetching the route if needed. */
int mqc__queues(struct mqc_instance *inst, const char *topic, int for_send, struct mqc_mq **out,
                size_t *n);

/* Maps a broker's response code and remark to a negative errno (one place). */
int mqc__errno_of_response(int code, const char *remark);

/* ---- pulling (pull.c) ---- */

struct mq_tags;

/* Builds a PULL_MESSAGE request; expr is a tag expression, or SQL92 when sql is non-zero. NULL
 * on out-of-memory. */
struct rpc_cmd *mqc__pull_request(const char *group, const struct mqc_mq *mq, const char *expr,
                                  int sql, int64_t offset, int max_msgs, int suspend_ms,
                                  int64_t commit_offset);
/* Interprets a pull response: status, offsets, and the decoded messages matching tags (NULL:
 * all). Takes ownership of resp. Returns 0 or a negative errno (a response code that is no
 * pull status, or a malformed body). */
int mqc__pull_parse(struct rpc_cmd *resp, const struct mqc_mq *mq, const struct mq_tags *tags,
                    struct mqc_pull_result *out);

/* Decodes a body of raw commitlog records (QUERY_MESSAGE, VIEW_MESSAGE_BY_ID answers) into
 * *out, status FOUND. With mq->queue_id < 0 each message takes its topic and queue id from its
 * record. Takes ownership of resp. Returns 0, -EBADMSG or -ENOMEM. */
int mqc__records_parse(struct rpc_cmd *resp, const struct mqc_mq *mq, struct mqc_pull_result *out);

/* ---- admin handles (admin.c: NameServer queries; admin_ops.c: broker requests) ---- */

struct mqc_admin {
    struct mqc_instance *inst;
};

#endif

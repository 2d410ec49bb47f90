/* broker_int.h — the broker's state shared by its request handlers (one file per request
 * family: handle_send.c, handle_pull.c, handle_client.c, handle_admin.c, handle_query.c,
 * handle_merge.c, handle_stats.c, locks.c, transaction.c), its services (schedule.c, filters.c,
 * hold.c), its NameServer registration (register.c) and lifecycle (broker.c). */
#ifndef MQ_BROKER_INT_H
#define MQ_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "broker/broker.h"
#include "broker/consumers.h"
#include "broker/filters.h"
#include "broker/hold.h"
#include "broker/meta.h"
#include "remoting/remoting.h"

/* RocketMQ request codes the broker serves or sends (RequestCode.java; FORMATS.md Part 2). */
enum {
    REQ_SEND_MESSAGE = 10,
    REQ_PULL_MESSAGE = 11,
    REQ_QUERY_MESSAGE = 12,
    REQ_QUERY_CONSUMER_OFFSET = 14,
    REQ_UPDATE_CONSUMER_OFFSET = 15,
    REQ_UPDATE_AND_CREATE_TOPIC = 17,
    REQ_GET_ALL_TOPIC_CONFIG = 21,
    REQ_GET_BROKER_RUNTIME_INFO = 28,
    REQ_SEARCH_OFFSET_BY_TIMESTAMP = 29,
    REQ_GET_MAX_OFFSET = 30,
    REQ_GET_MIN_OFFSET = 31,
    REQ_GET_EARLIEST_MSG_STORETIME = 32,
    REQ_VIEW_MESSAGE_BY_ID = 33,
    REQ_HEART_BEAT = 34,
    REQ_UNREGISTER_CLIENT = 35,
    REQ_CONSUMER_SEND_MSG_BACK = 36,
    REQ_END_TRANSACTION = 37,
    REQ_GET_CONSUMER_LIST_BY_GROUP = 38,
    REQ_LOCK_BATCH_MQ = 41,
    REQ_UNLOCK_BATCH_MQ = 42,
    REQ_CHECK_CLIENT_CONFIG = 46,
    REQ_NOTIFY_CONSUMER_IDS_CHANGED = 40,
    REQ_REGISTER_BROKER = 103,
    REQ_UNREGISTER_BROKER = 104,
    REQ_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
    REQ_GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201,
    REQ_GET_TOPIC_STATS_INFO = 202,
    REQ_GET_CONSUMER_CONNECTION_LIST = 203,
    REQ_DELETE_SUBSCRIPTIONGROUP = 207,
    REQ_GET_CONSUME_STATS = 208,
    REQ_DELETE_TOPIC_IN_BROKER = 215,
    REQ_QUERY_TOPIC_CONSUME_BY_WHO = 300,
    REQ_SEND_MESSAGE_V2 = 310,
    REQ_SEND_BATCH_MESSAGE = 320,
    /* Ours, for the file interface (FORMATS.md Part 3); RocketMQ leaves 30000+ unused. */
    REQ_MQFS_RENDER_INFO = 30001,
    REQ_MQFS_RENDER_FIND = 30002,
    REQ_MQFS_RENDER_OFFSET = 30003,
    REQ_MQFS_READ = 30004,
    REQ_MQFS_READ_RECORDS = 30005,
    REQ_MQFS_RENDER_AT_TIME = 30006,
};

#define BRK_DEFAULT_TOPIC "TBW102"
#define BRK_RETRY_PREFIX  "%RETRY%"
#define BRK_DLQ_PREFIX    "%DLQ%"

struct broker {
    struct brk_conf conf;
    char addr[96]; /* brokerIP1:port, what NameServers and clients see */
    struct rpc_server *srv;
    struct store *store;
    int sync_flush;              /* flushDiskType=SYNC_FLUSH: sends are answered once durable */
    struct brk_hold *holds;      /* parked pulls */
    struct brk_hold *send_waits; /* send replies waiting for their dispatch */
    struct rpc_client *ns_client;

    struct brk_topics *topics;
    struct brk_groups *groups;
    struct brk_offsets *offsets;
    struct brk_consumers *consumers;
    struct brk_locks *locks;     /* orderly consumers' queue locks (locks.c) */
    struct brk_filters *filters; /* compiled SQL92 subscriptions (filters.c) */
    struct brk_tx *tx;           /* transactional messages (transaction.c) */
    /* delayed messages (schedule.c); atomic: the dispatcher's arrival callback reads it */
    struct brk_sched *_Atomic sched;

    pthread_t timer;
    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    int stopping;
    int register_now;               /* a topic changed: register at once */
    int ns_closed;                  /* a NameServer connection closed: register soon (timer_main) */
    struct brk_reg_wait *reg_waits; /* replies sent once the next registration is done */

    atomic_uint_fast64_t stat_puts, stat_put_bytes, stat_gets, stat_get_msgs;
    int64_t start_ms;
};

/* ---- handlers (registered in broker.c) ---- */
void brk__register_client_handlers(struct broker *b);
void brk__register_offset_handlers(struct broker *b);
void brk__register_admin_handlers(struct broker *b);
void brk__register_send_handlers(struct broker *b);
void brk__register_pull_handlers(struct broker *b);
void brk__register_query_handlers(struct broker *b);
void brk__register_merge_handlers(struct broker *b);
void brk__register_lock_handlers(struct broker *b);
void brk__register_stats_handlers(struct broker *b);
void brk__register_tx_handlers(struct broker *b);

/* ---- transactional messages (transaction.c) ---- */
struct brk_tx;
/* Rebuilds the resolved half messages (op queue) and starts the check thread; the store and
 * the consumer offsets must be open. 0 or -errno. */
int brk__tx_open(struct broker *b, struct brk_tx **out);
void brk__tx_close(struct brk_tx *tx); /* NULL is a no-op */
/* Records the producer groups of a heartbeat received on conn (the check-back asks them). */
void brk__tx_producers(struct brk_tx *tx, const struct brk_heartbeat *hb, struct rpc_conn *conn,
                       int64_t now_ms);
/* Forgets the producers of a closed conn, or (conn NULL) those silent since before cutoff. */
void brk__tx_producers_prune(struct brk_tx *tx, struct rpc_conn *conn, int64_t cutoff_ms);

/* ---- queue locks of orderly consumers (locks.c) ---- */
struct brk_locks;
/* A lock not renewed for live_ms is free for another client. */
int brk_locks_new(int64_t live_ms, struct brk_locks **out);
void brk_locks_free(struct brk_locks *l);
/* Forgets locks not renewed for live_ms; returns how many. */
size_t brk_locks_expire(struct brk_locks *l, int64_t now_ms);

/* The long-poll hold service's callback (handle_pull.c). */
void brk__hold_fire(void *item, int timed_out, void *arg);
/* The send-visibility waits' callback (handle_send.c). */
void brk__send_visible(void *item, int timed_out, void *arg);
/* Appends up to max_bytes of a queue's rendered view from file offset off (render.c). Sets
 * *base, *size and *newest (the store time of the view's newest message, -1: none). Returns 0
 * (nothing appended at or past the end), MQ_EOFFSET_MOVED below the base, or a negative
 * errno. */
struct mq_buf;
int brk__render_read(struct broker *b, const char *topic, int queue_id, int64_t off,
                     int64_t max_bytes, struct mq_buf *out, int64_t *base, int64_t *size,
                     int64_t *newest);
/* The same for the topic view: all nq queues merged in commitlog order (render.c). */
int brk__render_topic_read(struct broker *b, const char *topic, int nq, int64_t off,
                           int64_t max_bytes, struct mq_buf *out, int64_t *base, int64_t *size,
                           int64_t *newest);
/* Raw records of a queue (queue_id >= 0, positions are queue offsets) or of the topic's nq
 * queues in commitlog order (queue_id -1, positions are commitlog offsets) from position pos,
 * those whose tag hash matches expr ("*", NULL: all), at most max_msgs records and max_bytes
 * (beyond the first) appended to out (view_records.c). Sets *next (where to continue) and the
 * retained positions [*min, *max). Returns 0 or a negative errno. */
int brk__records_read(struct broker *b, const char *topic, int queue_id, int nq, int64_t pos,
                      const char *expr, int max_msgs, int64_t max_bytes, struct mq_buf *out,
                      int64_t *next, int64_t *min, int64_t *max);
/* "ip:port" -> IPv4 host for records (unparsable: 0.0.0.0:0). */
struct mq_host;
void brk__parse_host(const char *ipport, struct mq_host *h);

/* ---- delayed messages (schedule.c) ---- */
struct brk_sched;
struct mq_buf;
/* Loads path (config/delayOffset.json) if it exists. 0, -EBADMSG (unparsable: nothing is
 * written over it), -EINVAL (messageDelayLevel) or -errno. */
int brk__sched_open(struct broker *b, const char *path, struct brk_sched **out);
/* Starts the delivery thread (once the store and topics are open). */
int brk__sched_start(struct brk_sched *sc);
/* A delayed message was dispatched to SCHEDULE_TOPIC_XXXX queue queue_id: look at that queue
 * again unless a message before it is still waiting. Any thread; NULL is a no-op. */
void brk__sched_notify(struct brk_sched *sc, int queue_id);
/* Stops the thread, persists the offsets (the store must still be open) and frees. */
void brk__sched_close(struct brk_sched *sc);
/* Number of levels (messageDelayLevel), and a level's next offset to deliver (-1: none). */
int brk__sched_levels(const struct brk_sched *sc);
int64_t brk__sched_offset(struct brk_sched *sc, int level);
/* The DELAY level of a message with these properties: 0 for none (absent, 0, not a number),
 * else at most the last level. */
int brk__delay_level(const struct broker *b, const char *props, size_t len);
/* Appends to out the properties of a message parked in a system topic until it is due (a
 * delayed message, level > 0) or committed (a half message, level 0): props less REAL_TOPIC,
 * REAL_QID, empty names and (level > 0) DELAY, then DELAY=level (level > 0),
 * REAL_TOPIC=topic, REAL_QID=queue_id. 0, -EMSGSIZE (over 32767 bytes), -EBADMSG, -ENOMEM. */
int brk__parked_props(const char *props, size_t len, const char *topic, int queue_id, int level,
                      struct mq_buf *out);
/* The other way: the topic and queue a parked message's REAL_TOPIC / REAL_QID name (a valid
 * topic name, a queue id in 0..BRK_MAX_QUEUES-1). 0 or -EINVAL. */
struct mq_msg;
int brk__parked_dest(const struct mq_msg *m, char topic[BRK_NAME_MAX], int *qid);

/* ---- helpers ---- */
/* A response with a code and remark (remark may be NULL). NULL only on out-of-memory. */
struct rpc_cmd *brk__resp(const struct rpc_cmd *req, int code, const char *remark);
/* SUCCESS with body as the JSON body (body stays the caller's). NULL on out-of-memory or a
 * NULL body. */
struct rpc_cmd *brk__resp_json(const struct rpc_cmd *req, const json_t *body);
/* Maps a negative errno from the store or metadata to a response (one place). */
struct rpc_cmd *brk__resp_errno(const struct rpc_cmd *req, int err, const char *what);
/* Reads a required header field; on absence writes an error response to *resp. */
const char *brk__need(const struct rpc_cmd *req, const char *key, struct rpc_cmd **resp);

/* Makes sure a topic exists; creates it (with `queues` queues, perm RW) when `create` and it
 * is missing. Returns 0 with *out filled, -ENOENT, or -errno. */
int brk__ensure_topic(struct broker *b, const char *topic, int queues, int create,
                      struct brk_topic *out);
/* Makes sure a subscription group exists (auto-created when configured). */
int brk__ensure_group(struct broker *b, const char *group, struct brk_group *out);

/* Asks the registration thread to register with the NameServers now. */
void brk__register_soon(struct broker *b);
/* Answers resp on conn (taking a connection reference) once the registration that starts next
 * has been sent to the NameServers — as RocketMQ's updateAndCreateTopic registers before it
 * answers, so a client that creates a topic and then asks the NameServer finds its route.
 * Returns RPC_DEFER, or RPC_REPLY with *out = resp when it cannot wait (out of memory). */
int brk__reply_after_register(struct broker *b, struct rpc_conn *conn, struct rpc_cmd *resp,
                              struct rpc_cmd **out);
/* Takes the replies waiting for a registration (timer_lock held). */
struct brk_reg_wait *brk__reg_waits_take(struct broker *b);
/* Sends the replies taken and frees them. */
void brk__reg_waits_answer(struct brk_reg_wait *w);
/* Registers with (or unregisters from) every NameServer; returns how many answered. */
int brk__register_all(struct broker *b, int unregister);
/* How many NameServers namesrvAddr names. */
int brk__namesrv_count(const struct broker *b);

#endif

/* consumers.h — the broker's view of live consumer clients (RocketMQ's ConsumerManager):
 * group -> client id -> {connection, subscriptions, last heartbeat}. Fed by HEART_BEAT and
 * UNREGISTER_CLIENT, pruned when a connection closes or a client is silent past the expiry
 * (120 s). GET_CONSUMER_LIST_BY_GROUP answers from it, and rebalancing clients rely on it.
 *
 * Thread-safe (one internal mutex). `conn` is an opaque identity for the client's connection
 * (the remoting layer's handle); this module never dereferences it.
 */
#ifndef MQ_BROKER_CONSUMERS_H
#define MQ_BROKER_CONSUMERS_H

#include <stddef.h>
#include <stdint.h>

#define BRK_SUB_EXPR_MAX 512

/* One subscription of a consumer group (RocketMQ's SubscriptionData). */
struct brk_sub {
    char topic[128];
    char expr[BRK_SUB_EXPR_MAX]; /* subString: "*" or "TagA || TagB" */
    int64_t version;             /* subVersion */
    char expr_type[16];          /* expressionType: "TAG" (or empty), "SQL92", ... */
};

/* Whether an expressionType is RocketMQ's TAG type (ExpressionType.isTagType: NULL, "" or
 * "TAG"); anything else is SQL92 (enablePropertyFilter) or refused. */
int brk_expr_is_tag(const char *type);

/* A consumer group entry of a heartbeat (ConsumerData). */
struct brk_hb_consumer {
    char group[128];
    char consume_from_where[48]; /* e.g. CONSUME_FROM_LAST_OFFSET */
    char consume_type[24];       /* CONSUME_PASSIVELY (push) or CONSUME_ACTIVELY (pull) */
    int broadcasting;            /* messageModel BROADCASTING */
    struct brk_sub *subs;
    size_t nsubs;
};

/* A decoded HeartbeatData body. Owned by the caller: brk_heartbeat_destroy(). */
struct brk_heartbeat {
    char client_id[256];
    int language, version; /* of the HEART_BEAT request (the caller sets them) */
    struct brk_hb_consumer *consumers;
    size_t nconsumers;
    char (*producer_groups)[128];
    size_t nproducers;
};

/* Decodes HeartbeatData JSON. Returns 0, -EBADMSG, -E2BIG (a subscription's expression of
 * BRK_SUB_EXPR_MAX bytes or more) or -ENOMEM. */
int brk_heartbeat_parse(const char *json, size_t len, struct brk_heartbeat *out);
void brk_heartbeat_destroy(struct brk_heartbeat *hb);

struct brk_consumers;

/* Called (outside the lock) when a group's set of client ids changed. */
typedef void (*brk_consumers_changed_fn)(const char *group, void *arg);

/* ref/unref (may be NULL) are applied to `conn` handles: the registry holds a reference on each
 * connection it records, and brk_consumers_conns hands references to its caller. */
int brk_consumers_new(int64_t expiry_ms, brk_consumers_changed_fn on_change, void *arg,
                      void *(*ref)(void *conn), void (*unref)(void *conn),
                      struct brk_consumers **out);
void brk_consumers_free(struct brk_consumers *c);

/* Registers or refreshes every consumer group of a heartbeat for `conn`. */
int brk_consumers_heartbeat(struct brk_consumers *c, const struct brk_heartbeat *hb, void *conn,
                            int64_t now_ms);
/* RocketMQ's ConsumerConnection of a group, as JSON (GET_CONSUMER_CONNECTION_LIST):
 * {"connectionSet":[{"clientAddr","clientId","language","version"}],"consumeType",
 * "messageModel","consumeFromWhere","subscriptionTable":{topic: SubscriptionData}}, from the
 * clients' latest heartbeats; peer(conn) names a client's address. -ENOENT when the group has
 * no live client, -ENOMEM. */
struct json_t;
int brk_consumers_connection(struct brk_consumers *c, const char *group,
                             const char *(*peer)(void *conn), const char *(*lang)(int language),
                             struct json_t **out);
/* The groups with a live client subscribed to topic (queryTopicConsumeByWho): *out malloc'd
 * (caller frees), *n names. 0 or -ENOMEM. */
int brk_consumers_groups_of(struct brk_consumers *c, const char *topic, char (**out)[128],
                            size_t *n);
/* Removes one client from a group. Returns 0 or -ENOENT. */
int brk_consumers_unregister(struct brk_consumers *c, const char *group, const char *client_id);
/* Removes every client registered through conn (the connection closed). */
void brk_consumers_conn_closed(struct brk_consumers *c, void *conn);
/* Removes clients silent since before now_ms - expiry. Returns how many were removed. */
size_t brk_consumers_scan(struct brk_consumers *c, int64_t now_ms);

/* The group's client ids, sorted: *ids is one malloc'd array of n fixed 256-byte strings the
 * caller frees. Returns 0 (n may be 0) or -ENOMEM. */
int brk_consumers_ids(struct brk_consumers *c, const char *group, char (**ids)[256], size_t *n);
/* The connections of a group's clients (to notify them), at most max, each with a reference
 * the caller drops with the unref function. Returns the count. */
size_t brk_consumers_conns(struct brk_consumers *c, const char *group, void **out, size_t max);
/* A group's subscription to a topic: of its clients' the newest (highest subVersion), as
 * RocketMQ's ConsumerGroupInfo keeps the newest. Returns 0, -ESRCH when no client of the group
 * is registered, or -ENOENT when none of them subscribes to the topic. */
int brk_consumers_find_sub(struct brk_consumers *c, const char *group, const char *topic,
                           struct brk_sub *out);

#endif

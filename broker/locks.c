/* locks.c — queue locks of orderly consumers (RocketMQ's RebalanceLockManager, served as
 * LOCK_BATCH_MQ 41 and UNLOCK_BATCH_MQ 42): a stock client consuming in order (the Java
 * client's MessageListenerOrderly) locks each queue rebalancing gave it before it pulls, and
 * renews the locks every 20 s. A queue of a group is held by one client id; a lock request
 * renews it; a lock not renewed for rebalanceLockMaxLiveTime (60 s) is free for another
 * client; an unlock by its holder frees it at once. In memory only, as in RocketMQ: after a
 * restart the clients lock again. The table is bounded by count and by bytes (LOCKS_BYTES_MAX):
 * past either a new lock is refused, while held ones are still renewed. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_log.h"
#include "common/mq_map.h"
#include "common/mq_util.h"

#define LOCKS_MAX       (1 << 20)  /* held queue locks, all groups */
#define LOCKS_BYTES_MAX (64 << 20) /* their keys, client ids and table slots, all groups */
#define LOCK_CLIENT_MAX 256

struct lock_entry {
    int64_t last_ms;
    size_t bytes;  /* what this lock counts in brk_locks.bytes */
    char client[]; /* the holder's client id */
};

struct brk_locks {
    pthread_mutex_t mu;
    struct mq_map map; /* "group\1topic\1brokerName\1queueId" -> struct lock_entry */
    size_t n, bytes;
    int64_t live_ms;
};

int brk_locks_new(int64_t live_ms, struct brk_locks **out)
{
    struct brk_locks *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    pthread_mutex_init(&l->mu, NULL);
    mq_map_init(&l->map);
    l->live_ms = live_ms;
    *out = l;
    return 0;
}

void brk_locks_free(struct brk_locks *l)
{
    if (!l)
        return;
    size_t it = 0;
    void *v;
    while (mq_map_next(&l->map, &it, NULL, &v))
        free(v);
    mq_map_destroy(&l->map);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

size_t brk_locks_expire(struct brk_locks *l, int64_t now_ms)
{
    size_t cap = 0, n = 0, it = 0;
    char **dead = NULL;
    const char *k;
    void *v;
    pthread_mutex_lock(&l->mu);
    while (mq_map_next(&l->map, &it, &k, &v)) {
        if (now_ms - ((struct lock_entry *)v)->last_ms <= l->live_ms)
            continue;
        if (n == cap) {
            char **d = realloc(dead, (cap = cap ? cap * 2 : 64) * sizeof(*d));
            if (!d)
                break;
            dead = d;
        }
        if (!(dead[n] = strdup(k)))
            break;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        struct lock_entry *e = mq_map_del(&l->map, dead[i]);
        l->bytes -= e->bytes;
        free(e);
        free(dead[i]);
        l->n--;
    }
    pthread_mutex_unlock(&l->mu);
    free(dead);
    return n;
}

/* The key of one queue of a JSON MessageQueue, or -EINVAL. */
static int mq_key(const char *group, json_t *mq, char *key, size_t cap)
{
    const char *topic = json_string_value(json_object_get(mq, "topic"));
    const char *broker = json_string_value(json_object_get(mq, "brokerName"));
    json_t *q = json_object_get(mq, "queueId");
    if (!topic || !broker || mq_check_topic(topic, strlen(topic)) || strchr(broker, '\001') ||
        !json_is_integer(q) || json_integer_value(q) < 0 || json_integer_value(q) >= BRK_MAX_QUEUES)
        return -EINVAL;
    int n = snprintf(key, cap, "%s\001%s\001%s\001%d", group, topic, broker,
                     (int)json_integer_value(q));
    return n > 0 && (size_t)n < cap ? 0 : -EINVAL;
}

/* Locks (lock = 1) or unlocks one queue for client; returns whether client holds it now. */
static int lock_one(struct brk_locks *l, const char *key, const char *client, int lock, int64_t now)
{
    struct lock_entry *e = mq_map_get(&l->map, key), *old = NULL;
    if (!lock) {
        if (e && strcmp(e->client, client) == 0) {
            l->bytes -= e->bytes;
            free(mq_map_del(&l->map, key));
            l->n--;
        }
        return 0;
    }
    if (e && strcmp(e->client, client) == 0) {
        e->last_ms = now; /* renewed */
        return 1;
    }
    if (e && now - e->last_ms <= l->live_ms)
        return 0; /* another client's, alive */
    /* a new lock, or one taken over from a client that stopped renewing it: the key and the
     * client id are counted, with the allocations' and the table's overhead (~64 bytes) */
    size_t clen = strlen(client) + 1, bytes = strlen(key) + 1 + sizeof(*e) + clen + 64;
    if ((!e && l->n >= LOCKS_MAX) || l->bytes - (e ? e->bytes : 0) + bytes > LOCKS_BYTES_MAX)
        return 0;
    struct lock_entry *ne = malloc(sizeof(*ne) + clen);
    if (!ne || mq_map_put(&l->map, key, ne, (void **)&old)) {
        free(ne);
        return 0;
    }
    if (old) {
        l->bytes -= old->bytes;
        free(old);
    } else {
        l->n++;
    }
    memcpy(ne->client, client, clen);
    ne->last_ms = now;
    ne->bytes = bytes;
    l->bytes += bytes;
    return 1;
}

/* LockBatchRequestBody / UnlockBatchRequestBody:
 * {"consumerGroup": s, "clientId": s, "mqSet": [{"topic", "brokerName", "queueId"}, ...]}. */
static int on_lock(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp, void *arg)
{
    struct broker *b = arg;
    int lock = req->code == REQ_LOCK_BATCH_MQ;
    json_error_t jerr;
    json_t *body = req->body ? json_loadb((const char *)req->body, req->body_len, 0, &jerr) : NULL;
    const char *group = json_string_value(json_object_get(body, "consumerGroup"));
    const char *client = json_string_value(json_object_get(body, "clientId"));
    json_t *set = json_object_get(body, "mqSet");
    if (!group || !client || !*client || strlen(client) >= LOCK_CLIENT_MAX ||
        mq_check_topic(group, strlen(group)) || (set && !json_is_array(set))) {
        json_decref(body);
        *resp =
            brk__resp(req, RPC_SYSTEM_ERROR,
                      lock ? "malformed LockBatchRequestBody" : "malformed UnlockBatchRequestBody");
        return RPC_REPLY;
    }
    json_t *ok = json_array(), *mq;
    size_t i;
    int64_t now = mq_now_ms();
    pthread_mutex_lock(&b->locks->mu);
    json_array_foreach(set, i, mq)
    {
        char key[BRK_NAME_MAX * 3 + 32];
        if (mq_key(group, mq, key, sizeof(key)) == 0 && lock_one(b->locks, key, client, lock, now))
            json_array_append(ok, mq);
    }
    pthread_mutex_unlock(&b->locks->mu);
    json_decref(body);
    if (lock) { /* LockBatchResponseBody */
        json_t *root = json_pack("{s:O}", "lockOKMQSet", ok);
        *resp = brk__resp_json(req, root);
        json_decref(root);
    } else {
        *resp = brk__resp(req, RPC_SUCCESS, NULL);
    }
    json_decref(ok);
    return *resp ? RPC_REPLY : -ENOMEM;
}

void brk__register_lock_handlers(struct broker *b)
{
    rpc_server_handle(b->srv, REQ_LOCK_BATCH_MQ, on_lock, b, 0);
    rpc_server_handle(b->srv, REQ_UNLOCK_BATCH_MQ, on_lock, b, 0);
}

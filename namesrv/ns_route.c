/* ns_route.c — the route table (RocketMQ's RouteInfoManager, 4.9 semantics): registration
 * with data-version checks, unregistration, cleanup when a broker's connection closes or it
 * falls silent, and the TopicRouteData / ClusterInfo / TopicList views.
 *
 * The keyed tables are jansson objects holding the very shapes the queries serve (QueueData,
 * BrokerData), so a query is a copy under the read lock; the live table is a small C array.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_log.h"
#include "namesrv/namesrv.h"

struct live { /* BrokerLiveInfo */
    char addr[128];
    int64_t last_ms;
    struct ns_data_version dv;
    struct rpc_conn *conn; /* one reference, or NULL */
    char ha[128];
};

struct ns_routes {
    pthread_rwlock_t lock;
    json_t *topics;   /* topic -> {brokerName -> QueueData} */
    json_t *brokers;  /* brokerName -> BrokerData {cluster, brokerName, brokerAddrs} */
    json_t *clusters; /* cluster -> {brokerName -> true} */
    struct live *live;
    size_t nlive, cap;
};

int ns_routes_new(struct ns_routes **out)
{
    struct ns_routes *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    pthread_rwlock_init(&r->lock, NULL);
    r->topics = json_object();
    r->brokers = json_object();
    r->clusters = json_object();
    if (!r->topics || !r->brokers || !r->clusters) {
        ns_routes_free(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

void ns_routes_free(struct ns_routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nlive; i++)
        if (r->live[i].conn)
            rpc_conn_unref(r->live[i].conn);
    free(r->live);
    json_decref(r->topics);
    json_decref(r->brokers);
    json_decref(r->clusters);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

static struct live *find_live(struct ns_routes *r, const char *addr)
{
    for (size_t i = 0; i < r->nlive; i++)
        if (strcmp(r->live[i].addr, addr) == 0)
            return &r->live[i];
    return NULL;
}

/* Removes a live entry; returns its connection reference (the caller drops it) or NULL. */
static struct rpc_conn *remove_live(struct ns_routes *r, const char *addr)
{
    struct live *l = find_live(r, addr);
    if (!l)
        return NULL;
    struct rpc_conn *c = l->conn;
    *l = r->live[--r->nlive];
    return c;
}

static void remove_broker_queues(struct ns_routes *r, const char *broker_name)
{
    const char *topic;
    json_t *qmap, *tmp;
    json_object_foreach_safe(r->topics, tmp, topic, qmap)
    {
        if (json_object_del(qmap, broker_name) == 0) {
            mq_info("remove topic[%s] queue data of broker %s", topic, broker_name);
            if (json_object_size(qmap) == 0)
                json_object_del(r->topics, topic);
        }
    }
}

static void remove_broker_name(struct ns_routes *r, const char *cluster, const char *name)
{
    const char *cl;
    json_t *set, *tmp;
    json_object_foreach_safe(r->clusters, tmp, cl, set)
    {
        if (cluster && strcmp(cl, cluster) != 0)
            continue;
        json_object_del(set, name);
        if (json_object_size(set) == 0)
            json_object_del(r->clusters, cl);
    }
    remove_broker_queues(r, name);
}

/* RouteInfoManager.onChannelDestroy, after the live entry is gone: every broker id with this
 * address goes; broker names left without addresses go with their queues. */
static void cleanup_addr(struct ns_routes *r, const char *addr)
{
    const char *name, *id;
    json_t *bd, *tmp, *a, *tmp2;
    json_t *gone = json_array();
    json_object_foreach_safe(r->brokers, tmp, name, bd)
    {
        json_t *addrs = json_object_get(bd, "brokerAddrs");
        json_object_foreach_safe(addrs, tmp2, id, a)
        {
            if (strcmp(json_string_value(a), addr) == 0)
                json_object_del(addrs, id);
        }
        if (json_object_size(addrs) == 0) {
            json_array_append_new(gone, json_string(name));
            json_object_del(r->brokers, name);
        }
    }
    size_t i;
    json_t *v;
    json_array_foreach(gone, i, v)
    {
        mq_info("broker name %s removed: no address left", json_string_value(v));
        remove_broker_name(r, NULL, json_string_value(v));
    }
    json_decref(gone);
}

static json_t *queue_data(const char *broker_name, const struct ns_topic_conf *t)
{
    return json_pack("{s:s,s:i,s:i,s:i,s:i}", "brokerName", broker_name, "readQueueNums",
                     t->read_queue_nums, "writeQueueNums", t->write_queue_nums, "perm", t->perm,
                     "topicSysFlag", t->topic_sys_flag);
}

static int update_topics(struct ns_routes *r, const struct ns_register_req *q)
{
    for (size_t i = 0; i < q->ntopics; i++) {
        const struct ns_topic_conf *t = &q->topics[i];
        json_t *qmap = json_object_get(r->topics, t->name);
        if (!qmap) {
            qmap = json_object();
            if (!qmap || json_object_set_new(r->topics, t->name, qmap) != 0)
                return -ENOMEM;
            mq_info("new topic registered, %s from broker %s", t->name, q->broker_name);
        }
        json_t *qd = queue_data(q->broker_name, t);
        if (!qd || json_object_set_new(qmap, q->broker_name, qd) != 0)
            return -ENOMEM;
    }
    return 0;
}

int ns_routes_register(struct ns_routes *r, const struct ns_register_req *q,
                       struct ns_register_result *res)
{
    char id[24];
    int rc = -ENOMEM;
    memset(res, 0, sizeof(*res));
    if (!q->cluster || !q->broker_name || !q->broker_addr || !*q->broker_addr ||
        strlen(q->broker_addr) >= sizeof(((struct live *)0)->addr))
        return -EINVAL;
    snprintf(id, sizeof(id), "%" PRId64, q->broker_id);
    pthread_rwlock_wrlock(&r->lock);
    json_t *set = json_object_get(r->clusters, q->cluster);
    if (!set) {
        set = json_object();
        if (!set || json_object_set_new(r->clusters, q->cluster, set) != 0)
            goto out;
    }
    json_object_set_new(set, q->broker_name, json_true());
    json_t *bd = json_object_get(r->brokers, q->broker_name);
    int first = bd == NULL;
    if (!bd) {
        bd = json_pack("{s:s,s:s,s:{}}", "cluster", q->cluster, "brokerName", q->broker_name,
                       "brokerAddrs");
        if (!bd || json_object_set_new(r->brokers, q->broker_name, bd) != 0)
            goto out;
    }
    json_t *addrs = json_object_get(bd, "brokerAddrs"), *a, *tmp;
    const char *k;
    /* the same address under another id: a slave switched to master (or back) */
    json_object_foreach_safe(addrs, tmp, k, a)
    {
        if (strcmp(json_string_value(a), q->broker_addr) == 0 && strcmp(k, id) != 0)
            json_object_del(addrs, k);
    }
    first = first || json_object_get(addrs, id) == NULL;
    if (json_object_set_new(addrs, id, json_string(q->broker_addr)) != 0)
        goto out;
    struct live *l = find_live(r, q->broker_addr);
    if (q->topics && q->broker_id == NS_MASTER_ID) {
        int changed = !l || l->dv.timestamp != q->dv.timestamp || l->dv.counter != q->dv.counter;
        if (changed || first) {
            if ((rc = update_topics(r, q)) != 0)
                goto out;
            res->routes_updated = 1;
        }
    }
    if (!l) {
        if (r->nlive == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            struct live *nl = realloc(r->live, cap * sizeof(*nl));
            if (!nl)
                goto out;
            r->live = nl;
            r->cap = cap;
        }
        l = &r->live[r->nlive++];
        memset(l, 0, sizeof(*l));
        snprintf(l->addr, sizeof(l->addr), "%s", q->broker_addr);
        res->first = 1;
        mq_info("new broker registered, %s HAServer: %s", q->broker_addr,
                q->ha_server_addr ? q->ha_server_addr : "");
    }
    l->last_ms = q->now_ms;
    l->dv = q->dv;
    snprintf(l->ha, sizeof(l->ha), "%s", q->ha_server_addr ? q->ha_server_addr : "");
    if (l->conn != q->conn) {
        if (l->conn)
            rpc_conn_unref(l->conn);
        l->conn = q->conn ? rpc_conn_ref(q->conn) : NULL;
    }
    if (q->broker_id != NS_MASTER_ID) {
        json_t *m = json_object_get(addrs, "0");
        struct live *ml = m ? find_live(r, json_string_value(m)) : NULL;
        if (ml) {
            snprintf(res->ha_server_addr, sizeof(res->ha_server_addr), "%s", ml->ha);
            snprintf(res->master_addr, sizeof(res->master_addr), "%s", ml->addr);
        }
    }
    rc = 0;
out:
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

void ns_routes_unregister(struct ns_routes *r, const char *cluster, const char *addr,
                          const char *broker_name, int64_t broker_id)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, broker_id);
    pthread_rwlock_wrlock(&r->lock);
    struct rpc_conn *c = remove_live(r, addr);
    mq_info("unregisterBroker, remove from brokerLiveTable %s, %s", c ? "OK" : "Failed", addr);
    json_t *bd = json_object_get(r->brokers, broker_name);
    if (bd) {
        json_t *addrs = json_object_get(bd, "brokerAddrs");
        json_object_del(addrs, id);
        if (json_object_size(addrs) == 0) {
            json_object_del(r->brokers, broker_name);
            remove_broker_name(r, cluster, broker_name);
        }
    }
    pthread_rwlock_unlock(&r->lock);
    rpc_conn_unref(c);
}

void ns_routes_conn_closed(struct ns_routes *r, const struct rpc_conn *conn)
{
    pthread_rwlock_wrlock(&r->lock);
    for (size_t i = 0; i < r->nlive;) {
        if (r->live[i].conn != conn) {
            i++;
            continue;
        }
        char addr[128];
        snprintf(addr, sizeof(addr), "%s", r->live[i].addr);
        struct rpc_conn *c = remove_live(r, addr);
        mq_info("the broker's channel destroyed, %s, clean it's data structure at once", addr);
        cleanup_addr(r, addr);
        rpc_conn_unref(c);
    }
    pthread_rwlock_unlock(&r->lock);
}

int ns_routes_scan(struct ns_routes *r, int64_t now_ms, int64_t expire_ms, struct rpc_conn ***conns,
                   size_t *nconns)
{
    int removed = 0;
    *conns = NULL;
    *nconns = 0;
    pthread_rwlock_wrlock(&r->lock);
    for (size_t i = 0; i < r->nlive;) {
        if (r->live[i].last_ms + expire_ms >= now_ms) {
            i++;
            continue;
        }
        char addr[128];
        snprintf(addr, sizeof(addr), "%s", r->live[i].addr);
        mq_warn("The broker channel expired, %s %" PRId64 "ms", addr, expire_ms);
        struct rpc_conn *c = remove_live(r, addr);
        if (c) {
            struct rpc_conn **nc = realloc(*conns, (*nconns + 1) * sizeof(*nc));
            if (nc) {
                *conns = nc;
                nc[(*nconns)++] = c;
            } else {
                rpc_conn_unref(c);
            }
        }
        cleanup_addr(r, addr);
        removed++;
    }
    pthread_rwlock_unlock(&r->lock);
    return removed;
}

json_t *ns_routes_topic_route(struct ns_routes *r, const char *topic)
{
    json_t *route = NULL;
    pthread_rwlock_rdlock(&r->lock);
    json_t *qmap = json_object_get(r->topics, topic);
    if (!qmap)
        goto out;
    json_t *qds = json_array(), *bds = json_array(), *qd;
    const char *name;
    int found = 0;
    json_object_foreach(qmap, name, qd)
    {
        json_array_append_new(qds, json_deep_copy(qd));
        json_t *bd = json_object_get(r->brokers, name);
        if (bd) {
            json_array_append_new(bds, json_deep_copy(bd));
            found = 1;
        }
    }
    if (!found) {
        json_decref(qds);
        json_decref(bds);
        goto out;
    }
    route = json_pack("{s:o,s:o,s:{}}", "queueDatas", qds, "brokerDatas", bds, "filterServerTable");
out:
    pthread_rwlock_unlock(&r->lock);
    return route;
}

json_t *ns_routes_cluster_info(struct ns_routes *r)
{
    pthread_rwlock_rdlock(&r->lock);
    json_t *clusters = json_object(), *set, *v;
    const char *cl, *name;
    json_object_foreach(r->clusters, cl, set)
    {
        json_t *names = json_array();
        json_object_foreach(set, name, v)
        {
            json_array_append_new(names, json_string(name));
        }
        json_object_set_new(clusters, cl, names);
    }
    json_t *info = json_pack("{s:o,s:o}", "brokerAddrTable", json_deep_copy(r->brokers),
                             "clusterAddrTable", clusters);
    pthread_rwlock_unlock(&r->lock);
    return info;
}

json_t *ns_routes_topic_list(struct ns_routes *r)
{
    pthread_rwlock_rdlock(&r->lock);
    json_t *list = json_array(), *v;
    const char *topic;
    json_object_foreach(r->topics, topic, v)
    {
        json_array_append_new(list, json_string(topic));
    }
    pthread_rwlock_unlock(&r->lock);
    return json_pack("{s:o}", "topicList", list);
}

json_t *ns_routes_topics_by_cluster(struct ns_routes *r, const char *cluster)
{
    pthread_rwlock_rdlock(&r->lock);
    json_t *list = json_array(), *set = json_object_get(r->clusters, cluster), *qmap, *v;
    const char *topic, *name;
    json_object_foreach(r->topics, topic, qmap)
    {
        json_object_foreach(qmap, name, v)
        {
            if (set && json_object_get(set, name)) {
                json_array_append_new(list, json_string(topic));
                break;
            }
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return json_pack("{s:o}", "topicList", list);
}

int ns_routes_delete_topic(struct ns_routes *r, const char *topic)
{
    pthread_rwlock_wrlock(&r->lock);
    int rc = json_object_del(r->topics, topic) == 0 ? 0 : -ENOENT;
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

void ns_routes_query_version(struct ns_routes *r, const char *addr,
                             const struct ns_data_version *dv, int64_t now_ms, int *changed,
                             int *have, struct ns_data_version *cur)
{
    pthread_rwlock_wrlock(&r->lock);
    struct live *l = find_live(r, addr);
    *have = l != NULL;
    *changed = !l || l->dv.timestamp != dv->timestamp || l->dv.counter != dv->counter;
    if (l) {
        *cur = l->dv;
        if (!*changed)
            l->last_ms = now_ms;
    }
    pthread_rwlock_unlock(&r->lock);
}

size_t ns_routes_live_count(struct ns_routes *r)
{
    pthread_rwlock_rdlock(&r->lock);
    size_t n = r->nlive;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

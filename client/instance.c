/* instance.c — what producers and consumers share: the NameServer list with failover, the topic
 * route cache and its 30 s refresh thread, fault-avoidance state, the remoting client (one
 * connection per broker) and the client id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"
#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "remoting/remoting.h"

#define NAMESRV_TIMEOUT_MS         3000
#define REQ_GET_ROUTEINFO_BY_TOPIC 105

static _Thread_local uint32_t tl_index;
static _Thread_local int tl_index_set;

static uint32_t *thread_index(void)
{
    if (!tl_index_set) { /* random start, as RocketMQ's ThreadLocalIndex */
        tl_index = (uint32_t)(mq_mono_us() ^ (int64_t)(uintptr_t)&tl_index);
        tl_index_set = 1;
    }
    return &tl_index;
}

static int split_namesrvs(struct mqc_instance *inst)
{
    size_t cap = 1;
    for (const char *s = inst->namesrv_str; *s; s++)
        cap += *s == ';';
    inst->namesrvs = calloc(cap, sizeof(*inst->namesrvs));
    if (!inst->namesrvs)
        return -ENOMEM;
    const char *s = inst->namesrv_str;
    while (*s) {
        size_t n = strcspn(s, ";");
        while (n && (*s == ' '))
            s++, n--;
        if (n > 0 && n < MQC_ADDR_MAX) {
            memcpy(inst->namesrvs[inst->nns], s, n);
            inst->namesrvs[inst->nns][n] = '\0';
            inst->nns++;
        }
        s += n;
        if (*s == ';')
            s++;
    }
    return inst->nns ? 0 : -EINVAL;
}

static void *timer_main(void *arg);

int mqc__instance_new(const struct mqc_config *cfg, const char *default_group,
                      struct mqc_instance **out)
{
    if (!cfg || !cfg->namesrv || !*cfg->namesrv)
        return -EINVAL;
    struct mqc_instance *inst = calloc(1, sizeof(*inst));
    if (!inst)
        return -ENOMEM;
    int rc = -ENOMEM;
    inst->cfg = *cfg;
    inst->namesrv_str = strdup(cfg->namesrv);
    inst->group = strdup(cfg->group ? cfg->group : default_group);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    inst->instance_name = strdup(cfg->instance_name ? cfg->instance_name : pid);
    if (!inst->namesrv_str || !inst->group || !inst->instance_name)
        goto fail;
    inst->cfg.namesrv = inst->namesrv_str;
    inst->cfg.group = inst->group;
    inst->cfg.instance_name = inst->instance_name;
    if (!inst->cfg.send_timeout_ms)
        inst->cfg.send_timeout_ms = 3000;
    if (!inst->cfg.max_message_size)
        inst->cfg.max_message_size = 4u << 20;
    if (!inst->cfg.max_async_bytes)
        inst->cfg.max_async_bytes = 64u << 20;
    /* Zero means default (mqclient.h); explicit "off" values become 0 for the code below. */
    inst->cfg.retries = cfg->retries == 0 ? 2 : (cfg->retries < 0 ? 0 : cfg->retries);
    if (inst->cfg.compress_type == MQC_COMPRESS_DEFAULT)
        inst->cfg.compress_type = MQC_COMPRESS_ZSTD;
    inst->cfg.fault_avoidance = cfg->fault_avoidance >= 0;
    if (inst->cfg.poll_namesrv_ms <= 0)
        inst->cfg.poll_namesrv_ms = MQC_ROUTE_REFRESH_MS;
    if ((rc = split_namesrvs(inst)) != 0)
        goto fail;
    /* RocketMQ's client id: ip@instanceName. */
    char uid[33];
    mqc_uniq_id(uid);
    unsigned ip[4];
    for (int i = 0; i < 4; i++)
        sscanf(uid + 2 * i, "%2x", &ip[i]);
    snprintf(inst->client_id, sizeof(inst->client_id), "%u.%u.%u.%u@%s", ip[0], ip[1], ip[2], ip[3],
             inst->instance_name);
    pthread_mutex_init(&inst->lock, NULL);
    pthread_mutex_init(&inst->lease_lock, NULL);
    pthread_cond_init(&inst->timer_cond, NULL);
    mq_map_init(&inst->routes);
    /* Binary (ROCKETMQ) headers: JSON's encode and parse cost more CPU per send than storing
     * the message does. */
    struct rpc_client_opts ro = {.serialize = RPC_SER_ROCKETMQ};
    if ((rc = rpc_client_new(&ro, &inst->rpc)) != 0)
        goto fail_locks;
    if (pthread_create(&inst->timer, NULL, timer_main, inst) != 0) {
        rc = -EAGAIN;
        goto fail_locks;
    }
    *out = inst;
    return 0;
fail_locks:
    rpc_client_free(inst->rpc);
    mq_map_destroy(&inst->routes);
    pthread_cond_destroy(&inst->timer_cond);
    pthread_mutex_destroy(&inst->lock);
    mqc__lease_destroy(inst);
fail:
    free(inst->namesrvs);
    free(inst->namesrv_str);
    free(inst->group);
    free(inst->instance_name);
    free(inst);
    return rc;
}

void mqc__instance_free(struct mqc_instance *inst)
{
    if (!inst)
        return;
    pthread_mutex_lock(&inst->lock);
    inst->stopping = 1;
    pthread_cond_signal(&inst->timer_cond);
    pthread_mutex_unlock(&inst->lock);
    pthread_join(inst->timer, NULL);
    rpc_client_free(inst->rpc);
    size_t it = 0;
    void *v;
    while (mq_map_next(&inst->routes, &it, NULL, &v))
        mqc_route_free(v);
    mq_map_destroy(&inst->routes);
    pthread_cond_destroy(&inst->timer_cond);
    pthread_mutex_destroy(&inst->lock);
    mqc__lease_destroy(inst);
    free(inst->namesrvs);
    free(inst->namesrv_str);
    free(inst->group);
    free(inst->instance_name);
    free(inst);
}

int mqc__namesrv_call(struct mqc_instance *inst, struct rpc_cmd *req, int timeout_ms,
                      struct rpc_cmd **resp)
{
    pthread_mutex_lock(&inst->lock);
    unsigned start = inst->ns_index;
    pthread_mutex_unlock(&inst->lock);
    int rc = -EIO;
    for (size_t k = 0; k < inst->nns; k++) {
        unsigned i = (unsigned)((start + k) % inst->nns);
        rc = rpc_client_call(inst->rpc, inst->namesrvs[i], req, timeout_ms, resp);
        if (rc == 0) {
            pthread_mutex_lock(&inst->lock);
            inst->ns_index = i;
            pthread_mutex_unlock(&inst->lock);
            return 0;
        }
        mq_debug("NameServer %s: %s", inst->namesrvs[i], mq_strerror(rc));
    }
    return rc;
}

/* Asks the NameServers for a topic's route. Returns 0 with *out, -ENOENT, or -errno. */
static int fetch_route(struct mqc_instance *inst, const char *topic, struct mqc_route **out)
{
    struct rpc_cmd *req = rpc_cmd_new(REQ_GET_ROUTEINFO_BY_TOPIC), *resp = NULL;
    if (!req || rpc_cmd_ext_set(req, "topic", topic)) {
        rpc_cmd_free(req);
        return -ENOMEM;
    }
    int rc = mqc__namesrv_call(inst, req, NAMESRV_TIMEOUT_MS, &resp);
    rpc_cmd_free(req);
    if (rc)
        return rc;
    if (resp->code == RPC_TOPIC_NOT_EXIST)
        rc = -ENOENT;
    else if (resp->code != RPC_SUCCESS || !resp->body)
        rc = -EIO;
    else
        rc = mqc_route_parse(topic, (const char *)resp->body, resp->body_len, out);
    rpc_cmd_free(resp);
    return rc;
}

/* Builds a route for a topic that does not exist yet from TBW102's: the same brokers, with
 * min(defaultTopicQueueNums, TBW102's count) queues each (RocketMQ's producer does this). */
static int default_route(struct mqc_route *tbw, const char *topic)
{
    size_t k = 0;
    for (size_t i = 0; i < tbw->npub; i++) {
        if (tbw->pub[i].queue_id >= MQC_DEFAULT_TOPIC_QNUM)
            continue;
        tbw->pub[k] = tbw->pub[i];
        snprintf(tbw->pub[k].topic, sizeof(tbw->pub[k].topic), "%s", topic);
        k++;
    }
    tbw->npub = k;
    tbw->nsub = 0;
    tbw->provisional = 1;
    snprintf(tbw->topic, sizeof(tbw->topic), "%s", topic);
    return k ? 0 : -ENOENT;
}

int mqc__route_refresh(struct mqc_instance *inst, const char *topic, int allow_default)
{
    struct mqc_route *r = NULL;
    int rc = fetch_route(inst, topic, &r);
    if (rc == -ENOENT && allow_default) {
        rc = fetch_route(inst, MQC_DEFAULT_TOPIC, &r);
        if (rc == 0 && (rc = default_route(r, topic)) != 0) {
            mqc_route_free(r);
            r = NULL;
        }
    }
    if (rc)
        return rc;
    pthread_mutex_lock(&inst->lock);
    void *old = NULL;
    rc = mq_map_put(&inst->routes, topic, r, &old);
    pthread_mutex_unlock(&inst->lock);
    if (rc)
        mqc_route_free(r);
    mqc_route_free(old);
    return rc;
}

int mqc__pick_queue(struct mqc_instance *inst, const char *topic, const char *last_failed,
                    int use_faults, struct mqc_mq *q, char addr[MQC_ADDR_MAX])
{
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&inst->lock);
        struct mqc_route *r = mq_map_get(&inst->routes, topic);
        if (r) {
            use_faults =
                use_faults && atomic_load_explicit(&inst->faults_used, memory_order_relaxed);
            int pos = mqc_select_queue(r->pub, r->npub, thread_index(), last_failed,
                                       use_faults ? &inst->faults : NULL,
                                       use_faults ? mq_mono_us() / 1000 : 0);
            const char *a = pos >= 0 ? mqc_route_broker_addr(r, r->pub[pos].broker) : NULL;
            if (a) {
                *q = r->pub[pos];
                mq_str_copy(addr, MQC_ADDR_MAX, a, MQC_ADDR_MAX);
            }
            pthread_mutex_unlock(&inst->lock);
            return a ? 0 : -ENOENT;
        }
        pthread_mutex_unlock(&inst->lock);
        int rc = mqc__route_refresh(inst, topic, 1);
        if (rc)
            return rc;
    }
    return -ENOENT;
}

int mqc__broker_addr(struct mqc_instance *inst, const char *broker, char addr[MQC_ADDR_MAX])
{
    int rc = -ENOENT;
    pthread_mutex_lock(&inst->lock);
    size_t it = 0;
    void *v;
    while (rc && mq_map_next(&inst->routes, &it, NULL, &v)) {
        const char *a = mqc_route_broker_addr(v, broker);
        if (a) {
            snprintf(addr, MQC_ADDR_MAX, "%s", a);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&inst->lock);
    return rc;
}

void mqc__report_latency(struct mqc_instance *inst, const char *broker, int64_t latency_ms,
                         int failed)
{
    int excludes = failed || mqc_fault_duration(latency_ms) > 0;
    if (!excludes && !atomic_load_explicit(&inst->faults_used, memory_order_relaxed))
        return;
    pthread_mutex_lock(&inst->lock);
    if (excludes)
        atomic_store_explicit(&inst->faults_used, 1, memory_order_relaxed);
    mqc_fault_update(&inst->faults, broker, latency_ms, failed, mq_mono_us() / 1000);
    pthread_mutex_unlock(&inst->lock);
}

int mqc__queues(struct mqc_instance *inst, const char *topic, int for_send, struct mqc_mq **out,
                size_t *n)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&inst->lock);
        struct mqc_route *r = mq_map_get(&inst->routes, topic);
        int rc = -ENOENT;
        if (r && r->provisional && attempt == 0) {
            /* A route guessed from TBW102 lists no readable queues: ask for the real one. */
            pthread_mutex_unlock(&inst->lock);
            if (mqc__route_refresh(inst, topic, 0) == 0)
                continue;
            pthread_mutex_lock(&inst->lock);
            r = mq_map_get(&inst->routes, topic);
        }
        if (r) {
            size_t cnt = for_send ? r->npub : r->nsub;
            struct mqc_mq *src = for_send ? r->pub : r->sub;
            *out = malloc((cnt ? cnt : 1) * sizeof(**out));
            rc = *out ? 0 : -ENOMEM;
            if (*out) {
                if (cnt)
                    memcpy(*out, src, cnt * sizeof(**out));
                *n = cnt;
            }
        }
        pthread_mutex_unlock(&inst->lock);
        if (r)
            return rc;
        if ((rc = mqc__route_refresh(inst, topic, 0)) != 0)
            return rc;
    }
    return -ENOENT;
}

int mqc__errno_of_response(int code, const char *remark)
{
    switch (code) {
    case RPC_SUCCESS:
        return 0;
    case RPC_MESSAGE_ILLEGAL:
        return remark && strstr(remark, "too large") ? -EMSGSIZE : -EINVAL;
    case RPC_TOPIC_NOT_EXIST:
        return -ENOENT;
    case RPC_NO_PERMISSION:
        return -EACCES;
    case RPC_SERVICE_NOT_AVAILABLE: /* our broker's remark starts "disk full" when it is */
        return remark && strncmp(remark, "disk full", 9) == 0 ? -ENOSPC : -EIO;
    case RPC_SYSTEM_BUSY:
        return -EBUSY;
    default:
        return -EIO;
    }
}

/* Refreshes every cached route every poll_namesrv_ms (30 s by default). */
static void *timer_main(void *arg)
{
    struct mqc_instance *inst = arg;
    pthread_mutex_lock(&inst->lock);
    while (!inst->stopping) {
        struct timespec ts;
        mq_deadline(&ts, CLOCK_REALTIME, (int64_t)inst->cfg.poll_namesrv_ms * 1000);
        pthread_cond_timedwait(&inst->timer_cond, &inst->lock, &ts);
        if (inst->stopping)
            break;
        /* Copy the topic names, then refresh without holding the lock. */
        size_t n = inst->routes.len, k = 0, it = 0;
        char(*topics)[MQC_NAME_MAX] = calloc(n ? n : 1, sizeof(*topics));
        const char *key;
        while (topics && mq_map_next(&inst->routes, &it, &key, NULL) && k < n)
            snprintf(topics[k++], MQC_NAME_MAX, "%s", key);
        pthread_mutex_unlock(&inst->lock);
        for (size_t i = 0; i < k; i++)
            (void)mqc__route_refresh(inst, topics[i], 1);
        free(topics);
        pthread_mutex_lock(&inst->lock);
    }
    pthread_mutex_unlock(&inst->lock);
    return NULL;
}

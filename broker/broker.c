/* broker.c — mqbroker's lifecycle: open the store (taking its lock) and the metadata, start
 * the remoting server with the handler table, register with the NameServers, and run the
 * housekeeping timer (consumer offsets persisted every 5 s, silent clients dropped, periodic
 * registration). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"
#include "common/mq_err.h"
#include "common/mq_file.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

#define OFFSET_PERSIST_MS 5000
#define CLIENT_SCAN_MS    10000
#define REGISTER_RETRY_MS 1000

/* The store's dispatch thread reports new messages: wake the pulls parked on that queue. */
static void on_arrival(void *arg, const char *topic, size_t topic_len, int queue_id,
                       int64_t max_offset)
{
    struct broker *b = arg;
    char name[BRK_NAME_MAX];
    if (topic_len >= sizeof(name))
        return;
    memcpy(name, topic, topic_len);
    name[topic_len] = '\0';
    brk_hold_notify(b->send_waits, name, queue_id, max_offset);
    brk_hold_notify(b->holds, name, queue_id, max_offset);
    if (strcmp(name, MQ_SCHEDULE_TOPIC) == 0)
        brk__sched_notify(b->sched, queue_id);
}

static void *conn_ref(void *conn)
{
    return rpc_conn_ref(conn);
}

static void conn_unref(void *conn)
{
    rpc_conn_unref(conn);
}

/* A group's membership changed: tell its clients to rebalance now (RocketMQ's
 * NOTIFY_CONSUMER_IDS_CHANGED, oneway; stock clients may ignore it and rebalance on their
 * timer). */
static void on_group_change(const char *group, void *arg)
{
    struct broker *b = arg;
    void *conns[256];
    size_t n = brk_consumers_conns(b->consumers, group, conns, 256);
    for (size_t i = 0; i < n; i++) {
        struct rpc_cmd *req = rpc_cmd_new(REQ_NOTIFY_CONSUMER_IDS_CHANGED);
        if (req && rpc_cmd_ext_set(req, "consumerGroup", group) == 0)
            (void)rpc_conn_send_oneway(conns[i], req);
        else
            rpc_cmd_free(req);
        rpc_conn_unref(conns[i]);
    }
}

static void on_conn_close(struct rpc_conn *conn, void *arg)
{
    struct broker *b = arg;
    brk_consumers_conn_closed(b->consumers, conn);
    brk__tx_producers_prune(b->tx, conn, 0);
}

/* A connection to a NameServer closed (it went down, or restarted and lost every route):
 * register at once — but at most once a REGISTER_RETRY_MS (timer_main), since a peer that
 * closes every connection (not a NameServer, or one that drops the request) would otherwise
 * make a loop of connections — and every REGISTER_RETRY_MS while it does not answer. */
static void on_ns_close(struct rpc_conn *conn, void *arg)
{
    struct broker *b = arg;
    (void)conn;
    pthread_mutex_lock(&b->timer_lock);
    b->ns_closed = 1;
    pthread_cond_signal(&b->timer_cond);
    pthread_mutex_unlock(&b->timer_lock);
}

static void *timer_main(void *arg)
{
    struct broker *b = arg;
    pthread_setname_np(pthread_self(), "brk-timer");
    int64_t now = mq_mono_us() / 1000;
    int64_t next_persist = now + OFFSET_PERSIST_MS, next_scan = now + CLIENT_SCAN_MS;
    int64_t next_register = now + b->conf.register_period_ms, last_register = 0;
    pthread_mutex_lock(&b->timer_lock);
    while (!b->stopping) {
        now = mq_mono_us() / 1000;
        if (b->ns_closed) { /* a second after the last registration began, or now */
            b->ns_closed = 0;
            if (last_register + REGISTER_RETRY_MS < next_register)
                next_register = last_register + REGISTER_RETRY_MS;
        }
        int64_t next = next_persist < next_scan ? next_persist : next_scan;
        if (next_register < next)
            next = next_register;
        if (!b->register_now && next > now) {
            struct timespec ts;
            mq_deadline(&ts, CLOCK_REALTIME, (next - now) * 1000);
            pthread_cond_timedwait(&b->timer_cond, &b->timer_lock, &ts);
            continue;
        }
        int reg = b->register_now || now >= next_register;
        b->register_now = 0;
        struct brk_reg_wait *waits = reg ? brk__reg_waits_take(b) : NULL;
        pthread_mutex_unlock(&b->timer_lock);
        if (reg) {
            last_register = now;
            int ok = brk__register_all(b, 0);
            brk__reg_waits_answer(waits); /* sent, whether the NameServers took it or not */
            /* A NameServer that did not take it (down, restarting) is asked again within a
             * second rather than a period: one that comes back knows no broker until then. */
            int64_t period = b->conf.register_period_ms;
            if (ok < brk__namesrv_count(b) && period > REGISTER_RETRY_MS)
                period = REGISTER_RETRY_MS;
            next_register = mq_mono_us() / 1000 + period;
        }
        if (now >= next_persist) {
            (void)brk_offsets_persist(b->offsets);
            (void)brk_groups_flush(b->groups); /* groups made for clients */
            next_persist = now + OFFSET_PERSIST_MS;
        }
        if (now >= next_scan) {
            size_t n = brk_consumers_scan(b->consumers, mq_mono_us() / 1000);
            if (n)
                mq_info("dropped %zu consumer client(s) silent for %d ms", n,
                        b->conf.client_expiry_ms);
            (void)brk_locks_expire(b->locks, mq_now_ms());
            brk__tx_producers_prune(b->tx, NULL, mq_mono_us() / 1000 - b->conf.client_expiry_ms);
            next_scan = now + CLIENT_SCAN_MS;
        }
        pthread_mutex_lock(&b->timer_lock);
    }
    brk__reg_waits_answer(brk__reg_waits_take(b)); /* stopping: answer without waiting */
    pthread_mutex_unlock(&b->timer_lock);
    return NULL;
}

static int open_meta(struct broker *b)
{
    char dir[1100], path[1200];
    snprintf(dir, sizeof(dir), "%s/config", b->conf.store.store_path_root_dir);
    int rc = mq_mkdirs(dir, 0755);
    if (rc) {
        mq_error("cannot create %s: %s", dir, mq_strerror(rc));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/topics.json", dir);
    if ((rc = brk_topics_open(path, &b->topics)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/subscriptionGroup.json", dir);
    if ((rc = brk_groups_open(path, &b->groups)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/consumerOffset.json", dir);
    if ((rc = brk_offsets_open(path, &b->offsets)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/delayOffset.json", dir);
    struct brk_sched *sc;
    if ((rc = brk__sched_open(b, path, &sc)) != 0)
        goto fail;
    atomic_store(&b->sched, sc);
    return brk_consumers_new(b->conf.client_expiry_ms, on_group_change, b, conn_ref, conn_unref,
                             &b->consumers);
fail:
    mq_error("cannot open %s: %s", path, mq_strerror(rc));
    return rc;
}

/* RocketMQ's system topics: TBW102 (the auto-creation template, only with
 * autoCreateTopicEnable), SELF_TEST_TOPIC, SCHEDULE_TOPIC_XXXX (a queue per delay level), and
 * topics named after the cluster and the broker (clients use them to reach a specific
 * broker). */
static int create_system_topics(struct broker *b)
{
    struct brk_topic t;
    int rc = 0;
    if (b->conf.auto_create_topic) {
        if (brk_topics_get(b->topics, BRK_DEFAULT_TOPIC, &t) != 0) {
            memset(&t, 0, sizeof(t));
            snprintf(t.name, sizeof(t.name), "%s", BRK_DEFAULT_TOPIC);
            t.read_queues = t.write_queues = b->conf.default_topic_queues;
            t.perm = BRK_PERM_INHERIT | BRK_PERM_READ | BRK_PERM_WRITE;
            rc = brk_topics_put(b->topics, &t);
        }
    } else if (brk_topics_get(b->topics, BRK_DEFAULT_TOPIC, &t) == 0) {
        rc = brk_topics_delete(b->topics, BRK_DEFAULT_TOPIC);
    }
    int levels = brk__sched_levels(b->sched);
    if (rc == 0 && (brk_topics_get(b->topics, MQ_SCHEDULE_TOPIC, &t) != 0 ||
                    t.read_queues != levels || t.write_queues != levels)) {
        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "%s", MQ_SCHEDULE_TOPIC);
        t.read_queues = t.write_queues = levels;
        t.perm = BRK_PERM_READ | BRK_PERM_WRITE;
        rc = brk_topics_put(b->topics, &t);
    }
    const char *names[] = {"SELF_TEST_TOPIC", b->conf.cluster_name, b->conf.broker_name};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        if (mq_check_topic(names[i], strlen(names[i])) == 0)
            rc = brk__ensure_topic(b, names[i], 1, 1, &t);
    }
    return rc;
}

int brk_start(const struct brk_conf *conf, struct broker **out)
{
    struct broker *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->conf = *conf;
    b->start_ms = mq_now_ms();
    pthread_mutex_init(&b->timer_lock, NULL);
    pthread_cond_init(&b->timer_cond, NULL);
    int rc;
    if ((rc = brk_locks_new(b->conf.rebalance_lock_ms, &b->locks)) != 0 ||
        (rc = brk_filters_new(&b->filters)) != 0 ||
        (rc = brk_hold_new(brk__hold_fire, b, 0, &b->holds)) != 0 ||
        (rc = brk_hold_new(brk__send_visible, b, 1, &b->send_waits)) != 0)
        goto fail;
    /* Records carry the advertised address as STOREHOST (offset message ids encode it). */
    char host[96];
    snprintf(host, sizeof(host), "%s:%d", b->conf.broker_ip, b->conf.listen_port);
    brk__parse_host(host, &b->conf.store.store_host);
    b->sync_flush = strcmp(b->conf.store.flush_disk_type, "SYNC_FLUSH") == 0;
    /* The store first: its lock (storePathRootDir/lock) also guards config/, so a broker
     * started on a store another process has leaves the metadata alone too. */
    if ((rc = store_open(&b->conf.store, on_arrival, b, &b->store)) != 0) {
        if (rc == -EBUSY)
            mq_error("the store in %s is in use (is another broker running on it?)",
                     b->conf.store.store_path_root_dir);
        else
            mq_error("cannot open the store in %s: %s", b->conf.store.store_path_root_dir,
                     mq_strerror(rc));
        goto fail;
    }
    if ((rc = open_meta(b)) != 0 || (rc = create_system_topics(b)) != 0 ||
        (rc = brk__sched_start(b->sched)) != 0 || (rc = brk__tx_open(b, &b->tx)) != 0)
        goto fail;
    struct rpc_server_opts so = {
        .addr = b->conf.listen_addr,
        .port = b->conf.listen_port,
        .io_threads = b->conf.io_threads,
        .worker_threads = b->conf.worker_threads,
        .max_frame = (size_t)b->conf.store.max_message_size + (1u << 20),
    };
    if (so.max_frame < (16u << 20))
        so.max_frame = 16u << 20;
    if ((rc = rpc_server_new(&so, &b->srv)) != 0)
        goto fail;
    rpc_server_on_close(b->srv, on_conn_close, b);
    brk__register_client_handlers(b);
    brk__register_admin_handlers(b);
    brk__register_send_handlers(b);
    brk__register_pull_handlers(b);
    brk__register_query_handlers(b);
    brk__register_merge_handlers(b);
    brk__register_lock_handlers(b);
    brk__register_stats_handlers(b);
    brk__register_tx_handlers(b);
    if ((rc = rpc_server_start(b->srv)) != 0) {
        mq_error("cannot listen on %s:%d: %s", b->conf.listen_addr, b->conf.listen_port,
                 mq_strerror(rc));
        goto fail;
    }
    snprintf(b->addr, sizeof(b->addr), "%s:%d", b->conf.broker_ip, rpc_server_port(b->srv));
    if ((rc = rpc_client_new(NULL, &b->ns_client)) != 0)
        goto fail;
    rpc_client_on_close(b->ns_client, on_ns_close, b);
    b->register_now = 1; /* register at once */
    if (pthread_create(&b->timer, NULL, timer_main, b) != 0) {
        rc = -EAGAIN;
        goto fail;
    }
    mq_info("broker %s (cluster %s) serving on %s, store %s", b->conf.broker_name,
            b->conf.cluster_name, b->addr, b->conf.store.store_path_root_dir);
    *out = b;
    return 0;
fail:
    rpc_server_free(b->srv);
    rpc_client_free(b->ns_client);
    brk__tx_close(b->tx);
    brk__sched_close(atomic_exchange(&b->sched, NULL));
    store_close(b->store);
    brk_hold_free(b->send_waits);
    brk_hold_free(b->holds);
    brk_filters_free(b->filters);
    brk_consumers_free(b->consumers);
    brk_locks_free(b->locks);
    brk_offsets_close(b->offsets);
    brk_groups_close(b->groups);
    brk_topics_close(b->topics);
    pthread_cond_destroy(&b->timer_cond);
    pthread_mutex_destroy(&b->timer_lock);
    free(b);
    return rc;
}

int brk_port(const struct broker *b)
{
    return rpc_server_port(b->srv);
}

void brk_stop(struct broker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->timer_lock);
    b->stopping = 1;
    pthread_cond_signal(&b->timer_cond);
    pthread_mutex_unlock(&b->timer_lock);
    pthread_join(b->timer, NULL);
    (void)brk__register_all(b, 1);
    rpc_server_free(b->srv); /* stops accepting, closes connections, joins its threads */
    rpc_client_free(b->ns_client);
    /* Persisted while the store lock (which guards config/ too) is still held; the close
     * below writes again only what a pull answered during store_close committed. */
    (void)brk_offsets_persist(b->offsets);
    (void)brk_groups_flush(b->groups);
    /* its copies stored and their offsets persisted; no arrival notice reaches it after */
    brk__sched_close(atomic_exchange(&b->sched, NULL));
    brk__tx_close(b->tx);
    store_close(b->store);        /* flushes, writes the checkpoint, removes the abort file */
    brk_hold_free(b->send_waits); /* replies to closed connections are dropped */
    brk_hold_free(b->holds);      /* parked pulls are dropped: their connections are closed */
    brk_filters_free(b->filters); /* after the holds: a parked pull may use it */
    brk_consumers_free(b->consumers);
    brk_locks_free(b->locks);
    brk_offsets_close(b->offsets); /* persists */
    brk_groups_close(b->groups);
    brk_topics_close(b->topics);
    pthread_cond_destroy(&b->timer_cond);
    pthread_mutex_destroy(&b->timer_lock);
    mq_info("broker %s stopped", b->conf.broker_name);
    free(b);
}

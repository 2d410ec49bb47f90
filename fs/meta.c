/* meta.c — what mqfs knows from the NameServers: the topic list and the cluster's brokers,
 * cached. Listings and lookups use the cache; it is refetched when older than a second, and
 * after a failed fetch the cache is used as it is for MQFS_NS_RETRY_US, so a NameServer that
 * is down costs one bounded call (the first), never a hang: once a fetch failed, requests are
 * answered from the cache at once and a background thread retries at most every two seconds
 * until the NameServer answers again (docs/FS.md "Directories and listings").
 *
 * System topics (TBW102, %RETRY%..., SCHEDULE_TOPIC_XXXX, the topics named after clusters and
 * brokers, ...) are hidden from listings but stay reachable by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "fs/mqfs_int.h"

/* RocketMQ's TopicValidator system topics and prefixes. */
static const char *const system_topics[] = {
    "TBW102",
    "SCHEDULE_TOPIC_XXXX",
    "BenchmarkTest",
    "OFFSET_MOVED_EVENT",
    "SELF_TEST_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
};
static const char *const system_prefixes[] = {"%RETRY%", "%DLQ%", "rmq_sys_", "RMQ_SYS_"};

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int mqfs__topic_hidden(struct mqfs *fs, const char *topic)
{
    for (size_t i = 0; i < sizeof(system_topics) / sizeof(system_topics[0]); i++)
        if (strcmp(topic, system_topics[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(system_prefixes) / sizeof(system_prefixes[0]); i++)
        if (has_prefix(topic, system_prefixes[i]))
            return 1;
    /* The broker registers a topic named after its cluster and one after itself, and 4.x
     * brokers a "<cluster>_REPLY_TOPIC". */
    for (size_t i = 0; i < fs->brokers.n; i++) {
        const struct mqc_broker_info *b = &fs->brokers.v[i];
        size_t cl = strlen(b->cluster);
        if (strcmp(topic, b->name) == 0 || strcmp(topic, b->cluster) == 0 ||
            (strncmp(topic, b->cluster, cl) == 0 && strcmp(topic + cl, "_REPLY_TOPIC") == 0))
            return 1;
    }
    return 0;
}

int mqfs__topic_known(struct mqfs *fs, const char *topic)
{
    return mq_map_get(&fs->created, topic) || mq_map_get(&fs->topic_set, topic);
}

/* Asks the NameServers once and stores the answer (or the failure). Serialized by fetch_lock;
 * a caller that waited for another's fetch takes that one's outcome. */
static int fetch(struct mqfs *fs)
{
    int64_t asked = mq_mono_us();
    pthread_mutex_lock(&fs->fetch_lock);
    pthread_mutex_lock(&fs->lock);
    int done = mqfs__fetch_settled(&fs->topics_st, asked);
    pthread_mutex_unlock(&fs->lock);
    if (done != 1) {
        pthread_mutex_unlock(&fs->fetch_lock);
        return done;
    }
    char **names = NULL;
    size_t n = 0;
    struct mqc_broker_info *b = NULL;
    size_t nb = 0;
    int rc = mqc_admin_topic_list(fs->admin, &names, &n);
    if (rc == 0 && mqc_admin_cluster_info(fs->admin, &b, &nb) != 0)
        b = NULL; /* keep the brokers known before */
    struct mq_map set;
    mq_map_init(&set);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = mq_map_put(&set, names[i], fs, NULL);
    if (rc) {
        mq_map_destroy(&set);
        free(names);
        free(b);
        b = NULL;
    }
    pthread_mutex_lock(&fs->lock);
    if (rc == 0) {
        free(fs->topics.v);
        fs->topics.v = names;
        fs->topics.n = n;
        mq_map_destroy(&fs->topic_set);
        fs->topic_set = set;
        if (b) {
            free(fs->brokers.v);
            fs->brokers.v = b;
            fs->brokers.n = nb;
        }
        if (fs->topics_st.failed_us > fs->topics_st.at_us)
            mq_info("NameServer %s answers again", fs->namesrv);
        fs->topics_st.at_us = mq_mono_us();
    } else {
        if (!fs->topics_st.failed_us || fs->topics_st.failed_us < fs->topics_st.at_us)
            mq_warn("NameServer %s: %s; listings show what was cached", fs->namesrv,
                    mq_strerror(rc));
        fs->topics_st.failed_us = mq_mono_us();
        fs->topics_st.err = rc;
    }
    pthread_mutex_unlock(&fs->lock);
    pthread_mutex_unlock(&fs->fetch_lock);
    return rc;
}

int mqfs__fetch_settled(const struct mqfs_fetch_state *st, int64_t asked)
{
    return st->at_us >= asked ? 0 : st->failed_us >= asked ? st->err : 1;
}

int mqfs__fetch_due(struct mqfs *fs, struct mqfs_fetch_state *st, int64_t max_age_us)
{
    pthread_mutex_lock(&fs->lock);
    int64_t now = mq_mono_us();
    int fresh = st->at_us && now - st->at_us < max_age_us;
    int failing = st->failed_us > st->at_us;
    int rc = fresh ? 0 : failing ? st->err : 1;
    if (!fresh && failing && fs->refresher_started) { /* never wait on a failing server */
        st->wanted = 1;
        pthread_cond_signal(&fs->refresh_cond);
    }
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int mqfs__meta_refresh(struct mqfs *fs, int64_t max_age_us)
{
    int rc = mqfs__fetch_due(fs, &fs->topics_st, max_age_us);
    return rc == 1 ? fetch(fs) : rc;
}

/* One of the refresher's fetches: when it is wanted and its retry time came, runs it with the
 * lock dropped and returns 1; else lowers *wait_us (-1: none yet) to when it is due. Lock held. */
static int run_due(struct mqfs *fs, struct mqfs_fetch_state *st, int (*fetch_fn)(struct mqfs *),
                   int64_t *wait_us)
{
    if (!st->wanted)
        return 0;
    int64_t w = st->failed_us + MQFS_NS_RETRY_US - mq_mono_us();
    if (w > 0) {
        if (*wait_us < 0 || w < *wait_us)
            *wait_us = w;
        return 0;
    }
    st->wanted = 0;
    pthread_mutex_unlock(&fs->lock);
    (void)fetch_fn(fs);
    pthread_mutex_lock(&fs->lock);
    return 1;
}

/* The refresher: while the NameServer (or a broker's group list, meta_groups.c) fails, fetches
 * in the background when asked, at most once per MQFS_NS_RETRY_US, so no request waits on it. */
static void *refresher_main(void *arg)
{
    struct mqfs *fs = arg;
    pthread_mutex_lock(&fs->lock);
    while (!fs->refresh_stop) {
        int64_t wait_us = -1;
        if (run_due(fs, &fs->topics_st, fetch, &wait_us) ||
            run_due(fs, &fs->groups_st, mqfs__groups_fetch, &wait_us))
            continue;
        if (wait_us < 0) {
            pthread_cond_wait(&fs->refresh_cond, &fs->lock);
            continue;
        }
        struct timespec ts;
        mq_deadline(&ts, CLOCK_REALTIME, wait_us);
        pthread_cond_timedwait(&fs->refresh_cond, &fs->lock, &ts);
    }
    pthread_mutex_unlock(&fs->lock);
    return NULL;
}

int mqfs__meta_start(struct mqfs *fs)
{
    pthread_cond_init(&fs->refresh_cond, NULL);
    if (pthread_create(&fs->refresher, NULL, refresher_main, fs) != 0)
        return -EAGAIN;
    fs->refresher_started = 1;
    return 0;
}

void mqfs__meta_stop(struct mqfs *fs)
{
    if (!fs->refresher_started)
        return;
    pthread_mutex_lock(&fs->lock);
    fs->refresh_stop = 1;
    pthread_cond_signal(&fs->refresh_cond);
    pthread_mutex_unlock(&fs->lock);
    pthread_join(fs->refresher, NULL);
    pthread_cond_destroy(&fs->refresh_cond);
    fs->refresher_started = 0;
}

/* Whether topic is known, refetching the list once if it is not (a topic created elsewhere). */
static int topic_exists(struct mqfs *fs, const char *topic)
{
    pthread_mutex_lock(&fs->lock);
    int known = mqfs__topic_known(fs, topic);
    pthread_mutex_unlock(&fs->lock);
    if (known)
        return 1;
    /* An unknown name may be a topic created a moment ago by another client: refetch unless
     * the list is very fresh. */
    if (mqfs__meta_refresh(fs, MQFS_MISS_AGE_US) != 0)
        return 0;
    pthread_mutex_lock(&fs->lock);
    known = mqfs__topic_known(fs, topic);
    pthread_mutex_unlock(&fs->lock);
    return known;
}

size_t mqfs__masters(struct mqfs *fs, char (*out)[64], size_t max, int *rc)
{
    *rc = mqfs__meta_refresh(fs, MQFS_LIST_AGE_US);
    size_t k = 0;
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->brokers.n && k < max; i++)
        if (fs->brokers.v[i].id == 0)
            snprintf(out[k++], 64, "%s", fs->brokers.v[i].addr);
    pthread_mutex_unlock(&fs->lock);
    return k;
}

int mqfs__topic_create(struct mqfs *fs, const char *topic)
{
    char addrs[16][64];
    int nsrc;
    size_t n = mqfs__masters(fs, addrs, 16, &nsrc);
    struct mqc_topic_config t = {.topic = topic,
                                 .read_queues = fs->topic_queues,
                                 .write_queues = fs->topic_queues,
                                 .perm = 6};
    int rc = -EIO, made = 0;
    for (size_t i = 0; i < n; i++) {
        int r = mqc_admin_create_topic(fs->admin, addrs[i], &t);
        if (r == 0)
            made = 1;
        else if (rc == -EIO)
            rc = r;
    }
    return made ? 0 : rc;
}

int mqfs__node_exists(struct mqfs *fs, const struct mqfs_node *n)
{
    switch (n->kind) {
    case MQFS_TOPIC:
    case MQFS_QUEUE_DIR:
        return topic_exists(fs, n->topic) ? 0 : -ENOENT;
    case MQFS_QUEUE: /* and its broker and queue id in the topic's route */
        return topic_exists(fs, n->topic) ? mqfs__queue_exists(fs, n) : -ENOENT;
    case MQFS_GROUP_DIR:
    case MQFS_GROUP:
        if (!mqfs__group_exists(fs, n->group)) /* made here, or known to a broker */
            return -ENOENT;
        return n->kind == MQFS_GROUP_DIR || topic_exists(fs, n->topic) ? 0 : -ENOENT;
    default: /* top-level entries; key/, blob/ and msg/ are query spaces: every valid name */
        return 0;
    }
}

/* One broker's liveness for the `cluster` file: whether it answers GET_BROKER_RUNTIME_INFO now. */
static const char *alive(struct mqfs *fs, const char *addr, char *buf, size_t len)
{
    struct mqc_kv *kv = NULL;
    size_t n = 0;
    int rc = mqc_admin_runtime_info(fs->admin, addr, &kv, &n);
    free(kv);
    if (rc == 0)
        return "yes";
    snprintf(buf, len, "no (%s)", mq_strerror(rc));
    return buf;
}

/* The `cluster` file's topic section: each listed topic's queues per broker, from its route. */
static int render_topics(struct mqfs *fs, char **names, size_t n, struct mq_buf *out)
{
    int w = mq_buf_printf(out, "\n%-30s %-20s %-5s %-5s %s\n", "#topic", "broker", "read", "write",
                          "perm");
    for (size_t i = 0; w == 0 && i < n; i++) {
        struct mqc_topic_route r;
        if (mqc_admin_topic_route(fs->admin, names[i], &r) != 0)
            continue; /* deleted meanwhile, or the NameServers went: skip the line */
        for (size_t q = 0; w == 0 && q < r.nqueues; q++)
            w = mq_buf_printf(out, "%-30s %-20s %-5d %-5d %s%s\n", names[i], r.queues[q].broker,
                              r.queues[q].read_queues, r.queues[q].write_queues,
                              r.queues[q].perm & 4 ? "r" : "-", r.queues[q].perm & 2 ? "w" : "-");
        mqc_topic_route_destroy(&r);
    }
    return w;
}

int mqfs__visible_topics(struct mqfs *fs, struct mqfs_names *out)
{
    (void)mqfs__meta_refresh(fs, MQFS_LIST_AGE_US);
    pthread_mutex_lock(&fs->lock);
    out->n = 0;
    out->v = calloc(fs->topics.n + fs->created.len + 1, sizeof(*out->v));
    int rc = out->v ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < fs->topics.n; i++)
        if (!mqfs__topic_hidden(fs, fs->topics.v[i]))
            rc = (out->v[out->n++] = strdup(fs->topics.v[i])) ? 0 : -ENOMEM;
    size_t it = 0;
    const char *t;
    while (rc == 0 && mq_map_next(&fs->created, &it, &t, NULL))
        if (!mq_map_get(&fs->topic_set, t))
            rc = (out->v[out->n++] = strdup(t)) ? 0 : -ENOMEM;
    pthread_mutex_unlock(&fs->lock);
    if (rc)
        mqfs__names_free(out);
    return rc;
}

void mqfs__names_free(struct mqfs_names *names)
{
    for (size_t i = 0; names->v && i < names->n; i++)
        free(names->v[i]);
    free(names->v);
    names->v = NULL;
    names->n = 0;
}

int mqfs__render_cluster(struct mqfs *fs, struct mq_buf *out)
{
    struct mqfs_names topics = {0};
    int rc = mqfs__meta_refresh(fs, MQFS_LIST_AGE_US);
    int w = mqfs__visible_topics(fs, &topics);
    /* A copy, so that the brokers can be asked without fs->lock. */
    pthread_mutex_lock(&fs->lock);
    size_t nb = fs->brokers.n;
    struct mqc_broker_info *bs = malloc((nb ? nb : 1) * sizeof(*bs));
    if (bs && nb)
        memcpy(bs, fs->brokers.v, nb * sizeof(*bs));
    int have_answer = fs->topics_st.at_us != 0;
    pthread_mutex_unlock(&fs->lock);
    w = w ? w : !bs ? -ENOMEM : 0;
    w = w ? w
          : mq_buf_printf(out, "# namesrv %s%s%s%s\n", fs->namesrv, rc ? ": unreachable (" : "",
                          rc ? mq_strerror(rc) : "",
                          !rc           ? ""
                          : have_answer ? "), showing the last answer"
                                        : ")");
    w = w ? w
          : mq_buf_printf(out, "%-20s %-20s %-4s %-22s %-6s %s\n", "#cluster", "broker", "id",
                          "address", "role", "alive");
    for (size_t i = 0; w == 0 && i < nb; i++) {
        char why[96];
        w = mq_buf_printf(out, "%-20s %-20s %-4lld %-22s %-6s %s\n", bs[i].cluster, bs[i].name,
                          (long long)bs[i].id, bs[i].addr, bs[i].id == 0 ? "master" : "slave",
                          alive(fs, bs[i].addr, why, sizeof(why)));
    }
    if (w == 0 && rc == 0) /* routes need the NameServers */
        w = render_topics(fs, topics.v, topics.n, out);
    mqfs__names_free(&topics);
    free(bs);
    return w;
}

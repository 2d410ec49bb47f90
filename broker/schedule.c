/* schedule.c — delayed messages (RocketMQ 4.9's ScheduleMessageService). A send whose DELAY
 * property names a level (1..the levels of messageDelayLevel) is stored in SCHEDULE_TOPIC_XXXX,
 * queue level - 1, with its own topic and queue in REAL_TOPIC / REAL_QID (brk__parked_props);
 * so is a retry from CONSUMER_SEND_MSG_BACK. One thread, brk-schedule, walks each level's
 * queue in order: once a message's time has come (store time + the level's delay) it stores a
 * copy under the real topic and queue without DELAY, and moves the level's offset past it. The
 * offsets are kept in config/delayOffset.json (with those of levels no longer configured),
 * written every 10 s and at stop once the copies before them are durable: a broker killed
 * between two writes delivers the copies since the last one again (at least once, as
 * RocketMQ), never none. A message whose topic was deleted while it waited is dropped. The
 * thread sleeps until the next message is due, or until the dispatcher reports a new delayed
 * message in a level where none waits (brk__sched_notify; one behind a waiting message is due
 * after it). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_file.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

#define SCHED_PERSIST_MS 10000 /* flushDelayOffsetInterval */
#define SCHED_RETRY_MS   1000  /* after a copy could not be stored (full disk, ...) */
#define SCHED_GET_MAX    32
#define SCHED_FILE_MAX   (1u << 20)

struct brk_sched {
    struct broker *b;
    int levels;
    int64_t delay_ms[MQ_DELAY_LEVELS_MAX];
    atomic_int_fast64_t off[MQ_DELAY_LEVELS_MAX]; /* next queue offset to deliver, per level */
    int64_t persisted[MQ_DELAY_LEVELS_MAX];       /* what the file says */
    int64_t unused[MQ_DELAY_LEVELS_MAX]; /* the file's offsets of levels past `levels`, or -1 */
    int64_t copies_end;                  /* commitlog offset past the last copy stored */
    /* when the level's next message is due (wall clock ms), 0: unknown or none waits */
    atomic_int_fast64_t head_due[MQ_DELAY_LEVELS_MAX];
    int failing[MQ_DELAY_LEVELS_MAX]; /* the level's last copy failed (logged once) */
    char *path;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop, kick, started;
};

int brk__delay_level(const struct broker *b, const char *props, size_t len)
{
    /* quietly: a client's bytes, maybe malformed after the pair that matters */
    const char *v = NULL, *name, *val;
    size_t vlen = 0, pos = 0, nlen, l;
    while (props && !v && mq_props_next(props, len, &pos, &name, &nlen, &val, &l) == 1) {
        if (nlen == sizeof(MQ_PROP_DELAY) - 1 && !memcmp(name, MQ_PROP_DELAY, nlen)) {
            v = val;
            vlen = l;
        }
    }
    int64_t level = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0; /* not a level (RocketMQ would fail the send): no delay */
        if (level < 1000000)
            level = level * 10 + (v[i] - '0');
    }
    int max = b->sched ? b->sched->levels : 0;
    return level > max ? max : (int)level;
}

int brk__parked_props(const char *props, size_t len, const char *topic, int queue_id, int level,
                      struct mq_buf *out)
{
    static const char *const drop[] = {MQ_PROP_REAL_TOPIC, MQ_PROP_REAL_QID, MQ_PROP_DELAY};
    char lv[16], qid[16];
    snprintf(lv, sizeof(lv), "%d", level);
    snprintf(qid, sizeof(qid), "%d", queue_id);
    int rc = props ? mq_props_copy_except(props, len, drop, level > 0 ? 3 : 2, out) : 0;
    if (rc == 0 && level > 0)
        rc = mq_props_add(out, MQ_PROP_DELAY, lv);
    if (rc == 0)
        rc = mq_props_add(out, MQ_PROP_REAL_TOPIC, topic);
    if (rc == 0)
        rc = mq_props_add(out, MQ_PROP_REAL_QID, qid);
    if (rc == 0 && out->len > MQ_MSG_PROPS_MAX)
        rc = -EMSGSIZE;
    return rc;
}

int brk__parked_dest(const struct mq_msg *m, char topic[BRK_NAME_MAX], int *qid)
{
    const char *t, *q;
    size_t tlen, qlen;
    char num[8], *end;
    if (mq_props_get(m->props, m->props_len, MQ_PROP_REAL_TOPIC, &t, &tlen) != 0 ||
        mq_props_get(m->props, m->props_len, MQ_PROP_REAL_QID, &q, &qlen) != 0 ||
        tlen >= BRK_NAME_MAX || mq_check_topic(t, tlen) != 0 || qlen == 0 || qlen >= sizeof(num))
        return -EINVAL;
    memcpy(num, q, qlen);
    num[qlen] = '\0';
    long v = strtol(num, &end, 10);
    if (*end || v < 0 || v >= BRK_MAX_QUEUES)
        return -EINVAL;
    memcpy(topic, t, tlen);
    topic[tlen] = '\0';
    *qid = (int)v;
    return 0;
}

/* ---- the offsets file: {"offsetTable":{"1":12,"2":0}} (RocketMQ writes the levels as bare
 * integer keys; both are read) ---- */

static int load(struct brk_sched *sc)
{
    json_t *root;
    int rc = brk_meta_load_json(sc->path, SCHED_FILE_MAX, &root);
    if (rc || !root)
        return rc;
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(root, "offsetTable"), key, val)
    {
        char *end;
        long level = strtol(key, &end, 10);
        if (*end || level < 1 || level > MQ_DELAY_LEVELS_MAX || !json_is_integer(val) ||
            json_integer_value(val) < 0)
            continue;
        if (level > sc->levels) { /* no longer configured: not delivered, its offset kept */
            sc->unused[level - 1] = json_integer_value(val);
            continue;
        }
        atomic_store(&sc->off[level - 1], json_integer_value(val));
        sc->persisted[level - 1] = json_integer_value(val);
    }
    json_decref(root);
    return 0;
}

/* Writes the offsets, once every copy before them is durable. Schedule thread, or after it. */
static void persist(struct brk_sched *sc)
{
    int64_t off[MQ_DELAY_LEVELS_MAX];
    int changed = 0;
    for (int i = 0; i < sc->levels; i++) {
        off[i] = atomic_load(&sc->off[i]);
        changed |= off[i] != sc->persisted[i];
    }
    if (!changed)
        return;
    int rc = sc->copies_end ? store_wait_flushed(sc->b->store, sc->copies_end) : 0;
    struct mq_buf b;
    mq_buf_init(&b);
    if (rc == 0)
        rc = mq_buf_append_str(&b, "{\"offsetTable\":{");
    for (int i = 0; rc == 0 && i < sc->levels; i++)
        rc = mq_buf_printf(&b, "%s\"%d\":%" PRId64, i ? "," : "", i + 1, off[i]);
    for (int i = sc->levels; rc == 0 && i < MQ_DELAY_LEVELS_MAX; i++)
        if (sc->unused[i] >= 0) /* for when the level is configured again */
            rc = mq_buf_printf(&b, ",\"%d\":%" PRId64, i + 1, sc->unused[i]);
    if (rc == 0)
        rc = mq_buf_append_str(&b, "}}");
    if (rc == 0)
        rc = mq_file_write_atomic(sc->path, b.data, b.len);
    mq_buf_destroy(&b);
    if (rc) {
        mq_error("%s: cannot persist the delay offsets: %s", sc->path, mq_strerror(rc));
        return;
    }
    memcpy(sc->persisted, off, sizeof(off[0]) * (size_t)sc->levels);
}

/* ---- delivery ---- */

/* Stores the copy of m due now. 0, 1 (m cannot be delivered: skipped, logged) or a negative
 * errno (try again later). */
static int deliver(struct brk_sched *sc, const struct mq_msg *m, int64_t phys)
{
    struct broker *b = sc->b;
    char topic[BRK_NAME_MAX];
    int qid;
    if (brk__parked_dest(m, topic, &qid)) {
        mq_error("schedule: the delayed message at %" PRId64
                 " has no valid REAL_TOPIC / REAL_QID; not delivered",
                 phys);
        return 1;
    }
    struct brk_topic bt;
    if (strncmp(topic, BRK_RETRY_PREFIX, strlen(BRK_RETRY_PREFIX)) == 0) {
        (void)brk__ensure_topic(b, topic, 1, 1, &bt); /* a retry outlives its group's topic */
    } else if (brk_topics_get(b->topics, topic, &bt) == -ENOENT) {
        /* deleted while the message waited: storing the copy would bring its queue back, and
         * the message would show up in a topic of that name created later */
        mq_warn("schedule: the topic %s of the delayed message at %" PRId64
                " was deleted; not delivered",
                topic, phys);
        return 1;
    }
    static const char *const drop[] = {MQ_PROP_DELAY};
    struct mq_buf props;
    mq_buf_init(&props);
    int rc = mq_props_copy_except(m->props, m->props_len, drop, 1, &props);
    struct store_put_result res;
    if (rc == 0) {
        struct mq_msg c = *m;
        c.topic = topic;
        c.topic_len = (uint16_t)strlen(topic);
        c.queue_id = qid;
        c.prepared_tx_offset = 0;
        c.props = (const char *)props.data;
        c.props_len = (uint16_t)props.len;
        rc = store_put(b->store, &c, &res);
    }
    mq_buf_destroy(&props);
    if (rc == -EINVAL || rc == -EBADMSG || rc == -EMSGSIZE || rc == MQ_ECORRUPT) {
        mq_error("schedule: the delayed message at %" PRId64 " cannot be stored again (%s); "
                 "not delivered",
                 phys, mq_strerror(rc));
        return 1;
    }
    if (rc)
        return rc;
    if (res.phys_offset + res.wrote_bytes > sc->copies_end)
        sc->copies_end = res.phys_offset + res.wrote_bytes;
    return 0;
}

/* Delivers what is due in one level's queue. Returns ms until it must look again (INT64_MAX:
 * nothing waits; the dispatcher's notice wakes the thread for new messages). */
static int64_t run_level(struct brk_sched *sc, int level)
{
    struct store *s = sc->b->store;
    const char *topic = MQ_SCHEDULE_TOPIC;
    size_t tl = strlen(topic);
    int qid = level - 1;
    int64_t delay = sc->delay_ms[level - 1];
    /* unknown before max is read: a message dispatched after that must wake the thread again
     * (brk__sched_notify), else it would wait for the persist interval */
    atomic_store(&sc->head_due[qid], 0);
    int64_t off = atomic_load(&sc->off[qid]);
    int64_t min = store_min_offset(s, topic, tl, qid), max = store_max_offset(s, topic, tl, qid);
    if (off < min || off > max) {
        /* RocketMQ's correctDelayOffset: below: retention took them; above: the queue lost
         * entries (a store started afresh) */
        mq_warn("schedule: level %d offset %" PRId64 " outside [%" PRId64 ", %" PRId64
                "]; going on from %" PRId64,
                level, off, min, max, off < min ? min : max);
        off = off < min ? min : max;
    }
    int64_t wait = INT64_MAX;
    while (off < max && wait == INT64_MAX) {
        struct store_get_result *r = NULL;
        if (store_get_messages(s, topic, tl, qid, off, SCHED_GET_MAX, 1 << 20, NULL, 0, &r)) {
            wait = SCHED_RETRY_MS;
            break;
        }
        if (r->count == 0) {
            if (r->next_offset > off)
                off = r->next_offset; /* a gap (retention): go on past it */
            else
                wait = SCHED_RETRY_MS;
        }
        for (size_t i = 0; i < r->count && wait == INT64_MAX; i++) {
            struct mq_msg m;
            const struct store_slice *sl = &r->msgs[i];
            if (mq_msg_decode(sl->data, sl->len, 0, 0, &m) <= 0) {
                mq_error("schedule: unreadable record at %" PRId64 "; skipped", sl->phys_offset);
                off = sl->queue_offset + 1;
                continue;
            }
            int64_t now = mq_now_ms(), due = m.store_ts + delay;
            if (due > now + delay)
                due = now; /* the clock went back (correctDeliverTimestamp) */
            if (due > now) {
                wait = due - now;
                atomic_store(&sc->head_due[qid], due);
                break;
            }
            int rc = deliver(sc, &m, sl->phys_offset);
            if (rc < 0) { /* logged once until it works again: a full disk lasts */
                if (!sc->failing[qid])
                    mq_warn("schedule: cannot deliver the delayed message at %" PRId64 ": %s; "
                            "trying again every second",
                            sl->phys_offset, mq_strerror(rc));
                sc->failing[qid] = 1;
                wait = SCHED_RETRY_MS;
                break;
            }
            if (sc->failing[qid])
                mq_info("schedule: level %d delivers again", level);
            sc->failing[qid] = 0;
            off = sl->queue_offset + 1;
        }
        store_release(s, r);
        pthread_mutex_lock(&sc->lock);
        int stop = sc->stop;
        pthread_mutex_unlock(&sc->lock);
        if (stop)
            break;
    }
    atomic_store(&sc->off[qid], off);
    return wait;
}

static void *sched_main(void *arg)
{
    struct brk_sched *sc = arg;
    pthread_setname_np(pthread_self(), "brk-schedule");
    int64_t next_persist = mq_mono_us() / 1000 + SCHED_PERSIST_MS;
    pthread_mutex_lock(&sc->lock);
    while (!sc->stop) {
        sc->kick = 0;
        pthread_mutex_unlock(&sc->lock);
        int64_t wait = SCHED_PERSIST_MS;
        for (int level = 1; level <= sc->levels; level++) {
            /* A level whose next message is not due yet has nothing to do: a message arriving
             * behind it is due later still (same delay, later store time). Only a clock that
             * went back (the wait grew past the level's delay) makes it look again. */
            int64_t due = atomic_load(&sc->head_due[level - 1]), left = due - mq_now_ms();
            int64_t w =
                due && left > 0 && left <= sc->delay_ms[level - 1] ? left : run_level(sc, level);
            if (w < wait)
                wait = w;
        }
        int64_t now = mq_mono_us() / 1000;
        if (now >= next_persist) {
            persist(sc);
            next_persist = now + SCHED_PERSIST_MS;
        }
        if (next_persist - now < wait)
            wait = next_persist - now;
        pthread_mutex_lock(&sc->lock);
        if (!sc->kick && !sc->stop && wait > 0) {
            struct timespec ts;
            mq_deadline(&ts, CLOCK_REALTIME, wait * 1000);
            pthread_cond_timedwait(&sc->cond, &sc->lock, &ts);
        }
    }
    pthread_mutex_unlock(&sc->lock);
    return NULL;
}

/* ---- life ---- */

int brk__sched_open(struct broker *b, const char *path, struct brk_sched **out)
{
    struct brk_sched *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return -ENOMEM;
    sc->b = b;
    sc->levels =
        mq_delay_levels_parse(b->conf.store.message_delay_level, sc->delay_ms, MQ_DELAY_LEVELS_MAX);
    for (int i = 0; i < MQ_DELAY_LEVELS_MAX; i++)
        sc->unused[i] = -1;
    pthread_mutex_init(&sc->lock, NULL);
    pthread_cond_init(&sc->cond, NULL);
    int rc = sc->levels < 0 ? -EINVAL : 0;
    if (rc == 0 && !(sc->path = strdup(path)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = load(sc);
    if (rc) {
        free(sc->path);
        sc->path = NULL; /* nothing is written over a file that could not be read */
        brk__sched_close(sc);
        return rc;
    }
    *out = sc;
    return 0;
}

int brk__sched_start(struct brk_sched *sc)
{
    if (pthread_create(&sc->thread, NULL, sched_main, sc) != 0)
        return -EAGAIN;
    sc->started = 1;
    return 0;
}

void brk__sched_notify(struct brk_sched *sc, int queue_id)
{
    if (!sc)
        return;
    /* a message behind one not due yet is due later still: the thread wakes for the first */
    if (queue_id >= 0 && queue_id < sc->levels && atomic_load(&sc->head_due[queue_id]) != 0)
        return;
    pthread_mutex_lock(&sc->lock);
    sc->kick = 1;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->lock);
}

void brk__sched_close(struct brk_sched *sc)
{
    if (!sc)
        return;
    if (sc->started) {
        pthread_mutex_lock(&sc->lock);
        sc->stop = 1;
        pthread_cond_signal(&sc->cond);
        pthread_mutex_unlock(&sc->lock);
        pthread_join(sc->thread, NULL);
    }
    if (sc->path)
        persist(sc);
    pthread_cond_destroy(&sc->cond);
    pthread_mutex_destroy(&sc->lock);
    free(sc->path);
    free(sc);
}

int brk__sched_levels(const struct brk_sched *sc)
{
    return sc ? sc->levels : 0;
}

int64_t brk__sched_offset(struct brk_sched *sc, int level)
{
    return sc && level >= 1 && level <= sc->levels ? atomic_load(&sc->off[level - 1]) : -1;
}

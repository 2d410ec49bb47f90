/* cmd_message.c — message subcommands: sendMessage (one sync send, optionally to a given
 * queue), consumeMessage (pulls from queues at an offset, or a group member that acks and
 * commits), queryMsgByKey (QUERY_MESSAGE on every broker of the topic) and queryMsgById
 * (VIEW_MESSAGE_BY_ID on the broker named by the offset message id). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_util.h"
#include "tools/mqadmin/mqadmin.h"

#define TOOLS_PRODUCER "TOOLS_PRODUCER"
#define TOOLS_CONSUMER "TOOLS_CONSUMER"

struct fixed_queue {
    const char *broker;
    int queue_id;
};

static size_t select_fixed(const struct mqc_mq *qs, size_t n, const struct mqc_message *m,
                           void *arg)
{
    const struct fixed_queue *f = arg;
    for (size_t i = 0; i < n; i++)
        if (qs[i].queue_id == f->queue_id && (!f->broker || strcmp(qs[i].broker, f->broker) == 0))
            return i;
    return n; /* not writable: mqc_send_select fails with -EINVAL */
}

int adm_send_message(struct adm *a)
{
    int ok = 1;
    struct fixed_queue f = {adm_opt(a, 'b'), (int)adm_int(a, 'i', -1, &ok)};
    long long delay = adm_int(a, 'd', 0, &ok);
    if (!ok)
        return ADM_USAGE;
    if (delay < 0 || delay > 1000)
        return adm_usage_error(a, "-d needs a delay level in 0..1000");
    if (f.broker && f.queue_id < 0)
        return adm_usage_error(a, "-b needs -i queueId");
    const char *body = adm_opt(a, 'p');
    struct mqc_message m = {.topic = adm_opt(a, 't'),
                            .tags = adm_opt(a, 'c'),
                            .keys = adm_opt(a, 'k'),
                            .body = body,
                            .body_len = strlen(body),
                            .delay_level = (int)delay};
    struct mqc_config cfg = {.namesrv = a->namesrv, .group = TOOLS_PRODUCER};
    struct mqc_producer *p = NULL;
    int rc = mqc_producer_new(&cfg, &p);
    if (rc)
        return adm_fail(a, rc, "cannot create a producer");
    struct mqc_send_result res;
    rc = f.queue_id >= 0 ? mqc_send_select(p, &m, select_fixed, &f, &res) : mqc_send(p, &m, &res);
    mqc_producer_free(p);
    if (rc == -ENOENT)
        return adm_fail(a, 0,
                        "send to %s failed: the NameServers have no route for it (no such "
                        "topic; create it with updateTopic)",
                        m.topic);
    if (rc)
        return adm_fail(a, rc, "send to %s failed", m.topic);
    static const char *const status[] = {"SEND_OK", "FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT",
                                         "SLAVE_NOT_AVAILABLE"};
    json_t *row =
        json_pack("{s:s, s:i, s:I, s:s, s:s, s:s}", "broker", res.broker, "queueId", res.queue_id,
                  "queueOffset", (json_int_t)res.queue_offset, "msgId", res.msg_id, "offsetMsgId",
                  res.offset_msg_id, "sendStatus", status[res.status & 3]);
    return adm_emit(a, json_pack("[o]", row), ADM_OK);
}

/* Consumes as a group member until `count` messages or `wait_ms` without one. */
static int consume_group(struct adm *a, const char *topic, const char *expr, long long count,
                         int wait_ms, json_t *rows)
{
    struct mqc_config cfg = {.namesrv = a->namesrv, .group = adm_opt(a, 'g')};
    struct mqc_consumer_opts opts = {.from = MQC_FROM_FIRST, .persist_ms = 1000};
    struct mqc_consumer *c = NULL;
    int rc = mqc_consumer_new(&cfg, &opts, &c);
    if (rc == 0 && (rc = mqc_consumer_subscribe(c, topic, expr)) == 0)
        rc = mqc_consumer_start(c);
    if (rc) {
        mqc_consumer_free(c);
        return adm_fail(a, rc, "cannot consume %s as %s", topic, cfg.group);
    }
    for (long long got = 0; got < count;) {
        struct mqc_msg *m;
        if (mqc_consumer_take(c, wait_ms, &m) != 0)
            break;
        json_array_append_new(rows, adm_msg_json(m));
        mqc_consumer_ack(c, m);
        got++;
    }
    rc = mqc_consumer_commit(c);
    mqc_consumer_free(c);
    return rc ? adm_fail(a, rc, "committing offsets failed") : 0;
}

/* Pulls one queue from `offset` (< 0: its min) until `*left` messages were printed or the
 * queue has no more. */
static int consume_queue(struct adm *a, struct mqc_consumer *c, const struct mqc_mq *mq,
                         const char *expr, long long offset, long long *left, json_t *rows)
{
    int64_t off = offset < 0 ? 0 : offset;
    for (int moves = 0; *left > 0;) {
        struct mqc_pull_result r;
        int max = *left < 32 ? (int)*left : 32;
        int rc = mqc_pull(c, mq, expr, off, max, 0, -1, &r);
        if (rc)
            return adm_fail(a, rc, "pull %s/%s:%d at %lld", mq->topic, mq->broker, mq->queue_id,
                            (long long)off);
        for (size_t i = 0; i<r.n && * left> 0; i++, (*left)--)
            json_array_append_new(rows, adm_msg_json(&r.msgs[i]));
        enum mqc_pull_status st = r.status;
        int64_t next = r.next_offset;
        mqc_pull_result_destroy(&r);
        if (st == MQC_PULL_NO_NEW_MSG || next <= off)
            break;
        if (st == MQC_PULL_OFFSET_ILLEGAL && (offset >= 0 || ++moves > 1))
            break; /* an explicit offset outside the queue prints nothing */
        off = next;
    }
    return 0;
}

static int consume_queues(struct adm *a, const char *topic, const char *expr, long long count,
                          json_t *rows)
{
    int ok = 1;
    long long qid = adm_int(a, 'q', -1, &ok), offset = adm_int(a, 'o', -1, &ok);
    const char *broker = adm_opt(a, 'b');
    if (!ok)
        return ADM_USAGE;
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(a->admin, topic, &r);
    if (rc)
        return adm_fail(a, rc, "cannot read the route of '%s'", topic);
    struct mqc_config cfg = {.namesrv = a->namesrv,
                             .group = adm_opt(a, 'g') ? adm_opt(a, 'g') : TOOLS_CONSUMER};
    struct mqc_consumer *c = NULL;
    if ((rc = mqc_consumer_new(&cfg, NULL, &c)) != 0) {
        mqc_topic_route_destroy(&r);
        return adm_fail(a, rc, "cannot create a consumer");
    }
    long long left = count;
    int matched = 0;
    for (size_t i = 0; i < r.nqueues && left > 0 && rc == 0; i++) {
        if ((broker && strcmp(broker, r.queues[i].broker) != 0) || !(r.queues[i].perm & 4))
            continue;
        for (int q = 0; q < r.queues[i].read_queues && left > 0 && rc == 0; q++) {
            if (qid >= 0 && q != qid)
                continue;
            struct mqc_mq mq;
            memset(&mq, 0, sizeof(mq));
            snprintf(mq.topic, sizeof(mq.topic), "%s", topic);
            snprintf(mq.broker, sizeof(mq.broker), "%s", r.queues[i].broker);
            mq.queue_id = q;
            matched = 1;
            rc = consume_queue(a, c, &mq, expr, offset, &left, rows);
        }
    }
    mqc_consumer_free(c);
    mqc_topic_route_destroy(&r);
    if (rc == 0 && !matched)
        rc = adm_fail(a, 0, "'%s' has no readable queue matching -b/-q", topic);
    return rc;
}

int adm_consume_message(struct adm *a)
{
    int ok = 1;
    const char *topic = adm_opt(a, 't'), *expr = adm_opt(a, 's') ? adm_opt(a, 's') : "*";
    long long count = adm_int(a, 'c', 32, &ok);
    int wait_ms = (int)adm_int(a, 'w', 3000, &ok);
    if (!ok)
        return ADM_USAGE;
    if (count <= 0 || wait_ms <= 0)
        return adm_usage_error(a, "-c and -w must be positive");
    if (adm_opt(a, 'g') && (adm_opt(a, 'q') || adm_opt(a, 'o')))
        return adm_usage_error(a, "-g consumes as a group; -q/-o read queues directly");
    json_t *rows = json_array();
    int rc = adm_opt(a, 'g') ? consume_group(a, topic, expr, count, wait_ms, rows)
                             : consume_queues(a, topic, expr, count, rows);
    return adm_emit(a, rows, rc);
}

int adm_query_msg_by_key(struct adm *a)
{
    const char *topic = adm_opt(a, 't'), *key = adm_opt(a, 'k');
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(a->admin, topic, &r);
    if (rc)
        return adm_fail(a, rc, "cannot read the route of '%s'", topic);
    json_t *rows = json_array();
    int status = ADM_OK;
    for (size_t i = 0; i < r.nbrokers; i++) {
        if (!r.brokers[i].addr[0])
            continue;
        struct mqc_pull_result res;
        int err =
            mqc_admin_query_key(a->admin, r.brokers[i].addr, r.brokers[i].name, topic, key, &res);
        if (err) {
            adm_fail(a, err, "query %s", r.brokers[i].addr);
            status = ADM_FAIL;
            continue;
        }
        for (size_t k = 0; k < res.n; k++)
            json_array_append_new(rows, adm_msg_json(&res.msgs[k]));
        mqc_pull_result_destroy(&res);
    }
    mqc_topic_route_destroy(&r);
    if (status == ADM_OK && json_array_size(rows) == 0)
        status = adm_fail(a, 0, "no message of %s has the key '%s'", topic, key);
    return adm_emit(a, rows, status);
}

int adm_query_msg_by_id(struct adm *a)
{
    const char *id = adm_opt(a, 'i');
    char addr[64];
    struct mqc_pull_result res;
    int rc = mqc_admin_view_message(a->admin, id, addr, &res);
    if (rc == -EINVAL)
        return adm_usage_error(a, "'%s' is not an offset message id (32 hex characters)", id);
    if (rc)
        return adm_fail(a, rc, "no message %s", id);
    json_t *obj = adm_msg_json(&res.msgs[0]);
    json_object_set_new(obj, "storeHost", json_string(addr));
    mqc_pull_result_destroy(&res);
    return adm_emit(a, obj, ADM_OK);
}

/* cmd_topic.c — topic subcommands: updateTopic (UPDATE_AND_CREATE_TOPIC on each master),
 * deleteTopic (DELETE_TOPIC_IN_BROKER on the masters, then DELETE_TOPIC_IN_NAMESRV on every
 * NameServer), topicList, topicRoute and topicStatus (per-queue offsets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "tools/mqadmin/mqadmin.h"

static int create_topic(struct adm *a, const char *addr, void *t)
{
    return mqc_admin_create_topic(a->admin, addr, t);
}

static int delete_topic(struct adm *a, const char *addr, void *topic)
{
    return mqc_admin_delete_topic_broker(a->admin, addr, topic);
}

int adm_update_topic(struct adm *a)
{
    int ok = 1;
    struct mqc_topic_config t = {
        .topic = adm_opt(a, 't'),
        .read_queues = (int)adm_int(a, 'r', 8, &ok),
        .write_queues = (int)adm_int(a, 'w', 8, &ok),
        .perm = (int)adm_int(a, 'p', 6, &ok),
    };
    if (!ok)
        return ADM_USAGE;
    if (t.read_queues < 0 || t.read_queues > 1024 || t.write_queues < 0 || t.write_queues > 1024 ||
        t.perm < 1 || t.perm > 7)
        return adm_usage_error(a, "queue counts must be 0..1024 and -p one of 2, 4, 6");
    json_t *row = json_pack("{s:s, s:i, s:i, s:i}", "topic", t.topic, "readQueueNums",
                            t.read_queues, "writeQueueNums", t.write_queues, "perm", t.perm),
           *rows;
    char what[200];
    snprintf(what, sizeof(what), "create topic %s", t.topic);
    int status = adm_each_target(a, create_topic, &t, what, "broker", row, &rows);
    json_decref(row);
    return rows ? adm_emit(a, rows, status) : status;
}

int adm_delete_topic(struct adm *a)
{
    const char *topic = adm_opt(a, 't');
    json_t *rows;
    char what[200];
    snprintf(what, sizeof(what), "delete topic %s", topic);
    int status = adm_each_target(a, delete_topic, (void *)topic, what, "target", NULL, &rows);
    if (!rows)
        return status;
    int err = mqc_admin_delete_topic_namesrv(a->admin, topic);
    if (err) {
        adm_fail(a, err, "delete topic %s on the NameServers", topic);
        status = ADM_FAIL;
    }
    json_array_append_new(rows,
                          json_pack("{s:s, s:s, s:s}", "target", "namesrv", "addr", a->namesrv,
                                    "result", err ? mq_strerror(err) : "success"));
    return adm_emit(a, rows, status);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int adm_topic_list(struct adm *a)
{
    char **names;
    size_t n;
    int rc = mqc_admin_topic_list(a->admin, &names, &n);
    if (rc)
        return adm_fail(a, rc, "cannot list topics from %s", a->namesrv);
    qsort(names, n, sizeof(*names), cmp_str);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(names[i]));
    free(names);
    return adm_emit(a, list, ADM_OK);
}

/* The route or an error message; returns 0 or the exit code. */
static int get_route(struct adm *a, const char *topic, struct mqc_topic_route *r)
{
    int rc = mqc_admin_topic_route(a->admin, topic, r);
    if (rc == -ENOENT)
        return adm_fail(a, 0, "topic '%s' has no route (not created, or no broker serves it)",
                        topic);
    return rc ? adm_fail(a, rc, "cannot read the route of '%s'", topic) : 0;
}

int adm_topic_route(struct adm *a)
{
    struct mqc_topic_route r;
    int rc = get_route(a, adm_opt(a, 't'), &r);
    if (rc)
        return rc;
    /* TopicRouteData's shape, brokerAddrs keyed by broker id as strings. */
    json_t *bds = json_array(), *qds = json_array();
    for (size_t i = 0; i < r.nbrokers; i++)
        json_array_append_new(bds, json_pack("{s:s, s:s, s:{s:s}}", "cluster", r.brokers[i].cluster,
                                             "brokerName", r.brokers[i].name, "brokerAddrs", "0",
                                             r.brokers[i].addr));
    for (size_t i = 0; i < r.nqueues; i++)
        json_array_append_new(qds, json_pack("{s:s, s:i, s:i, s:i, s:i}", "brokerName",
                                             r.queues[i].broker, "readQueueNums",
                                             r.queues[i].read_queues, "writeQueueNums",
                                             r.queues[i].write_queues, "perm", r.queues[i].perm,
                                             "topicSysFlag", r.queues[i].sysflag));
    mqc_topic_route_destroy(&r);
    return adm_emit(a, json_pack("{s:o, s:o}", "brokerDatas", bds, "queueDatas", qds), ADM_OK);
}

static const char *route_addr(const struct mqc_topic_route *r, const char *broker)
{
    for (size_t i = 0; i < r->nbrokers; i++)
        if (strcmp(r->brokers[i].name, broker) == 0 && r->brokers[i].addr[0])
            return r->brokers[i].addr;
    return NULL;
}

int adm_topic_status(struct adm *a)
{
    const char *topic = adm_opt(a, 't');
    struct mqc_topic_route r;
    int rc = get_route(a, topic, &r);
    if (rc)
        return rc;
    json_t *rows = json_array();
    int status = ADM_OK;
    for (size_t i = 0; i < r.nqueues; i++) {
        const char *addr = route_addr(&r, r.queues[i].broker);
        int nq = r.queues[i].read_queues > r.queues[i].write_queues ? r.queues[i].read_queues
                                                                    : r.queues[i].write_queues;
        for (int q = 0; addr && q < nq; q++) {
            struct mqc_queue_stat st;
            int err = mqc_admin_queue_stat(a->admin, addr, topic, q, &st);
            if (err) {
                adm_fail(a, err, "offsets of %s:%d", r.queues[i].broker, q);
                status = ADM_FAIL;
                continue;
            }
            char when[32];
            json_array_append_new(rows, json_pack("{s:s, s:i, s:I, s:I, s:I, s:s}", "broker",
                                                  r.queues[i].broker, "queueId", q, "minOffset",
                                                  (json_int_t)st.min_offset, "maxOffset",
                                                  (json_int_t)st.max_offset, "lastUpdateTimestamp",
                                                  (json_int_t)st.last_store_ms, "lastUpdateTime",
                                                  adm_time(st.last_store_ms, when)));
        }
    }
    mqc_topic_route_destroy(&r);
    return adm_emit(a, rows, status);
}

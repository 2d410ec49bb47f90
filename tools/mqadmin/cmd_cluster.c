/* cmd_cluster.c — cluster and group subcommands: clusterList (GET_BROKER_CLUSTER_INFO plus each
 * broker's runtime counters), brokerStatus (GET_BROKER_RUNTIME_INFO), updateSubGroup
 * (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), deleteSubGroup (DELETE_SUBSCRIPTIONGROUP) and
 * consumerProgress (broker vs committed offsets). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "tools/mqadmin/mqadmin.h"

static const char *kv_find(const struct mqc_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return "-";
}

int adm_cluster_list(struct adm *a)
{
    struct mqc_broker_info *bs;
    size_t n;
    int rc = mqc_admin_cluster_info(a->admin, &bs, &n);
    if (rc)
        return adm_fail(a, rc, "cannot read the cluster from %s", a->namesrv);
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        struct mqc_kv *kv = NULL;
        size_t nkv = 0;
        (void)mqc_admin_runtime_info(a->admin, bs[i].addr, &kv, &nkv); /* "-" when silent */
        json_array_append_new(
            rows, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "cluster", bs[i].cluster,
                            "brokerName", bs[i].name, "brokerId", (json_int_t)bs[i].id, "addr",
                            bs[i].addr, "version", kv_find(kv, nkv, "brokerVersionDesc"), "putTps",
                            kv_find(kv, nkv, "putTps"), "msgPutTotal",
                            kv_find(kv, nkv, "msgPutTotalTodayNow"), "msgGetTotal",
                            kv_find(kv, nkv, "msgGetTotalTodayNow")));
        free(kv);
    }
    free(bs);
    return adm_emit(a, rows, ADM_OK);
}

int adm_broker_status(struct adm *a)
{
    const char *addr = adm_opt(a, 'b');
    struct mqc_kv *kv;
    size_t n;
    int rc = mqc_admin_runtime_info(a->admin, addr, &kv, &n);
    if (rc)
        return adm_fail(a, rc, "no runtime info from %s", addr);
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(obj, kv[i].name, json_string(kv[i].value));
    free(kv);
    return adm_emit(a, obj, ADM_OK);
}

static int create_group(struct adm *a, const char *addr, void *group)
{
    return mqc_admin_create_group(a->admin, addr, group);
}

static int delete_group(struct adm *a, const char *addr, void *group)
{
    const char *r = adm_opt(a, 'r'); /* removeOffset, as RocketMQ's -r true */
    return mqc_admin_delete_group(a->admin, addr, group, r && strcmp(r, "true") == 0);
}

/* Runs op on every target broker (-c / -b) for the group -g: one row per broker. */
static int each_target(struct adm *a, const char *what,
                       int (*op)(struct adm *, const char *, void *))
{
    const char *group = adm_opt(a, 'g');
    json_t *row = json_pack("{s:s}", "group", group), *rows;
    char desc[200];
    snprintf(desc, sizeof(desc), "%s group %s", what, group);
    int status = adm_each_target(a, op, (void *)group, desc, "broker", row, &rows);
    json_decref(row);
    return rows ? adm_emit(a, rows, status) : status;
}

int adm_update_sub_group(struct adm *a)
{
    return each_target(a, "create", create_group);
}

int adm_delete_sub_group(struct adm *a)
{
    const char *r = adm_opt(a, 'r');
    if (r && strcmp(r, "true") != 0 && strcmp(r, "false") != 0)
        return adm_usage_error(a, "-r takes true or false");
    return each_target(a, "delete", delete_group);
}

/* Topics a group may have offsets in, when -t is not given: every topic but the system ones
 * (TBW102, cluster and broker names, other groups' retry/DLQ topics). */
static int user_topic(const char *t, const char *group)
{
    if (strcmp(t, "TBW102") == 0 || strncmp(t, "%DLQ%", 5) == 0 || strncmp(t, "rmq_sys_", 8) == 0)
        return 0;
    if (strncmp(t, "%RETRY%", 7) == 0)
        return strcmp(t + 7, group) == 0;
    return 1;
}

/* Appends one row per readable queue of topic; `explicit`: keep queues without an offset. */
static int progress_topic(struct adm *a, const char *group, const char *topic, int explicit,
                          json_t *rows, long long *total)
{
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(a->admin, topic, &r);
    if (rc)
        return explicit ? adm_fail(a, rc, "cannot read the route of '%s'", topic) : 0;
    json_t *mine = json_array();
    int any = 0;
    for (size_t i = 0; i < r.nqueues; i++) {
        const char *addr = NULL;
        for (size_t b = 0; b < r.nbrokers; b++)
            if (strcmp(r.brokers[b].name, r.queues[i].broker) == 0 && r.brokers[b].addr[0])
                addr = r.brokers[b].addr;
        for (int q = 0; addr && q < r.queues[i].read_queues; q++) {
            struct mqc_queue_stat st;
            int64_t off = -1;
            if (mqc_admin_queue_stat(a->admin, addr, topic, q, &st))
                continue;
            if (mqc_admin_consumer_offset(a->admin, addr, group, topic, q, &off) != 0)
                off = -1;
            any |= off > 0;
            long long diff = off >= 0 ? (long long)(st.max_offset - off) : 0;
            json_array_append_new(mine, json_pack("{s:s, s:s, s:i, s:I, s:I, s:I}", "topic", topic,
                                                  "broker", r.queues[i].broker, "queueId", q,
                                                  "brokerOffset", (json_int_t)st.max_offset,
                                                  "consumerOffset", (json_int_t)off, "diff",
                                                  (json_int_t)diff));
        }
    }
    mqc_topic_route_destroy(&r);
    if (explicit || any) {
        size_t i;
        json_t *row;
        json_array_foreach(mine, i, row)
        {
            *total += json_integer_value(json_object_get(row, "diff"));
            json_array_append(rows, row);
        }
    }
    json_decref(mine);
    return 0;
}

int adm_consumer_progress(struct adm *a)
{
    const char *group = adm_opt(a, 'g'), *topic = adm_opt(a, 't');
    json_t *rows = json_array();
    long long total = 0;
    int rc = 0;
    if (topic) {
        rc = progress_topic(a, group, topic, 1, rows, &total);
    } else {
        char **names;
        size_t n;
        if ((rc = mqc_admin_topic_list(a->admin, &names, &n)) != 0) {
            json_decref(rows);
            return adm_fail(a, rc, "cannot list topics from %s", a->namesrv);
        }
        for (size_t i = 0; i < n && !rc; i++)
            if (user_topic(names[i], group))
                rc = progress_topic(a, group, names[i], 0, rows, &total);
        free(names);
    }
    if (rc) {
        json_decref(rows);
        return rc;
    }
    return adm_emit(a,
                    json_pack("{s:s, s:I, s:o}", "group", group, "diffTotal", (json_int_t)total,
                              "queues", rows),
                    ADM_OK);
}

/* The group's live clients on every broker of its %RETRY% topic (each consumer heartbeats to
 * all of them), merged by client id, with its subscriptions and settings (RocketMQ's
 * consumerConnection). */
int adm_consumer_connection(struct adm *a)
{
    const char *group = adm_opt(a, 'g');
    char retry[160];
    snprintf(retry, sizeof(retry), "%%RETRY%%%s", group);
    struct mqc_topic_route r;
    int rc = mqc_admin_topic_route(a->admin, retry, &r);
    if (rc)
        return adm_fail(a, rc == -ENOENT ? 0 : rc, "the consumer group[%s] not online%s", group,
                        rc == -ENOENT ? " (no broker has seen it)" : "");
    json_t *out = NULL, *conns = json_array(), *subs = json_array();
    for (size_t i = 0; i < r.nbrokers; i++) {
        char *text = NULL;
        size_t len = 0;
        if (!r.brokers[i].addr[0] ||
            mqc_admin_consumer_connection(a->admin, r.brokers[i].addr, group, &text, &len) != 0)
            continue;
        json_t *cc = json_loadb(text, len, 0, NULL);
        free(text);
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(cc, "connectionSet"), k, c)
        {
            const char *id = json_string_value(json_object_get(c, "clientId"));
            int seen = 0;
            size_t j;
            json_t *have;
            json_array_foreach(conns, j, have) seen |=
                id && json_equal(json_object_get(have, "clientId"), json_object_get(c, "clientId"));
            if (id && !seen)
                json_array_append(conns, c);
        }
        if (!out && cc) { /* settings and subscriptions: the first broker that answers */
            out = json_pack("{s:s, s:O?, s:O?, s:O?}", "group", group, "consumeType",
                            json_object_get(cc, "consumeType"), "messageModel",
                            json_object_get(cc, "messageModel"), "consumeFromWhere",
                            json_object_get(cc, "consumeFromWhere"));
            const char *topic;
            json_t *sd;
            json_object_foreach(json_object_get(cc, "subscriptionTable"), topic, sd)
                json_array_append_new(subs,
                                      json_pack("{s:s, s:O?, s:O?}", "topic", topic, "subString",
                                                json_object_get(sd, "subString"), "expressionType",
                                                json_object_get(sd, "expressionType")));
        }
        json_decref(cc);
    }
    mqc_topic_route_destroy(&r);
    if (!out || json_array_size(conns) == 0) {
        json_decref(out);
        json_decref(conns);
        json_decref(subs);
        return adm_fail(a, 0, "the consumer group[%s] not online", group);
    }
    json_object_set_new(out, "connections", conns);
    json_object_set_new(out, "subscriptions", subs);
    return adm_emit(a, out, ADM_OK);
}

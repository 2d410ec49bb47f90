/* admin.c — cluster-wide queries to the NameServers for tools and mqfs: the topic list
 * (GET_ALL_TOPIC_LIST_FROM_NAMESERVER, 206) and the cluster's brokers (GET_BROKER_CLUSTER_INFO,
 * 106), with their JSON bodies decoded (RocketMQ's TopicList and ClusterInfo). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client/client_int.h"
#include "common/mq_log.h"
#include "remoting/remoting.h"

#define REQ_GET_BROKER_CLUSTER_INFO 106
#define REQ_GET_ALL_TOPIC_LIST      206

int mqc_admin_new(const struct mqc_config *cfg, struct mqc_admin **out)
{
    struct mqc_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    int rc = mqc__instance_new(cfg, "TOOLS_CONSUMER", &a->inst);
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void mqc_admin_free(struct mqc_admin *a)
{
    if (!a)
        return;
    mqc__instance_free(a->inst);
    free(a);
}

/* One NameServer request without ext fields; on 0 *resp is a SUCCESS response with a body. */
static int call(struct mqc_admin *a, int code, struct rpc_cmd **resp)
{
    struct rpc_cmd *req = rpc_cmd_new(code);
    if (!req)
        return -ENOMEM;
    int rc = mqc__namesrv_call(a->inst, req, a->inst->cfg.send_timeout_ms, resp);
    rpc_cmd_free(req);
    if (rc)
        return rc;
    if ((*resp)->code != RPC_SUCCESS || !(*resp)->body) {
        mq_debug("NameServer answered %d to %d", (*resp)->code, code);
        rpc_cmd_free(*resp);
        *resp = NULL;
        return -EIO;
    }
    return 0;
}

int mqc_admin_parse_topic_list(const char *body, size_t len, char ***names, size_t *n)
{
    json_t *root = rpc_json_loads(body, len);
    json_t *list = root ? json_object_get(root, "topicList") : NULL;
    int rc = -EBADMSG;
    if (!json_is_array(list))
        goto out;
    size_t cnt = json_array_size(list), bytes = (cnt + 1) * sizeof(char *);
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = json_array_get(list, i);
        if (!json_is_string(s))
            goto out;
        bytes += json_string_length(s) + 1;
    }
    char **v = malloc(bytes);
    if (!v) {
        rc = -ENOMEM;
        goto out;
    }
    char *str = (char *)(v + cnt + 1);
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = json_array_get(list, i);
        size_t sl = json_string_length(s);
        memcpy(str, json_string_value(s), sl);
        str[sl] = '\0';
        v[i] = str;
        str += sl + 1;
    }
    v[cnt] = NULL;
    *names = v;
    *n = cnt;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int broker_cmp(const void *x, const void *y)
{
    const struct mqc_broker_info *a = x, *b = y;
    int c = strcmp(a->cluster, b->cluster);
    if (!c)
        c = strcmp(a->name, b->name);
    if (!c)
        c = (a->id > b->id) - (a->id < b->id);
    return c;
}

int mqc_admin_parse_cluster(const char *body, size_t len, struct mqc_broker_info **out, size_t *n)
{
    json_t *root = rpc_json_loads(body, len);
    json_t *table = root ? json_object_get(root, "brokerAddrTable") : NULL;
    struct mqc_broker_info *v = NULL;
    int rc = -EBADMSG;
    if (!json_is_object(table))
        goto out;
    size_t cnt = 0, k = 0;
    const char *name;
    json_t *bd;
    json_object_foreach(table, name, bd)
    {
        json_t *addrs = json_object_get(bd, "brokerAddrs");
        cnt += json_is_object(addrs) ? json_object_size(addrs) : 0;
    }
    if (!(v = calloc(cnt ? cnt : 1, sizeof(*v)))) {
        rc = -ENOMEM;
        goto out;
    }
    json_object_foreach(table, name, bd)
    {
        json_t *addrs = json_object_get(bd, "brokerAddrs");
        json_t *cluster = json_object_get(bd, "cluster");
        const char *id;
        json_t *addr;
        if (!json_is_object(addrs))
            continue;
        json_object_foreach(addrs, id, addr)
        {
            char *end;
            long long idv = strtoll(id, &end, 10);
            if (!json_is_string(addr) || *end || end == id || k >= cnt)
                goto out;
            struct mqc_broker_info *b = &v[k++];
            snprintf(b->cluster, sizeof(b->cluster), "%s",
                     json_is_string(cluster) ? json_string_value(cluster) : "");
            snprintf(b->name, sizeof(b->name), "%s", name);
            snprintf(b->addr, sizeof(b->addr), "%s", json_string_value(addr));
            b->id = idv;
        }
    }
    qsort(v, k, sizeof(*v), broker_cmp);
    *out = v;
    *n = k;
    v = NULL;
    rc = 0;
out:
    free(v);
    json_decref(root);
    return rc;
}

int mqc_admin_topic_list(struct mqc_admin *a, char ***names, size_t *n)
{
    struct rpc_cmd *resp = NULL;
    int rc = call(a, REQ_GET_ALL_TOPIC_LIST, &resp);
    if (rc == 0)
        rc = mqc_admin_parse_topic_list((const char *)resp->body, resp->body_len, names, n);
    rpc_cmd_free(resp);
    return rc;
}

int mqc_admin_cluster_info(struct mqc_admin *a, struct mqc_broker_info **out, size_t *n)
{
    struct rpc_cmd *resp = NULL;
    int rc = call(a, REQ_GET_BROKER_CLUSTER_INFO, &resp);
    if (rc == 0)
        rc = mqc_admin_parse_cluster((const char *)resp->body, resp->body_len, out, n);
    rpc_cmd_free(resp);
    return rc;
}

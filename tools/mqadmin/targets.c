/* targets.c — which brokers a write-side subcommand acts on: one address given with -b, or
 * every master (brokerId 0) of the cluster given with -c, as RocketMQ's mqadmin resolves them
 * through GET_BROKER_CLUSTER_INFO. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "tools/mqadmin/mqadmin.h"

int adm_targets(struct adm *a, struct mqc_broker_info **out, size_t *n)
{
    const char *addr = adm_opt(a, 'b'), *cluster = adm_opt(a, 'c');
    if (!!addr == !!cluster)
        return adm_usage_error(a, "give exactly one of -c cluster and -b brokerAddr");
    struct mqc_broker_info *all = NULL;
    size_t nall = 0, k = 0;
    int rc = mqc_admin_cluster_info(a->admin, &all, &nall);
    if (rc && !addr)
        return adm_fail(a, rc, "cannot read the cluster from %s", a->namesrv);
    struct mqc_broker_info *v = calloc(nall + 1, sizeof(*v));
    if (!v) {
        free(all);
        return adm_fail(a, 0, "out of memory");
    }
    if (addr) { /* one broker: its name and cluster when the NameServers know it */
        snprintf(v[0].addr, sizeof(v[0].addr), "%s", addr);
        for (size_t i = 0; i < nall; i++)
            if (strcmp(all[i].addr, addr) == 0)
                v[0] = all[i];
        k = 1;
    } else {
        for (size_t i = 0; i < nall; i++)
            if (all[i].id == 0 && strcmp(all[i].cluster, cluster) == 0)
                v[k++] = all[i];
    }
    free(all);
    if (k == 0) {
        free(v);
        return adm_fail(a, 0, "cluster '%s' has no master registered with %s", cluster, a->namesrv);
    }
    *out = v;
    *n = k;
    return 0;
}

int adm_each_target(struct adm *a, int (*op)(struct adm *a, const char *addr, void *arg), void *arg,
                    const char *what, const char *key, const json_t *row, json_t **rows)
{
    struct mqc_broker_info *bs;
    size_t n;
    *rows = NULL;
    int rc = adm_targets(a, &bs, &n);
    if (rc)
        return rc;
    *rows = json_array();
    int status = ADM_OK;
    for (size_t i = 0; i < n; i++) {
        int err = op(a, bs[i].addr, arg);
        if (err) {
            adm_fail(a, err, "%s on %s", what, bs[i].addr);
            status = ADM_FAIL;
        }
        json_t *r = json_pack("{s:s, s:s}", key, bs[i].name, "addr", bs[i].addr);
        if (row)
            json_object_update(r, (json_t *)row);
        json_object_set_new(r, "result", json_string(err ? mq_strerror(err) : "success"));
        json_array_append_new(*rows, r);
    }
    free(bs);
    return status;
}

/* targets.c — which brokers a write-side subcommand acts on: one address given with -b, or
 * every master (brokerId 0) of the cluster given with -c, as RocketMQ's mqadmin resolves them
 * through GET_BROKER_CLUSTER_INFO. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

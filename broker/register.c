/* register.c — registration with every NameServer (RocketMQ's BrokerOuterAPI.registerBrokerAll):
 * REGISTER_BROKER with the topic configs and data version at start, every
 * registerNameServerPeriod, and at once when a topic changes (a topic create or delete is
 * answered after that registration, brk__reply_after_register); UNREGISTER_BROKER at shutdown.
 * A NameServer that is down is skipped; the broker keeps serving regardless, and registers again
 * when its connection to a NameServer closes (at most once a second: broker.c, timer_main) and
 * every second while one does not answer, so a restarted NameServer learns the broker at once,
 * not a period later. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_log.h"

#define REGISTER_TIMEOUT_MS 3000

static struct rpc_cmd *make_request(struct broker *b, int unregister)
{
    struct rpc_cmd *req = rpc_cmd_new(unregister ? REQ_UNREGISTER_BROKER : REQ_REGISTER_BROKER);
    if (!req)
        return NULL;
    int rc = rpc_cmd_ext_set(req, "brokerName", b->conf.broker_name);
    rc = rc ? rc : rpc_cmd_ext_set(req, "brokerAddr", b->addr);
    rc = rc ? rc : rpc_cmd_ext_set(req, "clusterName", b->conf.cluster_name);
    rc = rc ? rc : rpc_cmd_ext_set_int64(req, "brokerId", b->conf.broker_id);
    if (!unregister) {
        rc = rc ? rc : rpc_cmd_ext_set(req, "haServerAddr", "");
        rc = rc ? rc : rpc_cmd_ext_set_bool(req, "compressed", 0);
        /* Body: RegisterBrokerBody {"topicConfigSerializeWrapper": {...},
         * "filterServerList": []}. */
        struct mq_buf body;
        mq_buf_init(&body);
        if (!rc)
            rc = mq_buf_append_str(&body, "{\"topicConfigSerializeWrapper\":");
        if (!rc)
            rc = brk_topics_to_json(b->topics, &body);
        if (!rc)
            rc = mq_buf_append_str(&body, ",\"filterServerList\":[]}");
        if (!rc) {
            size_t len;
            uint8_t *p = mq_buf_steal(&body, &len);
            rpc_cmd_take_body(req, p, len);
        }
        mq_buf_destroy(&body);
    }
    if (rc) {
        rpc_cmd_free(req);
        return NULL;
    }
    return req;
}

int brk__register_all(struct broker *b, int unregister)
{
    int ok = 0;
    const char *s = b->conf.namesrv_addr;
    while (*s) {
        size_t n = strcspn(s, ";");
        char addr[128];
        if (n > 0 && n < sizeof(addr)) {
            memcpy(addr, s, n);
            addr[n] = '\0';
            struct rpc_cmd *req = make_request(b, unregister), *resp = NULL;
            int rc = req ? rpc_client_call(b->ns_client, addr, req, REGISTER_TIMEOUT_MS, &resp)
                         : -ENOMEM;
            if (rc == 0 && resp->code == RPC_SUCCESS)
                ok++;
            else if (rc == 0)
                mq_warn("NameServer %s refused %s: code %d %s", addr,
                        unregister ? "unregistration" : "registration", resp->code,
                        rpc_cmd_remark(resp) ? rpc_cmd_remark(resp) : "");
            else
                mq_debug("NameServer %s unreachable: %s", addr, mq_strerror(rc));
            rpc_cmd_free(req);
            rpc_cmd_free(resp);
        }
        s += n;
        if (*s == ';')
            s++;
    }
    return ok;
}

int brk__namesrv_count(const struct broker *b)
{
    int n = 0;
    for (const char *s = b->conf.namesrv_addr; *s;) {
        size_t len = strcspn(s, ";");
        n += len > 0;
        s += len;
        if (*s == ';')
            s++;
    }
    return n;
}

void brk__register_soon(struct broker *b)
{
    pthread_mutex_lock(&b->timer_lock);
    b->register_now = 1;
    pthread_cond_signal(&b->timer_cond);
    pthread_mutex_unlock(&b->timer_lock);
}

struct brk_reg_wait {
    struct rpc_conn *conn;
    struct rpc_cmd *resp;
    struct brk_reg_wait *next;
};

int brk__reply_after_register(struct broker *b, struct rpc_conn *conn, struct rpc_cmd *resp,
                              struct rpc_cmd **out)
{
    struct brk_reg_wait *w = malloc(sizeof(*w));
    if (!w) {
        brk__register_soon(b);
        *out = resp;
        return RPC_REPLY;
    }
    w->conn = rpc_conn_ref(conn);
    w->resp = resp;
    pthread_mutex_lock(&b->timer_lock);
    w->next = b->reg_waits;
    b->reg_waits = w;
    pthread_mutex_unlock(&b->timer_lock);
    brk__register_soon(b);
    return RPC_DEFER;
}

struct brk_reg_wait *brk__reg_waits_take(struct broker *b)
{
    struct brk_reg_wait *w = b->reg_waits;
    b->reg_waits = NULL;
    return w;
}

void brk__reg_waits_answer(struct brk_reg_wait *w)
{
    while (w) {
        struct brk_reg_wait *next = w->next;
        rpc_conn_reply(w->conn, w->resp);
        rpc_conn_unref(w->conn);
        free(w);
        w = next;
    }
}

/* ns_register.c — the broker-facing requests: REGISTER_BROKER (103) with its RegisterBrokerBody
 * in JSON or in 4.9's compressed form, UNREGISTER_BROKER (104) and QUERY_DATA_VERSION (322)
 * (DefaultRequestProcessor.registerBrokerWithFilterServer / unregisterBroker /
 * queryBrokerTopicConfig; docs/FORMATS.md Part 2, "NameServer bodies").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/mq_bytes.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "namesrv/namesrv.h"
#include "namesrv/namesrv_int.h"

#define INFLATE_MAX (64u << 20) /* bound on a compressed body's expanded size */

void ns__reg_body_free(struct ns__reg_body *b)
{
    free(b->topics);
    json_decref(b->json);
    free(b->raw);
    free(b->names);
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

/* RegisterBrokerBody as JSON: {"topicConfigSerializeWrapper":{"topicConfigTable":{...},
 * "dataVersion":{...}},"filterServerList":[]}; a bare TopicConfigSerializeWrapper is accepted
 * too. */
static int parse_json_body(const uint8_t *p, size_t len, struct ns__reg_body *b)
{
    b->json = rpc_json_loads(p, len);
    if (!json_is_object(b->json))
        return -EBADMSG;
    json_t *w = json_object_get(b->json, "topicConfigSerializeWrapper");
    if (!w)
        w = b->json;
    json_t *dv = json_object_get(w, "dataVersion");
    b->dv.timestamp = jint(dv, "timestamp");
    b->dv.counter = jint(dv, "counter");
    json_t *table = json_object_get(w, "topicConfigTable"), *tc;
    if (table && !json_is_object(table))
        return -EBADMSG;
    b->topics = calloc(json_object_size(table) + 1, sizeof(*b->topics));
    if (!b->topics)
        return -ENOMEM;
    const char *name;
    json_object_foreach(table, name, tc)
    {
        struct ns_topic_conf *t = &b->topics[b->ntopics++];
        t->name = name;
        t->read_queue_nums = (int)jint(tc, "readQueueNums");
        t->write_queue_nums = (int)jint(tc, "writeQueueNums");
        t->perm = (int)jint(tc, "perm");
        t->topic_sys_flag = (int)jint(tc, "topicSysFlag");
    }
    return 0;
}

static int inflate_all(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit(&z) != Z_OK)
        return -ENOMEM;
    size_t cap = len * 4 + 1024, n = 0;
    uint8_t *buf = malloc(cap + 1);
    int rc = -ENOMEM, zr = Z_OK;
    if (!buf)
        goto out;
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)len;
    while (zr != Z_STREAM_END) {
        if (n == cap) {
            rc = -EMSGSIZE;
            if (cap >= INFLATE_MAX)
                goto out;
            cap = cap * 2 > INFLATE_MAX ? INFLATE_MAX : cap * 2;
            uint8_t *nb = realloc(buf, cap + 1);
            rc = -ENOMEM;
            if (!nb)
                goto out;
            buf = nb;
        }
        z.next_out = buf + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        rc = -EBADMSG;
        if (zr != Z_OK && zr != Z_STREAM_END)
            goto out;
        if (zr == Z_OK && z.avail_in == 0 && z.avail_out > 0)
            goto out; /* truncated stream */
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    inflateEnd(&z);
    return rc;
}

/* RegisterBrokerBody.encode(true): deflate( int32 len + DataVersion JSON, int32 topicNumber,
 * topicNumber x (int32 len + "name read write perm filterType"), int32 len + filter list). */
static int parse_compressed_body(const uint8_t *p, size_t len, struct ns__reg_body *b)
{
    size_t n, pos = 0;
    int rc = inflate_all(p, len, &b->raw, &n);
    if (rc)
        return rc;
    uint8_t *d = b->raw;
    if (n < 4 || mq_get_be32(d) > n - 4)
        return -EBADMSG;
    uint32_t dl = mq_get_be32(d);
    json_t *dv = rpc_json_loads(d + 4, dl);
    b->dv.timestamp = jint(dv, "timestamp");
    b->dv.counter = jint(dv, "counter");
    json_decref(dv);
    pos = 4 + dl;
    if (n - pos < 4)
        return -EBADMSG;
    uint32_t count = mq_get_be32(d + pos);
    pos += 4;
    if (count > (n - pos) / 4)
        return -EBADMSG;
    b->topics = calloc((size_t)count + 1, sizeof(*b->topics));
    if (!b->topics)
        return -ENOMEM;
    b->names = malloc(n + 1);
    if (!b->names)
        return -ENOMEM;
    size_t used = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (n - pos < 4 || mq_get_be32(d + pos) > n - pos - 4)
            return -EBADMSG;
        uint32_t tl = mq_get_be32(d + pos);
        const char *s = (const char *)d + pos + 4, *sp = memchr(s, ' ', tl);
        pos += 4 + tl;
        if (!sp || sp == s)
            return -EBADMSG;
        char nums[64];
        size_t nl = (size_t)(s + tl - sp - 1);
        if (nl >= sizeof(nums))
            nl = sizeof(nums) - 1;
        memcpy(nums, sp + 1, nl);
        nums[nl] = '\0';
        struct ns_topic_conf *t = &b->topics[b->ntopics];
        if (sscanf(nums, "%d %d %d", &t->read_queue_nums, &t->write_queue_nums, &t->perm) != 3)
            return -EBADMSG;
        /* names are copied out: together they are shorter than the inflated bytes */
        memcpy(b->names + used, s, (size_t)(sp - s));
        b->names[used + (size_t)(sp - s)] = '\0';
        t->name = b->names + used;
        used += (size_t)(sp - s) + 1;
        b->ntopics++;
    }
    return 0;
}

int ns__reg_body_parse(const uint8_t *p, size_t len, int compressed, struct ns__reg_body *b)
{
    memset(b, 0, sizeof(*b));
    return compressed ? parse_compressed_body(p, len, b) : parse_json_body(p, len, b);
}

int ns__handle_register(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                        void *arg)
{
    struct ns_ctx *ctx = arg;
    struct ns__reg_body b;
    struct ns_register_req q;
    struct ns_register_result res;
    int compressed = 0, rc;
    int32_t crc = 0;
    memset(&b, 0, sizeof(b));
    memset(&q, 0, sizeof(q));
    if (ns__need(req, resp, "brokerName", &q.broker_name) ||
        ns__need(req, resp, "brokerAddr", &q.broker_addr) ||
        ns__need(req, resp, "clusterName", &q.cluster) ||
        ns__need_int64(req, resp, "brokerId", &q.broker_id))
        return RPC_REPLY;
    q.ha_server_addr = rpc_cmd_ext_get(req, "haServerAddr");
    rpc_cmd_ext_get_bool(req, "compressed", &compressed);
    if (rpc_cmd_ext_get_int32(req, "bodyCrc32", &crc) == 0 && crc != 0 && req->body) {
        uint32_t have = mq_crc32(req->body, req->body_len);
        if (have != (uint32_t)crc) {
            mq_warn("receive registerBroker request, crc32 not match: %u vs %d", have, crc);
            *resp = rpc_cmd_new_response(req, RPC_SYSTEM_ERROR, "crc32 not match");
            return RPC_REPLY;
        }
    }
    if (req->body) {
        rc = ns__reg_body_parse(req->body, req->body_len, compressed, &b);
        if (rc) {
            ns__reg_body_free(&b);
            *resp = rpc_cmd_new_response(req, RPC_SYSTEM_ERROR, NULL);
            rpc_cmd_set_remarkf(*resp, "bad RegisterBrokerBody (%s): %s",
                                compressed ? "compressed" : "JSON", strerror(-rc));
            return RPC_REPLY;
        }
        q.topics = b.topics;
        q.ntopics = b.ntopics;
    }
    q.dv = b.dv;
    q.conn = conn;
    q.now_ms = mq_mono_us() / 1000;
    rc = ns_routes_register(ctx->routes, &q, &res);
    ns__reg_body_free(&b);
    if (rc)
        return rc;
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    if (!*resp)
        return -ENOMEM;
    if (res.ha_server_addr[0])
        rpc_cmd_ext_set(*resp, "haServerAddr", res.ha_server_addr);
    if (res.master_addr[0])
        rpc_cmd_ext_set(*resp, "masterAddr", res.master_addr);
    json_t *kv = ns_kv_table(ctx->kv, NS_ORDER_TOPIC_CONFIG);
    if (kv)
        rpc_cmd_set_body_json(*resp, kv);
    json_decref(kv);
    return RPC_REPLY;
}

int ns__handle_unregister(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                          void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *name, *addr, *cluster;
    int64_t id;
    if (ns__need(req, resp, "brokerName", &name) || ns__need(req, resp, "brokerAddr", &addr) ||
        ns__need(req, resp, "clusterName", &cluster) || ns__need_int64(req, resp, "brokerId", &id))
        return RPC_REPLY;
    ns_routes_unregister(ctx->routes, cluster, addr, name, id);
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    return RPC_REPLY;
}

int ns__handle_query_version(struct rpc_conn *conn, struct rpc_cmd *req, struct rpc_cmd **resp,
                             void *arg)
{
    struct ns_ctx *ctx = arg;
    const char *addr;
    struct ns_data_version dv = {0, 0}, cur;
    int changed, have;
    if (ns__need(req, resp, "brokerAddr", &addr))
        return RPC_REPLY;
    if (req->body) {
        json_t *j = rpc_json_loads(req->body, req->body_len);
        dv.timestamp = jint(j, "timestamp");
        dv.counter = jint(j, "counter");
        json_decref(j);
    }
    ns_routes_query_version(ctx->routes, addr, &dv, mq_mono_us() / 1000, &changed, &have, &cur);
    *resp = rpc_cmd_new_response(req, RPC_SUCCESS, NULL);
    if (!*resp)
        return -ENOMEM;
    rpc_cmd_ext_set_bool(*resp, "changed", changed);
    if (have) {
        json_t *j = json_pack("{s:I,s:I}", "timestamp", (json_int_t)cur.timestamp, "counter",
                              (json_int_t)cur.counter);
        rpc_cmd_set_body_json(*resp, j);
        json_decref(j);
    }
    return RPC_REPLY;
}

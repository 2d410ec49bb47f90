/* route.c — topic routes: decoding the NameServer's TopicRouteData into the queues a producer
 * sends to and the queues consumers share (RocketMQ's MQClientInstance.topicRouteData2Topic
 * PublishInfo / SubscribeInfo). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/mq_bytes.h"
#include "common/mq_util.h"

#define PERM_WRITE 2 /* RocketMQ PermName.PERM_WRITE */
#define PERM_READ  4 /* RocketMQ PermName.PERM_READ */

int mqc_queue_cmp(const void *a, const void *b)
{
    const struct mqc_mq *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c == 0)
        c = strcmp(x->broker, y->broker);
    if (c == 0)
        c = (x->queue_id > y->queue_id) - (x->queue_id < y->queue_id);
    return c;
}

/* A route's string (a JSON value, NULL when absent), cut to fit. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    mq_str_copy(dst, cap, src ? src : "", cap);
}

void mqc_route_free(struct mqc_route *r)
{
    if (!r)
        return;
    free(r->brokers);
    free(r->pub);
    free(r->sub);
    free(r);
}

const char *mqc_route_broker_addr(const struct mqc_route *r, const char *broker)
{
    for (size_t i = 0; i < r->nbrokers; i++)
        if (strcmp(r->brokers[i].name, broker) == 0)
            return r->brokers[i].master_addr[0] ? r->brokers[i].master_addr : NULL;
    return NULL;
}

static int parse_brokers(struct mqc_route *r, json_t *bds)
{
    size_t n = json_array_size(bds);
    r->brokers = calloc(n ? n : 1, sizeof(*r->brokers));
    if (!r->brokers)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *bd = json_array_get(bds, i);
        struct mqc_broker *b = &r->brokers[r->nbrokers];
        const char *name = json_string_value(json_object_get(bd, "brokerName"));
        if (!name)
            return -EBADMSG;
        copy_str(b->name, sizeof(b->name), name);
        copy_str(b->cluster, sizeof(b->cluster), json_string_value(json_object_get(bd, "cluster")));
        /* brokerAddrs: {"0": "host:port", "1": ...}; id 0 is the master. */
        json_t *addrs = json_object_get(bd, "brokerAddrs");
        const char *master = json_string_value(json_object_get(addrs, "0"));
        copy_str(b->master_addr, sizeof(b->master_addr), master);
        r->nbrokers++;
    }
    return 0;
}

static int add_queues(struct mqc_mq **arr, size_t *n, size_t *cap, const char *topic,
                      const char *broker, int count)
{
    for (int q = 0; q < count; q++) {
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct mqc_mq *p = realloc(*arr, nc * sizeof(**arr));
            if (!p)
                return -ENOMEM;
            *arr = p;
            *cap = nc;
        }
        struct mqc_mq *mq = &(*arr)[(*n)++];
        copy_str(mq->topic, sizeof(mq->topic), topic);
        copy_str(mq->broker, sizeof(mq->broker), broker);
        mq->queue_id = q;
    }
    return 0;
}

int mqc_route_parse(const char *topic, const char *json, size_t len, struct mqc_route **out)
{
    int rc = -EBADMSG;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    struct mqc_route *r = calloc(1, sizeof(*r));
    size_t pubcap = 0, subcap = 0;
    if (!r) {
        rc = -ENOMEM;
        goto out;
    }
    if (!root) {
        /* fastjson may write integer map keys unquoted ({0:"addr"}): quote them, try again. */
        struct mq_buf fixed;
        mq_buf_init(&fixed);
        if (mq_json_quote_int_keys(json, len, &fixed) == 0)
            root = json_loadb((const char *)fixed.data, fixed.len, 0, &jerr);
        mq_buf_destroy(&fixed);
        if (!root)
            goto out;
    }
    copy_str(r->topic, sizeof(r->topic), topic);
    json_t *bds = json_object_get(root, "brokerDatas");
    json_t *qds = json_object_get(root, "queueDatas");
    if (!json_is_array(bds) || !json_is_array(qds))
        goto out;
    if ((rc = parse_brokers(r, bds)) != 0)
        goto out;
    for (size_t i = 0; i < json_array_size(qds); i++) {
        json_t *qd = json_array_get(qds, i);
        const char *bname = json_string_value(json_object_get(qd, "brokerName"));
        json_int_t perm = json_integer_value(json_object_get(qd, "perm"));
        json_int_t nr = json_integer_value(json_object_get(qd, "readQueueNums"));
        json_int_t nw = json_integer_value(json_object_get(qd, "writeQueueNums"));
        if (!bname || nr < 0 || nw < 0 || nr > 65535 || nw > 65535) {
            rc = -EBADMSG;
            goto out;
        }
        if ((perm & PERM_WRITE) && mqc_route_broker_addr(r, bname) &&
            (rc = add_queues(&r->pub, &r->npub, &pubcap, topic, bname, (int)nw)) != 0)
            goto out;
        if ((perm & PERM_READ) &&
            (rc = add_queues(&r->sub, &r->nsub, &subcap, topic, bname, (int)nr)) != 0)
            goto out;
    }
    if (r->npub)
        qsort(r->pub, r->npub, sizeof(*r->pub), mqc_queue_cmp);
    if (r->nsub)
        qsort(r->sub, r->nsub, sizeof(*r->sub), mqc_queue_cmp);
    *out = r;
    r = NULL;
    rc = 0;
out:
    mqc_route_free(r);
    json_decref(root);
    return rc;
}

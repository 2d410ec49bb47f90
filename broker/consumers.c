/* consumers.c — live consumer clients per group and heartbeat decoding (see consumers.h). */
#include "broker/consumers.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_map.h"

struct client {
    char id[256];
    int language, version;
    void *conn;
    int64_t last_ms;
    struct brk_sub *subs;
    size_t nsubs;
};

struct group {
    struct client *clients;
    size_t n, cap;
    struct brk_hb_consumer info; /* of the latest heartbeat: its subs are not kept here */
};

struct brk_consumers {
    pthread_mutex_t lock;
    struct mq_map groups; /* name -> struct group */
    int64_t expiry_ms;
    brk_consumers_changed_fn on_change;
    void *arg;
    void *(*ref)(void *);
    void (*unref)(void *);
};

static void *conn_ref(struct brk_consumers *c, void *conn)
{
    return (c->ref && conn) ? c->ref(conn) : conn;
}

static void conn_unref(struct brk_consumers *c, void *conn)
{
    if (c->unref && conn)
        c->unref(conn);
}

/* Copies src into dst, cut (when longer than cap - 1) before a UTF-8 character rather than
 * inside one: a cut sequence is not a JSON string, and the answers that carry it lost it. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) /* src[n]: first byte left out */
            n--;
    }
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- heartbeat decoding ---- */

void brk_heartbeat_destroy(struct brk_heartbeat *hb)
{
    for (size_t i = 0; i < hb->nconsumers; i++)
        free(hb->consumers[i].subs);
    free(hb->consumers);
    free(hb->producer_groups);
    memset(hb, 0, sizeof(*hb));
}

static int parse_consumer(json_t *cd, struct brk_hb_consumer *out)
{
    const char *group = json_string_value(json_object_get(cd, "groupName"));
    if (!group || strlen(group) >= sizeof(out->group))
        return -EBADMSG;
    copy_str(out->group, sizeof(out->group), group);
    copy_str(out->consume_from_where, sizeof(out->consume_from_where),
             json_string_value(json_object_get(cd, "consumeFromWhere")));
    copy_str(out->consume_type, sizeof(out->consume_type),
             json_string_value(json_object_get(cd, "consumeType")));
    const char *model = json_string_value(json_object_get(cd, "messageModel"));
    out->broadcasting = model && strcmp(model, "BROADCASTING") == 0;
    json_t *subs = json_object_get(cd, "subscriptionDataSet");
    size_t n = json_array_size(subs);
    out->subs = calloc(n ? n : 1, sizeof(*out->subs));
    if (!out->subs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *sd = json_array_get(subs, i);
        const char *topic = json_string_value(json_object_get(sd, "topic"));
        const char *expr = json_string_value(json_object_get(sd, "subString"));
        if (!topic || strlen(topic) >= sizeof(out->subs[0].topic))
            return -EBADMSG;
        if (expr && strlen(expr) >= BRK_SUB_EXPR_MAX)
            return -E2BIG;
        struct brk_sub *s = &out->subs[out->nsubs++];
        copy_str(s->topic, sizeof(s->topic), topic);
        copy_str(s->expr, sizeof(s->expr), expr ? expr : "*");
        json_t *v = json_object_get(sd, "subVersion");
        s->version = json_is_integer(v) ? json_integer_value(v) : 0;
        const char *type = json_string_value(json_object_get(sd, "expressionType"));
        copy_str(s->expr_type, sizeof(s->expr_type), type ? type : "TAG");
    }
    return 0;
}

int brk_expr_is_tag(const char *type)
{
    return !type || !*type || strcmp(type, "TAG") == 0;
}

int brk_heartbeat_parse(const char *json, size_t len, struct brk_heartbeat *out)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    int rc = -EBADMSG;
    const char *cid = json_string_value(json_object_get(root, "clientID"));
    if (!root || !cid || !*cid || strlen(cid) >= sizeof(out->client_id))
        goto out;
    copy_str(out->client_id, sizeof(out->client_id), cid);
    json_t *cds = json_object_get(root, "consumerDataSet");
    json_t *pds = json_object_get(root, "producerDataSet");
    size_t nc = json_array_size(cds), np = json_array_size(pds);
    out->consumers = calloc(nc ? nc : 1, sizeof(*out->consumers));
    out->producer_groups = calloc(np ? np : 1, sizeof(*out->producer_groups));
    if (!out->consumers || !out->producer_groups) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nc; i++) {
        rc = parse_consumer(json_array_get(cds, i), &out->consumers[i]);
        out->nconsumers = i + 1; /* so destroy frees its subs */
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < np; i++) {
        const char *g = json_string_value(json_object_get(json_array_get(pds, i), "groupName"));
        if (g)
            copy_str(out->producer_groups[out->nproducers++], 128, g);
    }
    rc = 0;
out:
    json_decref(root);
    if (rc)
        brk_heartbeat_destroy(out);
    return rc;
}

/* ---- the registry ---- */

int brk_consumers_new(int64_t expiry_ms, brk_consumers_changed_fn on_change, void *arg,
                      void *(*ref)(void *conn), void (*unref)(void *conn),
                      struct brk_consumers **out)
{
    struct brk_consumers *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    mq_map_init(&c->groups);
    c->expiry_ms = expiry_ms;
    c->on_change = on_change;
    c->arg = arg;
    c->ref = ref;
    c->unref = unref;
    *out = c;
    return 0;
}

static void free_group(struct brk_consumers *c, struct group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->clients[i].subs);
        conn_unref(c, g->clients[i].conn);
    }
    free(g->clients);
    free(g);
}

void brk_consumers_free(struct brk_consumers *c)
{
    if (!c)
        return;
    size_t it = 0;
    void *v;
    while (mq_map_next(&c->groups, &it, NULL, &v))
        free_group(c, v);
    mq_map_destroy(&c->groups);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void remove_client(struct brk_consumers *c, struct group *g, size_t i)
{
    free(g->clients[i].subs);
    conn_unref(c, g->clients[i].conn);
    g->clients[i] = g->clients[--g->n];
}

/* Registers one group of a heartbeat; sets *changed when a client joined. Lock held. */
static int register_one(struct brk_consumers *c, const struct brk_heartbeat *hb,
                        const struct brk_hb_consumer *hc, void *conn, int64_t now_ms, int *changed)
{
    const char *cid = hb->client_id;
    struct group *g = mq_map_get(&c->groups, hc->group);
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g || mq_map_put(&c->groups, hc->group, g, NULL)) {
            free(g);
            return -ENOMEM;
        }
    }
    struct client *cl = NULL;
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->clients[i].id, cid) == 0)
            cl = &g->clients[i];
    struct brk_sub *subs = malloc((hc->nsubs ? hc->nsubs : 1) * sizeof(*subs));
    if (!subs)
        return -ENOMEM;
    if (hc->nsubs)
        memcpy(subs, hc->subs, hc->nsubs * sizeof(*subs));
    if (!cl) {
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 4;
            struct client *p = realloc(g->clients, cap * sizeof(*p));
            if (!p) {
                free(subs);
                return -ENOMEM;
            }
            g->clients = p;
            g->cap = cap;
        }
        cl = &g->clients[g->n++];
        memset(cl, 0, sizeof(*cl));
        copy_str(cl->id, sizeof(cl->id), cid);
        *changed = 1;
    }
    free(cl->subs);
    cl->subs = subs;
    cl->nsubs = hc->nsubs;
    cl->language = hb->language;
    cl->version = hb->version;
    g->info = *hc;
    g->info.subs = NULL;
    g->info.nsubs = 0;
    if (cl->conn != conn) {
        conn_unref(c, cl->conn);
        cl->conn = conn_ref(c, conn);
    }
    cl->last_ms = now_ms;
    return 0;
}

int brk_consumers_heartbeat(struct brk_consumers *c, const struct brk_heartbeat *hb, void *conn,
                            int64_t now_ms)
{
    int rc = 0;
    int changed[64] = {0}; /* groups past the 64th are reported as changed, conservatively */
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < hb->nconsumers && rc == 0; i++) {
        int ch = 0;
        rc = register_one(c, hb, &hb->consumers[i], conn, now_ms, &ch);
        if (i < 64)
            changed[i] = ch;
    }
    pthread_mutex_unlock(&c->lock);
    if (c->on_change)
        for (size_t i = 0; i < hb->nconsumers; i++)
            if (i >= 64 || changed[i])
                c->on_change(hb->consumers[i].group, c->arg);
    return rc;
}

int brk_consumers_unregister(struct brk_consumers *c, const char *group, const char *client_id)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&c->lock);
    struct group *g = mq_map_get(&c->groups, group);
    for (size_t i = 0; g && i < g->n; i++) {
        if (strcmp(g->clients[i].id, client_id) == 0) {
            remove_client(c, g, i);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (rc == 0 && c->on_change)
        c->on_change(group, c->arg);
    return rc;
}

/* Removes clients matching (conn) or older than cutoff; collects the groups that changed. */
static size_t prune(struct brk_consumers *c, void *conn, int64_t cutoff)
{
    size_t removed = 0;
    char(*changed)[128] = NULL;
    size_t nchanged = 0;
    pthread_mutex_lock(&c->lock);
    size_t it = 0;
    const char *name;
    void *v;
    while (mq_map_next(&c->groups, &it, &name, &v)) {
        struct group *g = v;
        size_t before = g->n;
        for (size_t i = g->n; i-- > 0;)
            if ((conn && g->clients[i].conn == conn) || (!conn && g->clients[i].last_ms < cutoff))
                remove_client(c, g, i);
        if (g->n != before) {
            removed += before - g->n;
            void *p = realloc(changed, (nchanged + 1) * sizeof(*changed));
            if (p) {
                changed = p;
                copy_str(changed[nchanged++], 128, name);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; c->on_change && i < nchanged; i++)
        c->on_change(changed[i], c->arg);
    free(changed);
    return removed;
}

void brk_consumers_conn_closed(struct brk_consumers *c, void *conn)
{
    if (conn)
        (void)prune(c, conn, 0);
}

size_t brk_consumers_scan(struct brk_consumers *c, int64_t now_ms)
{
    return prune(c, NULL, now_ms - c->expiry_ms);
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

int brk_consumers_ids(struct brk_consumers *c, const char *group, char (**ids)[256], size_t *n)
{
    pthread_mutex_lock(&c->lock);
    struct group *g = mq_map_get(&c->groups, group);
    size_t cnt = g ? g->n : 0;
    char(*arr)[256] = malloc((cnt ? cnt : 1) * sizeof(*arr));
    if (arr)
        for (size_t i = 0; i < cnt; i++)
            memcpy(arr[i], g->clients[i].id, sizeof(arr[i]));
    pthread_mutex_unlock(&c->lock);
    if (!arr)
        return -ENOMEM;
    qsort(arr, cnt, sizeof(*arr), cmp_ids);
    *ids = arr;
    *n = cnt;
    return 0;
}

size_t brk_consumers_conns(struct brk_consumers *c, const char *group, void **out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&c->lock);
    struct group *g = mq_map_get(&c->groups, group);
    for (size_t i = 0; g && i < g->n && k < max; i++)
        out[k++] = conn_ref(c, g->clients[i].conn);
    pthread_mutex_unlock(&c->lock);
    return k;
}

int brk_consumers_find_sub(struct brk_consumers *c, const char *group, const char *topic,
                           struct brk_sub *out)
{
    pthread_mutex_lock(&c->lock);
    struct group *g = mq_map_get(&c->groups, group);
    int rc = g && g->n ? -ENOENT : -ESRCH;
    for (size_t i = 0; g && i < g->n; i++)
        for (size_t j = 0; j < g->clients[i].nsubs; j++) {
            const struct brk_sub *s = &g->clients[i].subs[j];
            if (strcmp(s->topic, topic) == 0 && (rc || s->version > out->version)) {
                *out = *s;
                rc = 0;
            }
        }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int brk_consumers_connection(struct brk_consumers *c, const char *group,
                             const char *(*peer)(void *conn), const char *(*lang)(int language),
                             json_t **out)
{
    json_t *root = json_object(), *conns = json_array(), *table = json_object();
    int rc = root && conns && table ? 0 : -ENOMEM;
    pthread_mutex_lock(&c->lock);
    struct group *g = mq_map_get(&c->groups, group);
    if (rc == 0 && (!g || g->n == 0))
        rc = -ENOENT;
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        const struct client *cl = &g->clients[i];
        const char *addr = cl->conn && peer ? peer(cl->conn) : NULL;
        json_array_append_new(conns, json_pack("{s:s, s:s, s:s, s:i}", "clientAddr",
                                               addr ? addr : "", "clientId", cl->id, "language",
                                               lang(cl->language), "version", cl->version));
        for (size_t j = 0; j < cl->nsubs; j++) { /* SubscriptionData, as a stock client sends it */
            const struct brk_sub *sb = &cl->subs[j];
            json_object_set_new(
                table, sb->topic,
                json_pack("{s:b, s:s, s:s, s:[], s:[], s:I, s:s}", "classFilterMode", 0, "topic",
                          sb->topic, "subString", sb->expr, "tagsSet", "codeSet", "subVersion",
                          (json_int_t)sb->version, "expressionType", sb->expr_type));
        }
    }
    if (rc == 0) {
        json_object_set(root, "connectionSet", conns);
        json_object_set_new(
            root, "consumeType",
            json_string(g->info.consume_type[0] ? g->info.consume_type : "CONSUME_PASSIVELY"));
        json_object_set_new(root, "messageModel",
                            json_string(g->info.broadcasting ? "BROADCASTING" : "CLUSTERING"));
        json_object_set_new(root, "consumeFromWhere",
                            json_string(g->info.consume_from_where[0]
                                            ? g->info.consume_from_where
                                            : "CONSUME_FROM_LAST_OFFSET"));
        json_object_set(root, "subscriptionTable", table);
    }
    pthread_mutex_unlock(&c->lock);
    json_decref(conns);
    json_decref(table);
    if (rc) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

int brk_consumers_groups_of(struct brk_consumers *c, const char *topic, char (**out)[128],
                            size_t *n)
{
    size_t it = 0, cap = 0;
    const char *name;
    void *v;
    int rc = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&c->lock);
    while (rc == 0 && mq_map_next(&c->groups, &it, &name, &v)) {
        struct group *g = v;
        int found = 0;
        for (size_t i = 0; i < g->n && !found; i++)
            for (size_t j = 0; j < g->clients[i].nsubs && !found; j++)
                found = strcmp(g->clients[i].subs[j].topic, topic) == 0;
        if (!found)
            continue;
        if (*n == cap) {
            char(*p)[128] = realloc(*out, (cap = cap ? cap * 2 : 8) * sizeof(*p));
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            *out = p;
        }
        copy_str((*out)[(*n)++], 128, name);
    }
    pthread_mutex_unlock(&c->lock);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

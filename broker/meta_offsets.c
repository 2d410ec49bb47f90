/* meta_offsets.c — consumer offsets (RocketMQ's ConsumerOffsetManager): "topic@group" ->
 * queueId -> next offset to consume, persisted as {"offsetTable":{"topic@group":{"0":12}}}. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/meta.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_file.h"
#include "common/mq_log.h"
#include "common/mq_map.h"
#include "common/mq_util.h"

#define OFFSETS_FILE_MAX (512u << 20)
#define MAX_QUEUE_ID     65535

struct queue_offsets {
    int64_t *off; /* -1: none committed */
    int n;
};

struct brk_offsets {
    pthread_mutex_t lock;
    struct mq_map map; /* "topic@group" -> struct queue_offsets */
    char *path;
    int dirty;
};

static int set_offset(struct brk_offsets *o, const char *key, int qid, int64_t offset)
{
    struct queue_offsets *q = mq_map_get(&o->map, key);
    if (!q) {
        q = calloc(1, sizeof(*q));
        if (!q || mq_map_put(&o->map, key, q, NULL)) {
            free(q);
            return -ENOMEM;
        }
    }
    if (qid >= q->n) {
        int n = qid + 1;
        int64_t *p = realloc(q->off, (size_t)n * sizeof(*p));
        if (!p)
            return -ENOMEM;
        for (int i = q->n; i < n; i++)
            p[i] = -1;
        q->off = p;
        q->n = n;
    }
    q->off[qid] = offset;
    return 0;
}

static int load(struct brk_offsets *o)
{
    json_t *root;
    int rc = brk_meta_load_json(o->path, OFFSETS_FILE_MAX, &root);
    if (rc || !root)
        return rc;
    const char *key, *qkey;
    json_t *queues, *val;
    json_object_foreach(json_object_get(root, "offsetTable"), key, queues)
    {
        json_object_foreach(queues, qkey, val)
        {
            char *end;
            long qid = strtol(qkey, &end, 10);
            if (*end || qid < 0 || qid > MAX_QUEUE_ID || !json_is_integer(val))
                continue;
            if ((rc = set_offset(o, key, (int)qid, json_integer_value(val))) != 0)
                goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

void brk_offsets_close(struct brk_offsets *o)
{
    if (!o)
        return;
    if (o->path)
        (void)brk_offsets_persist(o);
    size_t it = 0;
    void *v;
    while (mq_map_next(&o->map, &it, NULL, &v)) {
        free(((struct queue_offsets *)v)->off);
        free(v);
    }
    mq_map_destroy(&o->map);
    pthread_mutex_destroy(&o->lock);
    free(o->path);
    free(o);
}

int brk_offsets_open(const char *path, struct brk_offsets **out)
{
    struct brk_offsets *o = calloc(1, sizeof(*o));
    if (!o)
        return -ENOMEM;
    pthread_mutex_init(&o->lock, NULL);
    mq_map_init(&o->map);
    int rc = -ENOMEM;
    if ((o->path = strdup(path)) == NULL || (rc = load(o)) != 0) {
        free(o->path);
        o->path = NULL; /* do not persist over a file we could not read */
        brk_offsets_close(o);
        return rc;
    }
    *out = o;
    return 0;
}

static int make_key(char *buf, size_t cap, const char *topic, const char *group)
{
    return snprintf(buf, cap, "%s@%s", topic, group) < (int)cap ? 0 : -EINVAL;
}

int brk_offsets_commit(struct brk_offsets *o, const char *group, const char *topic, int queue_id,
                       int64_t offset)
{
    char key[2 * 128 + 2];
    if (queue_id < 0 || queue_id > MAX_QUEUE_ID || offset < 0 ||
        make_key(key, sizeof(key), topic, group))
        return -EINVAL;
    pthread_mutex_lock(&o->lock);
    int rc = set_offset(o, key, queue_id, offset);
    if (rc == 0)
        o->dirty = 1;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

int64_t brk_offsets_query(struct brk_offsets *o, const char *group, const char *topic, int queue_id)
{
    char key[2 * 128 + 2];
    if (make_key(key, sizeof(key), topic, group))
        return -1;
    pthread_mutex_lock(&o->lock);
    struct queue_offsets *q = mq_map_get(&o->map, key);
    int64_t v = (q && queue_id >= 0 && queue_id < q->n) ? q->off[queue_id] : -1;
    pthread_mutex_unlock(&o->lock);
    return v;
}

/* The names on one side of "topic@group" keys whose other side is `name` (want_topics: the
 * topics of group `name`, else the groups of topic `name`). */
static int names_of(struct brk_offsets *o, const char *name, int want_topics,
                    char (**out)[BRK_NAME_MAX], size_t *n)
{
    size_t nl = strlen(name), cap = 0, it = 0;
    const char *key;
    int rc = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&o->lock);
    while (rc == 0 && mq_map_next(&o->map, &it, &key, NULL)) {
        const char *at = strchr(key, '@'); /* names have no '@': "topic@group" splits once */
        if (!at)
            continue;
        const char *match = want_topics ? at + 1 : key, *other = want_topics ? key : at + 1;
        size_t ml = want_topics ? strlen(at + 1) : (size_t)(at - key);
        size_t ol = want_topics ? (size_t)(at - key) : strlen(at + 1);
        if (ml != nl || memcmp(match, name, nl) != 0 || ol >= BRK_NAME_MAX)
            continue;
        if (*n == cap) {
            char(*p)[BRK_NAME_MAX] = realloc(*out, (cap = cap ? cap * 2 : 8) * sizeof(*p));
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            *out = p;
        }
        memcpy((*out)[*n], other, ol);
        (*out)[(*n)++][ol] = '\0';
    }
    pthread_mutex_unlock(&o->lock);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int brk_offsets_topics(struct brk_offsets *o, const char *group, char (**out)[BRK_NAME_MAX],
                       size_t *n)
{
    return names_of(o, group, 1, out, n);
}

int brk_offsets_groups(struct brk_offsets *o, const char *topic, char (**out)[BRK_NAME_MAX],
                       size_t *n)
{
    return names_of(o, topic, 0, out, n);
}

void brk_offsets_delete_topic(struct brk_offsets *o, const char *topic)
{
    size_t tl = strlen(topic);
    pthread_mutex_lock(&o->lock);
    size_t it = 0;
    const char *key;
    void *v;
    while (mq_map_next(&o->map, &it, &key, &v)) {
        if (strncmp(key, topic, tl) == 0 && key[tl] == '@') {
            struct queue_offsets *q = mq_map_del(&o->map, key);
            free(q->off);
            free(q);
            o->dirty = 1;
        }
    }
    pthread_mutex_unlock(&o->lock);
}

void brk_offsets_delete_group(struct brk_offsets *o, const char *group)
{
    pthread_mutex_lock(&o->lock);
    size_t it = 0;
    const char *key;
    void *v;
    while (mq_map_next(&o->map, &it, &key, &v)) {
        const char *at = strrchr(key, '@'); /* "topic@group"; neither name holds an '@' */
        if (at && strcmp(at + 1, group) == 0) {
            struct queue_offsets *q = mq_map_del(&o->map, key);
            free(q->off);
            free(q);
            o->dirty = 1;
        }
    }
    pthread_mutex_unlock(&o->lock);
}

int brk_offsets_persist(struct brk_offsets *o)
{
    pthread_mutex_lock(&o->lock);
    if (!o->dirty) {
        pthread_mutex_unlock(&o->lock);
        return 0;
    }
    struct mq_buf b;
    mq_buf_init(&b);
    int rc = mq_buf_append_str(&b, "{\"offsetTable\":{");
    size_t it = 0;
    const char *key;
    void *v;
    int first = 1;
    while (rc == 0 && mq_map_next(&o->map, &it, &key, &v)) {
        struct queue_offsets *q = v;
        rc = mq_buf_printf(&b, "%s\"%s\":{", first ? "" : ",", key); /* names need no escaping */
        first = 0;
        int qfirst = 1;
        for (int i = 0; rc == 0 && i < q->n; i++) {
            if (q->off[i] < 0)
                continue;
            rc = mq_buf_printf(&b, "%s\"%d\":%" PRId64, qfirst ? "" : ",", i, q->off[i]);
            qfirst = 0;
        }
        if (rc == 0)
            rc = mq_buf_append_str(&b, "}");
    }
    if (rc == 0)
        rc = mq_buf_append_str(&b, "}}");
    if (rc == 0)
        rc = mq_file_write_atomic(o->path, b.data, b.len);
    if (rc == 0)
        o->dirty = 0;
    else
        mq_error("%s: cannot persist consumer offsets: %s", o->path, mq_strerror(rc));
    pthread_mutex_unlock(&o->lock);
    mq_buf_destroy(&b);
    return rc;
}

/* filters.c — the cache of compiled SQL92 subscriptions (see filters.h). */
#include "broker/filters.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_map.h"
#include "common/mq_sql.h"

struct brk_filter {
    struct mq_sql *sql;
    size_t bytes; /* what it costs the cache: the compiled expression and the key */
    int refs;     /* the map's (while cached) and the pulls' */
};

struct brk_filters {
    pthread_mutex_t lock;
    struct mq_map map; /* "group\001topic\001expr" -> struct brk_filter */
    size_t bytes;      /* of the entries in the map */
};

int brk_filters_new(struct brk_filters **out)
{
    struct brk_filters *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    pthread_mutex_init(&f->lock, NULL);
    mq_map_init(&f->map);
    *out = f;
    return 0;
}

static void unref(struct brk_filter *e)
{
    if (--e->refs == 0) {
        mq_sql_free(e->sql);
        free(e);
    }
}

void brk_filters_free(struct brk_filters *f)
{
    if (!f)
        return;
    const char *k;
    void *v;
    pthread_mutex_lock(&f->lock);
    for (size_t it = 0; mq_map_next(&f->map, &it, &k, &v);)
        unref(v);
    mq_map_destroy(&f->map);
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Drops an arbitrary entry from the map (with f->lock held). Returns 0, or -1 if none went. */
static int evict_one(struct brk_filters *f)
{
    const char *k;
    void *v;
    size_t it = 0;
    if (!mq_map_next(&f->map, &it, &k, &v))
        return -1;
    char *victim = strdup(k);
    int rc = -1;
    if (victim && mq_map_del(&f->map, victim)) {
        f->bytes -= ((struct brk_filter *)v)->bytes;
        unref(v);
        rc = 0;
    }
    free(victim);
    return rc;
}

int brk_filters_get(struct brk_filters *f, const char *group, const char *topic, const char *expr,
                    struct brk_filter **out, char *err, size_t errlen)
{
    size_t gl = strlen(group), tl = strlen(topic), el = strlen(expr);
    char *key = malloc(gl + tl + el + 3);
    if (!key)
        return -ENOMEM;
    memcpy(key, group, gl);
    key[gl] = '\001';
    memcpy(key + gl + 1, topic, tl);
    key[gl + 1 + tl] = '\001';
    memcpy(key + gl + tl + 2, expr, el + 1);

    pthread_mutex_lock(&f->lock);
    struct brk_filter *e = mq_map_get(&f->map, key);
    if (e)
        e->refs++;
    pthread_mutex_unlock(&f->lock);
    if (e) {
        free(key);
        *out = e;
        return 0;
    }
    /* compiled outside the lock: an expression is at most MQ_SQL_MAX_LEN bytes */
    struct mq_sql *sql;
    int rc = mq_sql_compile(expr, el, &sql, err, errlen);
    if (rc) {
        free(key);
        return rc;
    }
    if (!(e = malloc(sizeof(*e)))) {
        mq_sql_free(sql);
        free(key);
        return -ENOMEM;
    }
    e->sql = sql;
    e->bytes = sizeof(*e) + mq_sql_bytes(sql) + gl + tl + el + 3; /* and the map's key */
    e->refs = 1;                                                  /* the caller's */
    pthread_mutex_lock(&f->lock);
    struct brk_filter *had = mq_map_get(&f->map, key);
    if (had) { /* another pull compiled it meanwhile: use that one */
        had->refs++;
        unref(e);
        e = had;
    } else {
        /* make room: drop entries until both bounds hold with this one */
        while (f->map.len > 0 &&
               (f->map.len >= BRK_FILTERS_MAX || f->bytes + e->bytes > BRK_FILTERS_MAX_BYTES) &&
               evict_one(f) == 0)
            ;
        if (mq_map_put(&f->map, key, e, NULL) == 0) {
            e->refs++; /* the map's */
            f->bytes += e->bytes;
        }
    }
    pthread_mutex_unlock(&f->lock);
    free(key);
    *out = e;
    return 0;
}

const struct mq_sql *brk_filter_sql(const struct brk_filter *e)
{
    return e->sql;
}

void brk_filters_usage(struct brk_filters *f, size_t *entries, size_t *bytes)
{
    pthread_mutex_lock(&f->lock);
    *entries = f->map.len;
    *bytes = f->bytes;
    pthread_mutex_unlock(&f->lock);
}

void brk_filters_put(struct brk_filters *f, struct brk_filter *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&f->lock);
    unref(e);
    pthread_mutex_unlock(&f->lock);
}

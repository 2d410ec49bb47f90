/* meta_int.h — the generic persistent record table behind topics and subscription groups:
 * name -> fixed-size record, a lock, a data version, and JSON load/store through per-kind
 * codecs. */
#ifndef MQ_BROKER_META_INT_H
#define MQ_BROKER_META_INT_H

#include <jansson.h>
#include <pthread.h>

#include "broker/meta.h"
#include "common/mq_map.h"

struct meta_kind {
    size_t rec_size;
    const char *table_key; /* "topicConfigTable" or "subscriptionGroupTable" */
    /* Encodes a record as a JSON object (new reference), or NULL on ENOMEM. */
    json_t *(*encode)(const void *rec);
    /* Decodes a record; returns 0 or -EBADMSG. */
    int (*decode)(const char *name, json_t *obj, void *rec);
};

struct meta_table {
    pthread_mutex_t lock;    /* the map, the version, dirty */
    pthread_mutex_t persist; /* one writer of the file at a time, taken before lock */
    struct mq_map map;       /* name -> malloc'd record */
    char *path;
    struct brk_data_version version;
    const struct meta_kind *kind;
    int dirty; /* changed since the file was last written (meta_table_put_later) */
};

int meta_table_open(const char *path, const struct meta_kind *kind, struct meta_table **out);
void meta_table_close(struct meta_table *t);
int meta_table_get(struct meta_table *t, const char *name, void *out);
int meta_table_put(struct meta_table *t, const char *name, const void *rec);
/* As meta_table_put, but the file is written by the next meta_table_flush (or close), not now:
 * for records the broker makes itself on a client's request and would make again. */
int meta_table_put_later(struct meta_table *t, const char *name, const void *rec);
/* Writes the file if a meta_table_put_later changed the table since it was last written. */
int meta_table_flush(struct meta_table *t);
int meta_table_delete(struct meta_table *t, const char *name);
int meta_table_list(struct meta_table *t, void **out, size_t *n);
struct brk_data_version meta_table_version(struct meta_table *t);
int meta_table_to_json(struct meta_table *t, struct mq_buf *out);

/* JSON field helpers: a missing or mistyped field yields the default. */
int64_t meta_json_int(json_t *obj, const char *key, int64_t def);
int meta_json_bool(json_t *obj, const char *key, int def);

#endif

/* meta_table.c — a persistent name -> record table with a data version (see meta_int.h). The
 * file layout is {"<table_key>": {name: record...}, "dataVersion": {"timestamp", "counter"}}. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/meta_int.h"
#include "common/mq_bytes.h"
#include "common/mq_err.h"
#include "common/mq_file.h"
#include "common/mq_log.h"
#include "common/mq_util.h"

#define META_FILE_MAX (256u << 20)

int64_t meta_json_int(json_t *obj, const char *key, int64_t def)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v)) { /* fastjson sometimes writes numbers as strings */
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        return *end == '\0' ? n : def;
    }
    return def;
}

int meta_json_bool(json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static void bump_version(struct meta_table *t)
{
    t->version.timestamp = mq_now_ms();
    t->version.counter++;
}

int brk_meta_load_json(const char *path, size_t max, json_t **root)
{
    char *text = NULL;
    size_t len = 0;
    *root = NULL;
    int rc = mq_file_read_all(path, max, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (len == 0) { /* ours are replaced atomically: an empty one was made by hand */
        free(text);
        mq_error("%s: empty; refusing to start over it (remove it to start without it)", path);
        return -EBADMSG;
    }
    json_error_t jerr;
    *root = json_loadb(text, len, 0, &jerr);
    if (!*root) { /* written by fastjson with bare integer keys? */
        struct mq_buf fixed;
        mq_buf_init(&fixed);
        if (mq_json_quote_int_keys(text, len, &fixed) == 0)
            *root = json_loadb((const char *)fixed.data, fixed.len, 0, &jerr);
        mq_buf_destroy(&fixed);
    }
    free(text);
    if (!*root) {
        mq_error("%s: unparsable (%s at line %d); refusing to start over it", path, jerr.text,
                 jerr.line);
        return -EBADMSG;
    }
    return 0;
}

static int load(struct meta_table *t)
{
    json_t *root;
    int rc = brk_meta_load_json(t->path, META_FILE_MAX, &root);
    if (rc || !root)
        return rc;
    json_t *table = json_object_get(root, t->kind->table_key);
    const char *name;
    json_t *obj;
    rc = 0;
    json_object_foreach(table, name, obj)
    {
        void *rec = calloc(1, t->kind->rec_size);
        if (!rec) {
            rc = -ENOMEM;
            break;
        }
        if (mq_check_topic(name, strlen(name)) || t->kind->decode(name, obj, rec)) {
            mq_warn("%s: skipping bad entry '%s'", t->path, name);
            free(rec);
            continue;
        }
        if ((rc = mq_map_put(&t->map, name, rec, NULL)) != 0) {
            free(rec);
            break;
        }
    }
    json_t *dv = json_object_get(root, "dataVersion");
    t->version.timestamp = meta_json_int(dv, "timestamp", mq_now_ms());
    t->version.counter = meta_json_int(dv, "counter", 0);
    json_decref(root);
    return rc;
}

int meta_table_open(const char *path, const struct meta_kind *kind, struct meta_table **out)
{
    struct meta_table *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->persist, NULL);
    mq_map_init(&t->map);
    t->kind = kind;
    t->version.timestamp = mq_now_ms();
    t->path = strdup(path);
    int rc = t->path ? load(t) : -ENOMEM;
    if (rc) {
        meta_table_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

void meta_table_close(struct meta_table *t)
{
    if (!t)
        return;
    (void)meta_table_flush(t);
    size_t it = 0;
    void *rec;
    while (mq_map_next(&t->map, &it, NULL, &rec))
        free(rec);
    mq_map_destroy(&t->map);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->persist);
    free(t->path);
    free(t);
}

/* Encodes the table; the caller holds the lock. */
static int encode_locked(struct meta_table *t, struct mq_buf *out)
{
    json_t *root = json_object(), *table = json_object(), *dv = json_object();
    int rc = -ENOMEM;
    if (!root || !table || !dv)
        goto out;
    size_t it = 0;
    const char *name;
    void *rec;
    while (mq_map_next(&t->map, &it, &name, &rec))
        if (json_object_set_new(table, name, t->kind->encode(rec)))
            goto out;
    json_object_set_new(dv, "timestamp", json_integer(t->version.timestamp));
    json_object_set_new(dv, "counter", json_integer(t->version.counter));
    json_object_set(root, t->kind->table_key, table);
    json_object_set(root, "dataVersion", dv);
    char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        goto out;
    rc = mq_buf_append_str(out, s);
    free(s);
out:
    json_decref(root);
    json_decref(table);
    json_decref(dv);
    return rc;
}

/* Writes the file from the table as it is now. persist held, lock not: lookups go on while the
 * file is written and synced (a sync can take 0.1 s on a busy disk). */
static int persist(struct meta_table *t)
{
    struct mq_buf b;
    mq_buf_init(&b);
    pthread_mutex_lock(&t->lock);
    int rc = encode_locked(t, &b);
    if (rc == 0)
        t->dirty = 0;
    pthread_mutex_unlock(&t->lock);
    if (rc == 0 && (rc = mq_file_write_atomic(t->path, b.data, b.len)) != 0) {
        pthread_mutex_lock(&t->lock);
        t->dirty = 1; /* tried again by the next flush */
        pthread_mutex_unlock(&t->lock);
    }
    if (rc)
        mq_error("%s: cannot persist: %s", t->path, mq_strerror(rc));
    mq_buf_destroy(&b);
    return rc;
}

int meta_table_get(struct meta_table *t, const char *name, void *out)
{
    pthread_mutex_lock(&t->lock);
    void *rec = mq_map_get(&t->map, name);
    if (rec)
        memcpy(out, rec, t->kind->rec_size);
    pthread_mutex_unlock(&t->lock);
    return rec ? 0 : -ENOENT;
}

int meta_table_put_later(struct meta_table *t, const char *name, const void *rec)
{
    void *copy = malloc(t->kind->rec_size);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, rec, t->kind->rec_size);
    pthread_mutex_lock(&t->lock);
    void *old = NULL;
    int rc = mq_map_put(&t->map, name, copy, &old);
    if (rc == 0) {
        free(old);
        bump_version(t);
        t->dirty = 1;
    }
    pthread_mutex_unlock(&t->lock);
    if (rc)
        free(copy);
    return rc;
}

/* The file holds the change once it returns 0: written here, or by a flush that began after the
 * change and that this one waited for. */
int meta_table_put(struct meta_table *t, const char *name, const void *rec)
{
    int rc = meta_table_put_later(t, name, rec);
    return rc ? rc : meta_table_flush(t);
}

int meta_table_flush(struct meta_table *t)
{
    pthread_mutex_lock(&t->persist);
    pthread_mutex_lock(&t->lock);
    int dirty = t->dirty;
    pthread_mutex_unlock(&t->lock);
    int rc = dirty ? persist(t) : 0;
    pthread_mutex_unlock(&t->persist);
    return rc;
}

int meta_table_delete(struct meta_table *t, const char *name)
{
    pthread_mutex_lock(&t->lock);
    void *rec = mq_map_del(&t->map, name);
    if (rec) {
        free(rec);
        bump_version(t);
        t->dirty = 1;
    }
    pthread_mutex_unlock(&t->lock);
    return rec ? meta_table_flush(t) : -ENOENT;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b); /* records start with their name */
}

int meta_table_list(struct meta_table *t, void **out, size_t *n)
{
    pthread_mutex_lock(&t->lock);
    size_t cnt = t->map.len, i = 0, it = 0;
    char *arr = malloc((cnt ? cnt : 1) * t->kind->rec_size);
    void *rec;
    if (arr) {
        while (mq_map_next(&t->map, &it, NULL, &rec))
            memcpy(arr + t->kind->rec_size * i++, rec, t->kind->rec_size);
    }
    pthread_mutex_unlock(&t->lock);
    if (!arr)
        return -ENOMEM;
    qsort(arr, cnt, t->kind->rec_size, cmp_names);
    *out = arr;
    *n = cnt;
    return 0;
}

struct brk_data_version meta_table_version(struct meta_table *t)
{
    pthread_mutex_lock(&t->lock);
    struct brk_data_version v = t->version;
    pthread_mutex_unlock(&t->lock);
    return v;
}

int meta_table_to_json(struct meta_table *t, struct mq_buf *out)
{
    pthread_mutex_lock(&t->lock);
    int rc = encode_locked(t, out);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

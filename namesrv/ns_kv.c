/* ns_kv.c — the NameServer's KV config (RocketMQ's KVConfigManager): namespace -> key -> value,
 * behind its own reader-writer lock, optionally persisted as
 * {"configTable":{namespace:{key:value}}} to a file (write temp, fsync, rename, fsync dir).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mq_log.h"
#include "namesrv/namesrv.h"

struct ns_kv {
    pthread_rwlock_t lock;
    json_t *table; /* namespace -> {key -> value} */
    char *path;
};

int ns_kv_new(const char *path, struct ns_kv **out)
{
    struct ns_kv *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return -ENOMEM;
    pthread_rwlock_init(&kv->lock, NULL);
    if (path && *path) {
        kv->path = strdup(path);
        json_error_t err;
        json_t *doc = json_load_file(path, 0, &err);
        if (doc) {
            kv->table = json_incref(json_object_get(doc, "configTable"));
            json_decref(doc);
            if (!json_is_object(kv->table)) {
                mq_error("%s: no configTable object", path);
                ns_kv_free(kv);
                return -EINVAL;
            }
            mq_info("load KV config table OK from %s", path);
        } else if (access(path, F_OK) == 0) {
            mq_error("%s:%d: %s", path, err.line, err.text);
            ns_kv_free(kv);
            return -EINVAL;
        }
    }
    if (!kv->table)
        kv->table = json_object();
    if (!kv->table || (path && *path && !kv->path)) {
        ns_kv_free(kv);
        return -ENOMEM;
    }
    *out = kv;
    return 0;
}

void ns_kv_free(struct ns_kv *kv)
{
    if (!kv)
        return;
    json_decref(kv->table);
    free(kv->path);
    pthread_rwlock_destroy(&kv->lock);
    free(kv);
}

/* Called with the write lock held. */
static int persist(struct ns_kv *kv)
{
    if (!kv->path)
        return 0;
    char tmp[4096];
    int rc = 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", kv->path);
    json_t *doc = json_pack("{s:O}", "configTable", kv->table);
    char *s = doc ? json_dumps(doc, JSON_INDENT(4)) : NULL;
    json_decref(doc);
    if (!s)
        return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t n = strlen(s);
    if (fd < 0 || write(fd, s, n) != (ssize_t)n || fsync(fd) != 0 || rename(tmp, kv->path)) {
        rc = -errno;
        mq_error("persist %s: %s", kv->path, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    free(s);
    if (rc == 0) {
        char *dcopy = strdup(kv->path);
        int dfd = dcopy ? open(dirname(dcopy), O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    }
    return rc;
}

int ns_kv_put(struct ns_kv *kv, const char *ns, const char *key, const char *value)
{
    int rc = -ENOMEM;
    pthread_rwlock_wrlock(&kv->lock);
    json_t *t = json_object_get(kv->table, ns);
    if (!t) {
        t = json_object();
        if (!t || json_object_set_new(kv->table, ns, t) != 0)
            goto out;
    }
    json_t *v = json_string(value);
    if (!v || json_object_set_new(t, key, v) != 0)
        goto out;
    mq_info("putKVConfig: namespace=%s key=%s value=%s", ns, key, value);
    rc = persist(kv);
out:
    pthread_rwlock_unlock(&kv->lock);
    return rc;
}

int ns_kv_delete(struct ns_kv *kv, const char *ns, const char *key)
{
    int rc = -ENOENT;
    pthread_rwlock_wrlock(&kv->lock);
    json_t *t = json_object_get(kv->table, ns);
    if (t && json_object_del(t, key) == 0) {
        if (json_object_size(t) == 0)
            json_object_del(kv->table, ns);
        mq_info("deleteKVConfig: namespace=%s key=%s", ns, key);
        rc = persist(kv);
    }
    pthread_rwlock_unlock(&kv->lock);
    return rc;
}

char *ns_kv_get(struct ns_kv *kv, const char *ns, const char *key)
{
    pthread_rwlock_rdlock(&kv->lock);
    const char *v = json_string_value(json_object_get(json_object_get(kv->table, ns), key));
    char *copy = v ? strdup(v) : NULL;
    pthread_rwlock_unlock(&kv->lock);
    return copy;
}

char *ns_kv_keys_by_value(struct ns_kv *kv, const char *ns, const char *value)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    pthread_rwlock_rdlock(&kv->lock);
    json_t *t = json_object_get(kv->table, ns), *v;
    const char *k;
    if (!t)
        goto done;
    out = strdup("");
    json_object_foreach(t, k, v)
    {
        if (!out || strcmp(json_string_value(v), value) != 0)
            continue;
        size_t need = len + strlen(k) + 2;
        if (need > cap) {
            cap = need * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                out = NULL;
                break;
            }
            out = n;
        }
        len += (size_t)sprintf(out + len, "%s%s", len ? ";" : "", k);
    }
done:
    pthread_rwlock_unlock(&kv->lock);
    return out;
}

json_t *ns_kv_table(struct ns_kv *kv, const char *ns)
{
    json_t *res = NULL;
    pthread_rwlock_rdlock(&kv->lock);
    json_t *t = json_object_get(kv->table, ns);
    if (t && json_object_size(t) > 0)
        res = json_pack("{s:o}", "table", json_deep_copy(t));
    pthread_rwlock_unlock(&kv->lock);
    return res;
}

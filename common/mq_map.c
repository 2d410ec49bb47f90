/* mq_map.c — string-keyed open-addressing hash map (see mq_map.h). */
#include "common/mq_map.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tomb_marker;
#define MQ_MAP_TOMB (&tomb_marker)

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

void mq_map_init(struct mq_map *m)
{
    memset(m, 0, sizeof(*m));
}

void mq_map_destroy(struct mq_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != MQ_MAP_TOMB)
            free(m->slots[i].key);
    free(m->slots);
    mq_map_init(m);
}

/* The slot holding key, or NULL. */
static struct mq_map_slot *find(const struct mq_map *m, const char *key, size_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct mq_map_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != MQ_MAP_TOMB && s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
}

static int grow(struct mq_map *m)
{
    size_t cap = m->cap ? m->cap : 8;
    while ((m->len + 1) * 4 >= cap * 3) /* keep live entries under 3/4 */
        cap *= 2;
    struct mq_map_slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        struct mq_map_slot *s = &m->slots[i];
        if (!s->key || s->key == MQ_MAP_TOMB)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->len;
    return 0;
}

void *mq_map_get(const struct mq_map *m, const char *key)
{
    struct mq_map_slot *s = find(m, key, hash_str(key));
    return s ? s->value : NULL;
}

int mq_map_put(struct mq_map *m, const char *key, void *value, void **old)
{
    size_t h = hash_str(key);
    struct mq_map_slot *s = find(m, key, h);
    if (s) {
        if (old)
            *old = s->value;
        s->value = value;
        return 0;
    }
    if (old)
        *old = NULL;
    if ((m->used + 1) * 4 >= m->cap * 3) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    char *k = strdup(key);
    if (!k)
        return -ENOMEM;
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != MQ_MAP_TOMB)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = k;
    m->slots[i].value = value;
    m->slots[i].hash = h;
    m->len++;
    return 0;
}

void *mq_map_del(struct mq_map *m, const char *key)
{
    struct mq_map_slot *s = find(m, key, hash_str(key));
    if (!s)
        return NULL;
    void *v = s->value;
    free(s->key);
    s->key = MQ_MAP_TOMB;
    s->value = NULL;
    m->len--;
    return v;
}

int mq_map_next(const struct mq_map *m, size_t *it, const char **key, void **value)
{
    for (; *it < m->cap; (*it)++) {
        struct mq_map_slot *s = &m->slots[*it];
        if (s->key && s->key != MQ_MAP_TOMB) {
            if (key)
                *key = s->key;
            if (value)
                *value = s->value;
            (*it)++;
            return 1;
        }
    }
    return 0;
}

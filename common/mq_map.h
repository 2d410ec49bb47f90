/* mq_map.h — a string-keyed hash map (open addressing, linear probing) holding void pointers.
 *
 * Not thread-safe: owners lock around it. Keys are copied into the map; values are owned by the
 * caller (the map never frees them). Iteration order is unspecified.
 */
#ifndef MQ_MAP_H
#define MQ_MAP_H

#include <stddef.h>

struct mq_map_slot {
    char *key; /* NULL: empty; MQ_MAP_TOMB: deleted */
    void *value;
    size_t hash;
};

struct mq_map {
    struct mq_map_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t len;  /* live entries */
    size_t used; /* live + tombstones */
};

void mq_map_init(struct mq_map *m);
/* Frees the map's own memory (keys, slots), not the values. */
void mq_map_destroy(struct mq_map *m);
/* The value for key, or NULL. */
void *mq_map_get(const struct mq_map *m, const char *key);
/* Inserts or replaces. If old is non-NULL it receives the replaced value (or NULL).
 * Returns 0 or -ENOMEM. */
int mq_map_put(struct mq_map *m, const char *key, void *value, void **old);
/* Removes key; returns its value, or NULL if absent. */
void *mq_map_del(struct mq_map *m, const char *key);

/* Iterates: `for (size_t it = 0; mq_map_next(m, &it, &k, &v);)`. Do not modify the map while
 * iterating, except deleting the entry just returned. */
int mq_map_next(const struct mq_map *m, size_t *it, const char **key, void **value);

#endif

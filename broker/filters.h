/* filters.h — the broker's compiled SQL92 subscriptions (RocketMQ's ConsumerFilterManager,
 * without its bloom filter): a pull with an SQL92 expression evaluates it against each message's
 * properties (common/mq_sql.h); compiled expressions are cached per consumer group, topic and
 * expression text, so a pull does not compile again. At most BRK_FILTERS_MAX entries and
 * BRK_FILTERS_MAX_BYTES of compiled expressions are kept: past either an arbitrary entry is
 * dropped (a pull still holding it keeps it alive).
 *
 * Thread-safe (one internal mutex); entries are reference-counted.
 */
#ifndef MQ_BROKER_FILTERS_H
#define MQ_BROKER_FILTERS_H

#include <stddef.h>

#define BRK_FILTERS_MAX       1024
#define BRK_FILTERS_MAX_BYTES ((size_t)16 << 20) /* a compiled 4 KiB expression: up to ~200 KiB */

struct brk_filters;
struct brk_filter; /* one cached expression */
struct mq_sql;

int brk_filters_new(struct brk_filters **out);
/* Frees the cache; entries still referenced live until their brk_filters_put. NULL is a no-op. */
void brk_filters_free(struct brk_filters *f);

/* The entry of expr for (group, topic), compiled now if it is not cached. Returns 0 with *out
 * (a reference: release it with brk_filters_put), or mq_sql_compile's error with its message in
 * err (failures are not cached). */
int brk_filters_get(struct brk_filters *f, const char *group, const char *topic, const char *expr,
                    struct brk_filter **out, char *err, size_t errlen);
/* The compiled expression of an entry, valid until the reference is put back. */
const struct mq_sql *brk_filter_sql(const struct brk_filter *e);
/* The number of entries cached and the bytes they hold (keys and compiled expressions). */
void brk_filters_usage(struct brk_filters *f, size_t *entries, size_t *bytes);
/* Drops a reference taken by brk_filters_get. NULL is a no-op. */
void brk_filters_put(struct brk_filters *f, struct brk_filter *e);

#endif

/* mq_sql.h — RocketMQ's SQL92 message selector (the broker's property filter, RocketMQ's
 * org.apache.rocketmq.filter: SelectorParser.jj and its expression classes): an expression such
 * as "a IS NOT NULL AND a BETWEEN 1 AND 3" is compiled once and then evaluated against the
 * properties of each message (user properties and the system ones: TAGS, KEYS, ...). The
 * grammar, the types and the three-valued logic are described in docs/FORMATS.md ("SQL92
 * property filter").
 *
 * A compiled expression is immutable: evaluating it from many threads at once is safe. Input is
 * untrusted: the expression is at most MQ_SQL_MAX_LEN bytes and nests at most MQ_SQL_MAX_DEPTH
 * levels, so neither compiling nor evaluating recurses without bound.
 */
#ifndef MQ_SQL_H
#define MQ_SQL_H

#include <stddef.h>

#define MQ_SQL_MAX_LEN   4096 /* bytes of an expression */
#define MQ_SQL_MAX_DEPTH 64   /* nesting of parentheses, prefix operators and the tree */

struct mq_sql;

/* Compiles expr (len bytes, need not be NUL-terminated). Returns 0 with *out (free with
 * mq_sql_free), -EINVAL for an expression RocketMQ would refuse (syntax error, a comparison it
 * rejects at compile time, a bad literal), -E2BIG when it is longer or deeper than the limits,
 * -ENOMEM. On -EINVAL and -E2BIG, err (errlen bytes, may be NULL) receives a one-line message
 * starting with RocketMQ's "Invalid MessageSelector. " and saying what and where. */
int mq_sql_compile(const char *expr, size_t len, struct mq_sql **out, char *err, size_t errlen);
/* The bytes a compiled expression holds (for a cache's bound): at most some 200 KiB, for a
 * 4096-byte expression of the smallest terms. */
size_t mq_sql_bytes(const struct mq_sql *q);
/* mq_sql_free(NULL) is a no-op. */
void mq_sql_free(struct mq_sql *q);

/* The value of an expression for one message. RocketMQ delivers a message only on TRUE: NULL
 * (unknown: a missing property in a comparison) and ERROR (a property that does not convert to
 * the number it is compared with; RocketMQ's evaluation throws and the message is not matched)
 * both filter it out. */
enum mq_sql_result { MQ_SQL_FALSE = 0, MQ_SQL_TRUE = 1, MQ_SQL_NULL = 2, MQ_SQL_ERROR = 3 };

/* Looks up a property by name (NUL-terminated): 0 with (*val, *vlen) valid until the evaluation
 * returns, or non-zero when the message has no such property. */
typedef int (*mq_sql_get_fn)(void *arg, const char *name, const char **val, size_t *vlen);

enum mq_sql_result mq_sql_eval(const struct mq_sql *q, mq_sql_get_fn get, void *arg);
/* Whether a message whose PROPERTIES field is props (len bytes, `name\x01value\x02`...) is
 * matched: 1 when the expression is TRUE, else 0. */
int mq_sql_match_props(const struct mq_sql *q, const char *props, size_t len);
/* As mq_sql_match_props, adding to *work the bytes the evaluation went through (the properties,
 * and each value a CONTAINS-like operator searched), so that a caller can bound the work of
 * many evaluations: one message costs up to some 4096 searches of a 32 KiB value. */
int mq_sql_match_props_work(const struct mq_sql *q, const char *props, size_t len, size_t *work);

#endif

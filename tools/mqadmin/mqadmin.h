/* mqadmin.h — what mqadmin's files share: the parsed command line, the subcommand functions
 * (one table in main.c), output (one JSON value per command, rendered as human tables or, with
 * --json, as JSON: output.c) and broker target resolution (targets.c). */
#ifndef MQ_ADMIN_TOOL_H
#define MQ_ADMIN_TOOL_H

#include <jansson.h>
#include <stddef.h>

#include "client/mqclient.h"

/* Exit codes. */
enum { ADM_OK = 0, ADM_FAIL = 1, ADM_USAGE = 2 };

struct adm {
    const char *name;        /* the subcommand */
    const char *opt[128];    /* option letter -> value (borrowed from argv), NULL when absent */
    int json;                /* --json */
    const char *namesrv;     /* -n, else $NAMESRV_ADDR, else 127.0.0.1:9876 */
    struct mqc_admin *admin; /* opened before the subcommand runs; freed by main */
};

/* A subcommand: name, the option letters it takes (each with a value), the letters it
 * requires, a synopsis, a one-line summary, option help, and the function. */
struct adm_cmd {
    const char *name;
    const char *opts;
    const char *required;
    const char *synopsis;
    const char *summary;
    const char *options_help;
    int (*fn)(struct adm *a);
};

/* Option accessors. adm_int parses a decimal value (def when absent); on a bad number it
 * prints an error and returns -1 with *ok = 0. */
const char *adm_opt(const struct adm *a, char letter);
long long adm_int(const struct adm *a, char letter, long long def, int *ok);

/* Prints "mqadmin <cmd>: <message>[: <strerror(err)>]" to stderr; returns ADM_FAIL. */
int adm_fail(const struct adm *a, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for usage errors; returns ADM_USAGE. */
int adm_usage_error(const struct adm *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints `result` (stolen) as JSON with --json, else as text: an array of objects is a table
 * (one column per key of the first object, headers "#key"), an array of scalars one value per
 * line, an object its scalar members as "key: value" lines followed by its array members as
 * tables. Returns `rc` for chaining. */
int adm_emit(const struct adm *a, json_t *result, int rc);

/* A message as a JSON object (ids, queue, offsets, tags, keys, times, body as text when it is
 * UTF-8, else "hex:..."). */
json_t *adm_msg_json(const struct mqc_msg *m);
/* "yyyy-MM-dd HH:mm:ss,SSS" local time of ms (0 -> "-"), into buf. */
const char *adm_time(long long ms, char buf[32]);

/* The masters to act on: -b ADDR (one broker) or -c CLUSTER (every master of the cluster, from
 * GET_BROKER_CLUSTER_INFO). On 0 *out is malloc'd (free it) with *n >= 1; otherwise an error
 * was printed and the exit code is returned. */
int adm_targets(struct adm *a, struct mqc_broker_info **out, size_t *n);
/* Runs op(a, addr, arg) on every target (adm_targets) and appends one row per broker to *rows
 * (created here): "<key>" = the broker name, "addr", the fields of `row` (may be NULL) and
 * "result" ("success" or the error), printing "<what> on <addr>: <error>" for each failure.
 * Returns ADM_OK, ADM_FAIL when an op failed, or adm_targets' exit code (then *rows is NULL). */
int adm_each_target(struct adm *a, int (*op)(struct adm *a, const char *addr, void *arg), void *arg,
                    const char *what, const char *key, const json_t *row, json_t **rows);

/* Subcommands (cmd_topic.c, cmd_cluster.c, cmd_message.c). */
int adm_update_topic(struct adm *a);
int adm_delete_topic(struct adm *a);
int adm_topic_list(struct adm *a);
int adm_topic_route(struct adm *a);
int adm_topic_status(struct adm *a);
int adm_cluster_list(struct adm *a);
int adm_broker_status(struct adm *a);
int adm_update_sub_group(struct adm *a);
int adm_delete_sub_group(struct adm *a);
int adm_consumer_progress(struct adm *a);
int adm_consumer_connection(struct adm *a);
int adm_send_message(struct adm *a);
int adm_consume_message(struct adm *a);
int adm_query_msg_by_key(struct adm *a);
int adm_query_msg_by_id(struct adm *a);

#endif

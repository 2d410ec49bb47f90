/* mq_conf.h — configuration as one table of keys per daemon (redis config.c, nginx
 * ngx_command_t): each key has a type, a default, bounds and the offset of its field in the
 * daemon's config struct. Files use RocketMQ's broker.conf format (Java properties: `key=value`
 * lines, `#` or `!` comments), with RocketMQ's key names.
 */
#ifndef MQ_CONF_H
#define MQ_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum mq_conf_type {
    MQ_CONF_INT,   /* int field; bounds min..max */
    MQ_CONF_INT64, /* int64_t field; bounds min..max */
    MQ_CONF_BOOL,  /* int field, 0 or 1; text "true"/"false" */
    MQ_CONF_STR,   /* char[size] field */
};

struct mq_conf_key {
    const char *name;
    enum mq_conf_type type;
    size_t offset;   /* offsetof(config struct, field) */
    size_t size;     /* MQ_CONF_STR: sizeof the char array */
    const char *def; /* default, as it would be written in the file */
    int64_t min, max;
    const char *help;
};

/* Sets every field of obj to its key's default. Returns 0, or -EINVAL if a default is bad. */
int mq_conf_defaults(const struct mq_conf_key *keys, size_t n, void *obj);

/* Sets one key from text. Returns 0, -ENOENT (unknown key) or -EINVAL (bad value or out of
 * bounds); on error writes a message naming the key into err. */
int mq_conf_set(const struct mq_conf_key *keys, size_t n, void *obj, const char *name,
                const char *value, char *err, size_t errlen);

/* Loads a properties file. Unknown keys are logged and ignored (RocketMQ does the same); a bad
 * value is an error. Returns 0, -errno if the file cannot be read, or -EINVAL. */
int mq_conf_load(const struct mq_conf_key *keys, size_t n, void *obj, const char *path, char *err,
                 size_t errlen);

/* Writes every key as `name=value` lines (with its help as a comment when verbose). */
void mq_conf_dump(const struct mq_conf_key *keys, size_t n, const void *obj, FILE *out,
                  int verbose);

#endif

/* mq_conf.c — table-driven configuration (see mq_conf.h). */
#include "common/mq_conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_log.h"

static const struct mq_conf_key *find_key(const struct mq_conf_key *keys, size_t n,
                                          const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int set_value(const struct mq_conf_key *k, void *obj, const char *value, char *err,
                     size_t errlen)
{
    char *field = (char *)obj + k->offset;
    switch (k->type) {
    case MQ_CONF_INT:
    case MQ_CONF_INT64: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0') {
            snprintf(err, errlen, "%s: not an integer: '%s'", k->name, value);
            return -EINVAL;
        }
        if (v < k->min || v > k->max) {
            snprintf(err, errlen, "%s: %lld is outside %" PRId64 "..%" PRId64, k->name, v, k->min,
                     k->max);
            return -EINVAL;
        }
        if (k->type == MQ_CONF_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = (int64_t)v;
        return 0;
    }
    case MQ_CONF_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            *(int *)field = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            *(int *)field = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", k->name, value);
            return -EINVAL;
        }
        return 0;
    case MQ_CONF_STR:
        if (strlen(value) >= k->size) {
            snprintf(err, errlen, "%s: value longer than %zu characters", k->name, k->size - 1);
            return -EINVAL;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }
    return -EINVAL;
}

int mq_conf_defaults(const struct mq_conf_key *keys, size_t n, void *obj)
{
    char err[256];
    for (size_t i = 0; i < n; i++) {
        int rc = set_value(&keys[i], obj, keys[i].def, err, sizeof(err));
        if (rc) {
            mq_error("bad default: %s", err);
            return rc;
        }
    }
    return 0;
}

int mq_conf_set(const struct mq_conf_key *keys, size_t n, void *obj, const char *name,
                const char *value, char *err, size_t errlen)
{
    const struct mq_conf_key *k = find_key(keys, n, name);
    if (!k) {
        snprintf(err, errlen, "unknown configuration key '%s'", name);
        return -ENOENT;
    }
    return set_value(k, obj, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int mq_conf_load(const struct mq_conf_key *keys, size_t n, void *obj, const char *path, char *err,
                 size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == '!')
            continue;
        char *eq = strpbrk(s, "=:");
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key=value", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        char msg[512];
        int r = mq_conf_set(keys, n, obj, name, value, msg, sizeof(msg));
        if (r == -ENOENT) {
            mq_warn("%s:%d: ignoring unknown key '%s'", path, lineno, name);
        } else if (r) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = r;
            break;
        }
    }
    fclose(f);
    return rc;
}

void mq_conf_dump(const struct mq_conf_key *keys, size_t n, const void *obj, FILE *out, int verbose)
{
    for (size_t i = 0; i < n; i++) {
        const struct mq_conf_key *k = &keys[i];
        const char *field = (const char *)obj + k->offset;
        if (verbose && k->help)
            fprintf(out, "# %s (default %s)\n", k->help, k->def);
        switch (k->type) {
        case MQ_CONF_INT:
            fprintf(out, "%s=%d\n", k->name, *(const int *)field);
            break;
        case MQ_CONF_INT64:
            fprintf(out, "%s=%" PRId64 "\n", k->name, *(const int64_t *)field);
            break;
        case MQ_CONF_BOOL:
            fprintf(out, "%s=%s\n", k->name, *(const int *)field ? "true" : "false");
            break;
        case MQ_CONF_STR:
            fprintf(out, "%s=%s\n", k->name, field);
            break;
        }
    }
}

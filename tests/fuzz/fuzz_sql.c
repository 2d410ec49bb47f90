/* fuzz_sql.c — libFuzzer target for the SQL92 selector (common/mq_sql.c, mq_sql_eval.c): the
 * input is an expression from a client's subscription, then (after a NUL byte, if any) a
 * message's properties as name\1value\2 pairs. Compiling must succeed or fail with -EINVAL /
 * -E2BIG and a message; a compiled expression must evaluate to one of the four results against
 * those properties and against none, without reading outside the input or recursing deeply,
 * and the broker's one-pass property lookup must agree with a plain scan per reference.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_msg.h"
#include "common/mq_sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_props(void *arg, const char *name, const char **val, size_t *vlen)
{
    (void)arg, (void)name, (void)val, (void)vlen;
    return -1;
}

struct last {
    const char *props, *name, *val;
    size_t len, vlen;
    int found;
};

static int last_cb(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    struct last *l = arg;
    if (strlen(l->name) == nlen && memcmp(name, l->name, nlen) == 0)
        l->val = val, l->vlen = vlen, l->found = 1;
    return 0;
}

/* The reference lookup: a scan of the properties per reference, the last of a name winning. */
static int last_get(void *arg, const char *name, const char **val, size_t *vlen)
{
    struct last *l = arg;
    l->name = name;
    l->found = 0;
    (void)mq_props_foreach(l->props, l->len, last_cb, l);
    *val = l->val;
    *vlen = l->vlen;
    return l->found ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    size_t elen = nul ? (size_t)(nul - in) : size;
    struct mq_sql *q = NULL;
    char err[200];
    int rc = mq_sql_compile(in, elen, &q, err, sizeof(err));
    if (rc != 0 && rc != -EINVAL && rc != -E2BIG && rc != -ENOMEM)
        abort();
    if (rc == -EINVAL || rc == -E2BIG) {
        if (strncmp(err, "Invalid MessageSelector. ", 25) != 0 || q)
            abort();
        return 0;
    }
    if (rc)
        return 0;
    enum mq_sql_result r = mq_sql_eval(q, no_props, NULL);
    if (r != MQ_SQL_TRUE && r != MQ_SQL_FALSE && r != MQ_SQL_NULL && r != MQ_SQL_ERROR)
        abort();
    if (nul) {
        const char *props = nul + 1;
        size_t plen = size - elen - 1;
        if (mq_props_check(props, plen) == 0) { /* what a stored record's properties are */
            /* the one-pass lookup answers as the reference does */
            struct last l = {.props = props, .len = plen};
            if (mq_sql_match_props(q, props, plen) != (mq_sql_eval(q, last_get, &l) == MQ_SQL_TRUE))
                abort();
        }
    }
    mq_sql_free(q);
    return 0;
}

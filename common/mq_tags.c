/* mq_tags.c — tag subscription expressions (see mq_tags.h). */
#include "common/mq_tags.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_util.h"

int64_t mq_tags_code(const char *tag, size_t len)
{
    return (tag && len) ? (int64_t)mq_java_hash(tag, len) : 0;
}

void mq_tags_destroy(struct mq_tags *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->tags[i]);
    memset(t, 0, sizeof(*t));
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int mq_tags_parse(const char *expr, struct mq_tags *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = expr ? expr : "";
    while (is_space(*p))
        p++;
    if (*p == '\0' || (p[0] == '*' && p[1 + strspn(p + 1, " \t\r\n")] == '\0')) {
        out->all = 1;
        return 0;
    }
    while (*p) {
        const char *sep = strstr(p, "||");
        const char *end = sep ? sep : p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        if (e > s) {
            if (out->n == MQ_TAGS_MAX) {
                mq_tags_destroy(out);
                return -EINVAL;
            }
            char *tag = strndup(s, (size_t)(e - s));
            if (!tag) {
                mq_tags_destroy(out);
                return -ENOMEM;
            }
            out->tags[out->n] = tag;
            out->codes[out->n] = mq_tags_code(tag, (size_t)(e - s));
            out->n++;
        }
        p = sep ? sep + 2 : end;
    }
    if (out->n == 0)
        out->all = 1; /* "||" alone: RocketMQ keeps no tags, which means everything */
    return 0;
}

int mq_tags_match_code(const struct mq_tags *t, int64_t code)
{
    if (t->all)
        return 1;
    for (size_t i = 0; i < t->n; i++)
        if (t->codes[i] == code)
            return 1;
    return 0;
}

int mq_tags_match(const struct mq_tags *t, const char *tag, size_t len)
{
    if (t->all)
        return 1;
    if (!tag)
        return 0;
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->tags[i]) == len && memcmp(t->tags[i], tag, len) == 0)
            return 1;
    return 0;
}

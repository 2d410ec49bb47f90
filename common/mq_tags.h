/* mq_tags.h — RocketMQ tag subscriptions: the expression "TagA || TagB" (or "*" / "" for
 * everything), parsed into tags and their Java hash codes. The broker filters consume-queue
 * entries by hash (tagsCode); clients re-check the exact strings, since hashes collide. */
#ifndef MQ_TAGS_H
#define MQ_TAGS_H

#include <stddef.h>
#include <stdint.h>

#define MQ_TAGS_MAX 64

struct mq_tags {
    int all; /* "*" or empty: every message matches */
    size_t n;
    char *tags[MQ_TAGS_MAX]; /* owned; NUL-terminated, trimmed */
    int64_t codes[MQ_TAGS_MAX];
};

/* Parses an expression (RocketMQ's FilterAPI.buildSubscriptionData: split on "||", trim,
 * drop empty parts). Returns 0, -EINVAL (more than MQ_TAGS_MAX tags) or -ENOMEM. */
int mq_tags_parse(const char *expr, struct mq_tags *out);
void mq_tags_destroy(struct mq_tags *t);
/* The consume-queue tagsCode of a message's TAGS property: Java hashCode, 0 when none. */
int64_t mq_tags_code(const char *tag, size_t len);
/* Whether a message with that tagsCode may match (the broker's check). */
int mq_tags_match_code(const struct mq_tags *t, int64_t code);
/* Whether a message with that exact tag matches (the client's re-check). tag may be NULL. */
int mq_tags_match(const struct mq_tags *t, const char *tag, size_t len);

#endif

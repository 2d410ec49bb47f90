/* meta_topics.c — topic configs and subscription groups: RocketMQ's TopicConfig and
 * SubscriptionGroupConfig records over the generic persistent table (meta_table.c). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "broker/meta_int.h"
#include "common/mq_log.h"

_Static_assert(offsetof(struct brk_topic, name) == 0, "records sort by their leading name");
_Static_assert(offsetof(struct brk_group, name) == 0, "records sort by their leading name");

static void copy_name(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= BRK_NAME_MAX)
        n = BRK_NAME_MAX - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int count_ok(int n)
{
    return n >= 0 && n <= BRK_MAX_QUEUES;
}

/* A queue count from a file: -1 when missing or negative (a bad entry); above BRK_MAX_QUEUES
 * (older versions let a group's retryQueueNums through unchecked) it is clamped, with a
 * warning, so the entry survives and its first BRK_MAX_QUEUES queues stay readable. */
static int load_count(const char *name, json_t *obj, const char *key, int64_t def)
{
    int64_t n = meta_json_int(obj, key, def);
    if (n < 0)
        return -1;
    if (n > BRK_MAX_QUEUES) {
        mq_warn("'%s': %s %lld is over %d; using %d", name, key, (long long)n, BRK_MAX_QUEUES,
                BRK_MAX_QUEUES);
        return BRK_MAX_QUEUES;
    }
    return (int)n;
}

/* TopicConfig JSON: topicName, readQueueNums, writeQueueNums, perm, topicFilterType,
 * topicSysFlag, order. */
static json_t *topic_encode(const void *rec)
{
    const struct brk_topic *t = rec;
    return json_pack("{s:s, s:i, s:i, s:i, s:s, s:i, s:b}", "topicName", t->name, "readQueueNums",
                     t->read_queues, "writeQueueNums", t->write_queues, "perm", t->perm,
                     "topicFilterType", "SINGLE_TAG", "topicSysFlag", t->sysflag, "order",
                     t->order);
}

static int topic_decode(const char *name, json_t *obj, void *rec)
{
    struct brk_topic *t = rec;
    copy_name(t->name, name);
    t->read_queues = load_count(name, obj, "readQueueNums", -1);
    t->write_queues = load_count(name, obj, "writeQueueNums", -1);
    t->perm = (int)meta_json_int(obj, "perm", BRK_PERM_READ | BRK_PERM_WRITE);
    t->sysflag = (int)meta_json_int(obj, "topicSysFlag", 0);
    t->order = meta_json_bool(obj, "order", 0);
    if (t->read_queues < 0 || t->write_queues < 0)
        return -EBADMSG;
    return 0;
}

static const struct meta_kind topic_kind = {sizeof(struct brk_topic), "topicConfigTable",
                                            topic_encode, topic_decode};

int brk_topics_open(const char *path, struct brk_topics **out)
{
    return meta_table_open(path, &topic_kind, (struct meta_table **)out);
}
void brk_topics_close(struct brk_topics *t)
{
    meta_table_close((struct meta_table *)t);
}
int brk_topics_get(struct brk_topics *t, const char *name, struct brk_topic *out)
{
    return meta_table_get((struct meta_table *)t, name, out);
}
int brk_topics_put(struct brk_topics *t, const struct brk_topic *cfg)
{
    if (!count_ok(cfg->read_queues) || !count_ok(cfg->write_queues))
        return -EINVAL;
    return meta_table_put((struct meta_table *)t, cfg->name, cfg);
}
int brk_topics_delete(struct brk_topics *t, const char *name)
{
    return meta_table_delete((struct meta_table *)t, name);
}
int brk_topics_list(struct brk_topics *t, struct brk_topic **out, size_t *n)
{
    return meta_table_list((struct meta_table *)t, (void **)out, n);
}
struct brk_data_version brk_topics_version(struct brk_topics *t)
{
    return meta_table_version((struct meta_table *)t);
}
int brk_topics_to_json(struct brk_topics *t, struct mq_buf *out)
{
    return meta_table_to_json((struct meta_table *)t, out);
}

/* SubscriptionGroupConfig JSON. */
static json_t *group_encode(const void *rec)
{
    const struct brk_group *g = rec;
    return json_pack("{s:s, s:b, s:b, s:b, s:i, s:i, s:I, s:I, s:b}", "groupName", g->name,
                     "consumeEnable", g->consume_enable, "consumeFromMinEnable",
                     g->consume_from_min_enable, "consumeBroadcastEnable",
                     g->consume_broadcast_enable, "retryQueueNums", g->retry_queue_nums,
                     "retryMaxTimes", g->retry_max_times, "brokerId", (json_int_t)g->broker_id,
                     "whichBrokerWhenConsumeSlowly",
                     (json_int_t)g->which_broker_when_consume_slowly,
                     "notifyConsumerIdsChangedEnable", g->notify_consumer_ids_changed_enable);
}

void brk_group_defaults(struct brk_group *g, const char *name)
{
    memset(g, 0, sizeof(*g));
    copy_name(g->name, name);
    g->consume_enable = 1;
    g->consume_from_min_enable = 1;
    g->consume_broadcast_enable = 1;
    g->retry_queue_nums = 1;
    g->retry_max_times = 16;
    g->broker_id = 0;
    g->which_broker_when_consume_slowly = 1;
    g->notify_consumer_ids_changed_enable = 1;
}

static int group_decode(const char *name, json_t *obj, void *rec)
{
    struct brk_group *g = rec;
    brk_group_defaults(g, name);
    g->consume_enable = meta_json_bool(obj, "consumeEnable", 1);
    g->consume_from_min_enable = meta_json_bool(obj, "consumeFromMinEnable", 1);
    g->consume_broadcast_enable = meta_json_bool(obj, "consumeBroadcastEnable", 1);
    g->retry_queue_nums = load_count(name, obj, "retryQueueNums", 1);
    int64_t max_times = meta_json_int(obj, "retryMaxTimes", 16);
    g->retry_max_times = max_times > INT32_MAX ? INT32_MAX : (int)max_times;
    g->broker_id = meta_json_int(obj, "brokerId", 0);
    g->which_broker_when_consume_slowly = meta_json_int(obj, "whichBrokerWhenConsumeSlowly", 1);
    g->notify_consumer_ids_changed_enable =
        meta_json_bool(obj, "notifyConsumerIdsChangedEnable", 1);
    if (g->retry_queue_nums < 0 || max_times < 0)
        return -EBADMSG;
    return 0;
}

static const struct meta_kind group_kind = {sizeof(struct brk_group), "subscriptionGroupTable",
                                            group_encode, group_decode};

int brk_groups_open(const char *path, struct brk_groups **out)
{
    return meta_table_open(path, &group_kind, (struct meta_table **)out);
}
void brk_groups_close(struct brk_groups *g)
{
    meta_table_close((struct meta_table *)g);
}
int brk_groups_get(struct brk_groups *g, const char *name, struct brk_group *out)
{
    return meta_table_get((struct meta_table *)g, name, out);
}
static int group_ok(const struct brk_group *cfg)
{
    return count_ok(cfg->retry_queue_nums) && cfg->retry_max_times >= 0;
}
int brk_groups_put(struct brk_groups *g, const struct brk_group *cfg)
{
    return group_ok(cfg) ? meta_table_put((struct meta_table *)g, cfg->name, cfg) : -EINVAL;
}
int brk_groups_put_later(struct brk_groups *g, const struct brk_group *cfg)
{
    return group_ok(cfg) ? meta_table_put_later((struct meta_table *)g, cfg->name, cfg) : -EINVAL;
}
int brk_groups_flush(struct brk_groups *g)
{
    return meta_table_flush((struct meta_table *)g);
}
int brk_groups_delete(struct brk_groups *g, const char *name)
{
    return meta_table_delete((struct meta_table *)g, name);
}
int brk_groups_list(struct brk_groups *g, struct brk_group **out, size_t *n)
{
    return meta_table_list((struct meta_table *)g, (void **)out, n);
}
int brk_groups_to_json(struct brk_groups *g, struct mq_buf *out)
{
    return meta_table_to_json((struct meta_table *)g, out);
}

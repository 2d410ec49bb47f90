/* meta.h — the broker's persistent metadata: topic configs (config/topics.json), subscription
 * groups (config/subscriptionGroup.json) and consumer offsets (config/consumerOffset.json),
 * in RocketMQ's JSON layouts (docs/FORMATS.md, "Broker config files").
 *
 * Each table is safe to use from any thread (an internal lock); lookups copy records out, so
 * nothing returned points into the table. Changes bump the table's data version (topics and
 * groups) and are written to disk atomically (temp file, fsync, rename): topics and groups at
 * once, offsets by brk_offsets_persist() (the broker calls it every 5 s and at shutdown).
 */
#ifndef MQ_BROKER_META_H
#define MQ_BROKER_META_H

#include <stddef.h>
#include <stdint.h>

struct mq_buf;

#define BRK_NAME_MAX 128

/* The most queues a topic may have, and so the most retry queues a group may ask for: every
 * request that sets a queue count (UPDATE_AND_CREATE_TOPIC, a subscription group's
 * retryQueueNums, auto-creation in sends and heartbeats) is held to it, brk_topics_put and
 * brk_groups_put refuse anything above it, and loading clamps larger values from older files to
 * it, so handlers that loop over a topic's queues do at most this many steps. RocketMQ itself
 * has no such limit; defaultTopicQueueNums and mqfs' -o queues share this one. */
#define BRK_MAX_QUEUES 1024

/* RocketMQ PermName bits. */
enum { BRK_PERM_INHERIT = 1, BRK_PERM_WRITE = 2, BRK_PERM_READ = 4 };

/* RocketMQ's DataVersion: changes whenever the table changes; the NameServer rebuilds routes
 * only when a broker registers with a new one. */
struct brk_data_version {
    int64_t timestamp;
    int64_t counter;
};

/* Reads one of the config/ JSON files (RocketMQ's layouts; fastjson's bare integer keys are
 * read too). Returns 0 with *root (NULL when the file does not exist), -EBADMSG when it does
 * not parse (logged: the caller must not write over it), or -errno. */
struct json_t;
int brk_meta_load_json(const char *path, size_t max, struct json_t **root);

/* ---- topics (TopicConfig) ---- */
struct brk_topic {
    char name[BRK_NAME_MAX];
    int read_queues;  /* 0..BRK_MAX_QUEUES */
    int write_queues; /* 0..BRK_MAX_QUEUES */
    int perm;
    int sysflag;
    int order;
};

struct brk_topics;
/* Loads path if it exists (else starts empty). Returns 0, -EBADMSG (unparsable file; nothing
 * is overwritten) or -errno. */
int brk_topics_open(const char *path, struct brk_topics **out);
void brk_topics_close(struct brk_topics *t);
/* Copies the topic's config to out. Returns 0 or -ENOENT. */
int brk_topics_get(struct brk_topics *t, const char *name, struct brk_topic *out);
/* Creates or replaces a topic, bumps the version, persists. Returns 0, -EINVAL (a queue count
 * outside 0..BRK_MAX_QUEUES: nothing is written that loading would not take back) or -errno. */
int brk_topics_put(struct brk_topics *t, const struct brk_topic *cfg);
/* Removes a topic, bumps the version, persists. Returns 0 or -ENOENT. */
int brk_topics_delete(struct brk_topics *t, const char *name);
/* A snapshot of every topic: *out is malloc'd (caller frees), sorted by name. */
int brk_topics_list(struct brk_topics *t, struct brk_topic **out, size_t *n);
struct brk_data_version brk_topics_version(struct brk_topics *t);
/* Appends RocketMQ's TopicConfigSerializeWrapper JSON ({"topicConfigTable":{...},
 * "dataVersion":{...}}), the body of REGISTER_BROKER and GET_ALL_TOPIC_CONFIG. */
int brk_topics_to_json(struct brk_topics *t, struct mq_buf *out);

/* ---- subscription groups (SubscriptionGroupConfig) ---- */
struct brk_group {
    char name[BRK_NAME_MAX];
    int consume_enable;
    int consume_from_min_enable;
    int consume_broadcast_enable;
    int retry_queue_nums; /* 0..BRK_MAX_QUEUES; 0 gets a retry topic of 1 queue */
    int retry_max_times;
    int64_t broker_id;
    int64_t which_broker_when_consume_slowly;
    int notify_consumer_ids_changed_enable;
};

struct brk_groups;
int brk_groups_open(const char *path, struct brk_groups **out);
void brk_groups_close(struct brk_groups *g);
int brk_groups_get(struct brk_groups *g, const char *name, struct brk_group *out);
/* Creates or replaces a group and persists. Returns 0, -EINVAL (retry_queue_nums outside
 * 0..BRK_MAX_QUEUES, or retry_max_times < 0) or -errno. */
int brk_groups_put(struct brk_groups *g, const struct brk_group *cfg);
/* As brk_groups_put, but written by the next brk_groups_flush (the broker's timer, every 5 s,
 * and its stop): for groups made on a client's request (autoCreateSubscriptionGroup), which a
 * crash before the write only makes again with the same defaults. A client inventing group
 * names then costs no file write and sync each (they held every lookup for up to 0.1 s). */
int brk_groups_put_later(struct brk_groups *g, const struct brk_group *cfg);
int brk_groups_flush(struct brk_groups *g);
int brk_groups_delete(struct brk_groups *g, const char *name);
int brk_groups_list(struct brk_groups *g, struct brk_group **out, size_t *n);
/* RocketMQ's defaults for a new group (consume enabled, 1 retry queue, 16 retries, ...). */
void brk_group_defaults(struct brk_group *cfg, const char *name);
int brk_groups_to_json(struct brk_groups *g, struct mq_buf *out);

/* ---- consumer offsets (ConsumerOffsetManager: "topic@group" -> queueId -> offset) ---- */
struct brk_offsets;
int brk_offsets_open(const char *path, struct brk_offsets **out);
/* Persists (if changed) and frees. */
void brk_offsets_close(struct brk_offsets *o);
/* Records the group's next offset to consume in a queue. Returns 0, -EINVAL (queue id outside
 * 0..65535 or offset < 0) or -ENOMEM. */
int brk_offsets_commit(struct brk_offsets *o, const char *group, const char *topic, int queue_id,
                       int64_t offset);
/* The committed offset, or -1 when the group never committed one for that queue. */
int64_t brk_offsets_query(struct brk_offsets *o, const char *group, const char *topic,
                          int queue_id);
/* The topics the group has committed offsets for (ConsumerOffsetManager.whichTopicByConsumer):
 * *out is malloc'd (caller frees), *n names. Returns 0 or -ENOMEM. */
int brk_offsets_topics(struct brk_offsets *o, const char *group, char (**out)[BRK_NAME_MAX],
                       size_t *n);
/* The groups that have committed offsets for the topic (whichGroupByTopic); as
 * brk_offsets_topics. */
int brk_offsets_groups(struct brk_offsets *o, const char *topic, char (**out)[BRK_NAME_MAX],
                       size_t *n);
/* Drops every group's offsets for a topic (topic deletion). */
void brk_offsets_delete_topic(struct brk_offsets *o, const char *topic);
/* Drops every offset of a consumer group (DELETE_SUBSCRIPTIONGROUP with cleanOffset). */
void brk_offsets_delete_group(struct brk_offsets *o, const char *group);
/* Writes the file if anything changed since the last write. Returns 0 or -errno. */
int brk_offsets_persist(struct brk_offsets *o);

#endif

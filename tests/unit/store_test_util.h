/* store_test_util.h — helpers shared by the store's test executables: temp directories, a small
 * store configuration, a store opened on both, and message construction. Header-only (static). */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mq_msg.h"
#include "store/store.h"
#include "store/store_io.h"

static inline char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p = malloc(512);
    snprintf(p, 512, "%s/mq_store_testXXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        exit(1);
    }
    return p;
}

static inline void tu_rmrf(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(dir);
}

static inline void tu_config(struct store_config *c, const char *dir, int64_t clog_size)
{
    store_config_defaults(c);
    snprintf(c->store_path_root_dir, sizeof(c->store_path_root_dir), "%s", dir);
    c->mapped_file_size_commit_log = clog_size;
    c->mapped_file_size_consume_queue = 20 * 1000;
    c->max_hash_slot_num = 1000;
    c->max_index_num = 4000;
    c->flush_interval_commit_log = 50;
    c->flush_interval_consume_queue = 100;
}

/* Sets the configuration tu_open opens a store with to flush synchronously (SYNC_FLUSH). */
static inline void tu_sync_flush(struct store_config *c)
{
    snprintf(c->flush_disk_type, sizeof(c->flush_disk_type), "SYNC_FLUSH");
}

/* Opens a store, with no arrival listener, over a new temp directory (*dir, set even when the
 * open fails: remove it with tu_close or tu_rmrf) with tu_config's small configuration and
 * clog_size-byte commitlog files, adjusted first by tweak (NULL: none). *c keeps the
 * configuration for reopening. Returns store_open's result. */
static inline int tu_open(int64_t clog_size, void (*tweak)(struct store_config *),
                          struct store_config *c, struct store **s, char **dir)
{
    *dir = tu_tmpdir();
    tu_config(c, *dir, clog_size);
    if (tweak)
        tweak(c);
    return store_open(c, NULL, NULL, s);
}

/* Closes a store tu_open opened and removes its directory. */
static inline void tu_close(struct store *s, char *dir)
{
    store_close(s);
    tu_rmrf(dir);
}

static inline struct mq_msg tu_msg(const char *topic, int qid, const void *body, uint32_t len,
                                   const char *props)
{
    struct mq_msg m;
    memset(&m, 0, sizeof(m));
    m.topic = topic;
    m.topic_len = (uint16_t)strlen(topic);
    m.queue_id = qid;
    m.body = body;
    m.body_len = len;
    m.props = props;
    m.props_len = props ? (uint16_t)strlen(props) : 0;
    m.born_ts = 1700000000000;
    m.born_host = (struct mq_host){0, {192, 168, 0, 1}, 5555};
    return m;
}

#endif

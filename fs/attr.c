/* attr.c — what each kind of node looks like to stat(): mode, and how long the kernel may
 * cache its attributes and its name (FUSE-NOTES "Freshness of sizes").
 *
 * Log files (topic/, queue/) report exact, growing sizes, asked from the broker at every
 * GETATTR (attribute timeout 0): `tail -f` polls fstat once a second and sees a new message at
 * its next poll. (Invalidating on arrival would let the kernel cache sizes longer; planned.)
 * Names of topics and groups can appear and vanish through other clients: names are cached
 * 1 s. The top-level entries never change.
 *
 * Times (docs/FS.md "Attributes"): a message view's st_mtime (and st_ctime, st_atime) is the
 * store time of the newest message it shows, learned from the same broker answer as the size
 * (MQFS_READ's lastStoreTimestamp; for a topic on several brokers MQFS_RENDER_AT_TIME's
 * prevStoreTimestamps); an empty one shows when this mount created the topic, else the mount
 * time, as do directories and the lookup files.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/mqfs_int.h"

#define DIR_MODE (S_IFDIR | 0755)
#define RW_MODE  (S_IFREG | 0644)
#define RO_MODE  (S_IFREG | 0444)

/* Indexed by enum mqfs_kind. */
static const struct mqfs_kind_info kinds[MQFS_KIND_COUNT] = {
    [MQFS_ROOT] = {DIR_MODE, 3600, 3600},
    [MQFS_DIR_TOPIC] = {DIR_MODE, 1, 3600},
    [MQFS_DIR_QUEUE] = {DIR_MODE, 1, 3600},
    [MQFS_DIR_GROUP] = {DIR_MODE, 1, 3600},
    [MQFS_DIR_KEY] = {DIR_MODE, 3600, 3600},
    [MQFS_DIR_BLOB] = {DIR_MODE, 3600, 3600},
    [MQFS_DIR_MSG] = {DIR_MODE, 3600, 3600},
    [MQFS_CLUSTER] = {RO_MODE, 1, 3600},
    [MQFS_TOPIC] = {RW_MODE, 0, 1},
    [MQFS_QUEUE_DIR] = {DIR_MODE, 1, 1},
    [MQFS_QUEUE] = {RO_MODE, 0, 1},
    [MQFS_GROUP_DIR] = {DIR_MODE, 1, 1},
    [MQFS_GROUP] = {RO_MODE, 1, 1},
    [MQFS_KEY_DIR] = {DIR_MODE, 1, 1},
    [MQFS_KEY] = {RW_MODE, 1, 1},
    [MQFS_BLOB_DIR] = {DIR_MODE, 1, 1},
    [MQFS_BLOB] = {RW_MODE, 1, 1},
    [MQFS_MSG] = {RO_MODE, 60, 1},
};

/* .json views are read-only whatever their kind; their times follow the messages (1 s). */
static const struct mqfs_kind_info json_file = {RO_MODE, 1, 1};

const struct mqfs_kind_info *mqfs__kind_info(const struct mqfs_node *n)
{
    if ((n->flags & MQFS_F_JSON) && !mqfs_kind_is_dir(n->kind))
        return &json_file;
    return &kinds[n->kind];
}

void mqfs__fill_attr(struct mqfs *fs, const struct mqfs_inode *in, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = in->ino;
    st->st_mode = mqfs__kind_info(&in->node)->mode;
    st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_blksize = MQFS_BLKSIZE;
    st->st_size = (off_t)in->size; /* 0 until the read paths report exact sizes */
    st->st_blocks = (blkcnt_t)((in->size + 511) / 512); /* du shows what a read would give */
    int64_t ms = in->mtime_ms;
    if (ms <= 0 && !S_ISDIR(st->st_mode) && in->node.topic[0]) {
        void *made = mq_map_get(&fs->created, in->node.topic); /* empty: made here, when */
        ms = made ? (int64_t)(uintptr_t)made : 0;
    }
    if (ms <= 0)
        ms = fs->started_ms;
    st->st_mtim.tv_sec = (time_t)(ms / 1000);
    st->st_mtim.tv_nsec = (long)(ms % 1000) * 1000000;
    /* Reading leaves no trace, and nothing but a message changes a view. */
    st->st_atim = st->st_ctim = st->st_mtim;
}

int mqfs__times_source(const struct mqfs_node *n, struct mqfs_node *src)
{
    if (n->kind != MQFS_TOPIC && n->kind != MQFS_QUEUE && n->kind != MQFS_GROUP)
        return 0;
    /* The log view of the same messages: a group file, a tag filter and a .json view take the
     * time of the topic's (or queue's) newest message. */
    memset(src, 0, sizeof(*src));
    src->kind = n->kind == MQFS_QUEUE ? MQFS_QUEUE : MQFS_TOPIC;
    src->queue_id = n->kind == MQFS_QUEUE ? n->queue_id : -1;
    memcpy(src->topic, n->topic, sizeof(src->topic));
    if (n->kind == MQFS_QUEUE)
        memcpy(src->broker, n->broker, sizeof(src->broker));
    return 1;
}

int mqfs__set_size(struct mqfs *fs, uint64_t ino, uint64_t size)
{
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *in = mqfs__inode_get(fs, ino);
    int changed = in && in->size != size;
    if (in)
        in->size = size;
    pthread_mutex_unlock(&fs->lock);
    if (!in)
        return -ENOENT;
    if (!changed || !fs->se)
        return 0;
    int rc = fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
    return rc == -ENOENT ? 0 : rc; /* the kernel no longer caches it: nothing to drop */
}

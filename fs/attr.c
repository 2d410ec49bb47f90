/* attr.c — what each kind of node looks like to stat(): mode, and how long the kernel may
 * cache its attributes and its name (FUSE-NOTES "Freshness of sizes").
 *
 * Log files (topic/, queue/) report exact, growing sizes, asked from the broker at every
 * GETATTR (attribute timeout 0): `tail -f` polls fstat once a second and sees a new message at
 * its next poll. (Invalidating on arrival would let the kernel cache sizes longer; planned.) Names of topics and
 * groups can appear and vanish through other clients: names are cached 1 s. The top-level
 * entries never change.
 */
#include <errno.h>
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

/* .json views are read-only whatever their kind. */
static const struct mqfs_kind_info json_file = {RO_MODE, 3600, 1};

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
    st->st_atime = st->st_mtime = st->st_ctime = fs->started_s;
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

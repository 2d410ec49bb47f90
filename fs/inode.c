/* inode.c — mqfs's inode table: one inode per canonical path the kernel knows, with a stable
 * number for as long as the kernel holds a reference (lookup count) or a file is open, so the
 * read paths can invalidate a topic's inodes by number when messages arrive. The root is inode
 * 1 (FUSE_ROOT_ID); inode numbers are never reused within a mount. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_log.h"
#include "fs/mqfs_int.h"

static void ino_key(uint64_t ino, char buf[24])
{
    snprintf(buf, 24, "%" PRIu64, ino);
}

static struct mqfs_inode *inode_add(struct mqfs *fs, const struct mqfs_node *n, const char *path)
{
    struct mqfs_inode *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    in->path = strdup(path);
    in->node = *n;
    in->ino = n->kind == MQFS_ROOT ? FUSE_ROOT_ID : fs->next_ino++;
    char key[24];
    ino_key(in->ino, key);
    if (!in->path || mq_map_put(&fs->by_path, path, in, NULL))
        goto fail;
    if (mq_map_put(&fs->by_ino, key, in, NULL)) {
        mq_map_del(&fs->by_path, path);
        goto fail;
    }
    return in;
fail:
    free(in->path);
    free(in);
    return NULL;
}

static void inode_free(struct mqfs *fs, struct mqfs_inode *in)
{
    char key[24];
    ino_key(in->ino, key);
    mq_map_del(&fs->by_ino, key);
    mq_map_del(&fs->by_path, in->path);
    free(in->path);
    free(in);
}

int mqfs__table_init(struct mqfs *fs)
{
    mq_map_init(&fs->by_path);
    mq_map_init(&fs->by_ino);
    fs->next_ino = FUSE_ROOT_ID + 1;
    struct mqfs_node root;
    mqfs_node_root(&root);
    struct mqfs_inode *in = inode_add(fs, &root, "");
    if (!in)
        return -ENOMEM;
    in->pinned = 1;
    /* The top-level entries get the next numbers, in listing order, and stay. */
    static const char *const top[] = {"topic", "queue", "group", "key", "blob", "msg", "cluster"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        struct mqfs_node n;
        if (mqfs_node_child(&root, top[i], strlen(top[i]), &n))
            return -EINVAL;
        if (!(in = inode_add(fs, &n, top[i])))
            return -ENOMEM;
        in->pinned = 1;
    }
    return 0;
}

void mqfs__table_destroy(struct mqfs *fs)
{
    size_t it = 0;
    void *v;
    while (mq_map_next(&fs->by_ino, &it, NULL, &v)) {
        struct mqfs_inode *in = v;
        free(in->path);
        free(in);
    }
    mq_map_destroy(&fs->by_ino);
    mq_map_destroy(&fs->by_path);
}

struct mqfs_inode *mqfs__inode_get(struct mqfs *fs, uint64_t ino)
{
    char key[24];
    ino_key(ino, key);
    return mq_map_get(&fs->by_ino, key);
}

struct mqfs_inode *mqfs__inode_ref(struct mqfs *fs, const struct mqfs_node *n, int lookup)
{
    char path[1024];
    if (mqfs_node_path(n, path, sizeof(path)) < 0)
        return NULL;
    struct mqfs_inode *in = mq_map_get(&fs->by_path, path);
    if (!in && !(in = inode_add(fs, n, path)))
        return NULL;
    if (lookup)
        in->nlookup++;
    return in;
}

static void maybe_free(struct mqfs *fs, struct mqfs_inode *in)
{
    if (!in->pinned && in->nlookup == 0 && in->nopen == 0)
        inode_free(fs, in);
}

void mqfs__inode_forget(struct mqfs *fs, struct mqfs_inode *in, uint64_t nlookup)
{
    if (nlookup > in->nlookup) {
        mq_warn("forget of %" PRIu64 " (%s) by %" PRIu64 " exceeds its %" PRIu64 " lookups",
                in->ino, in->path, nlookup, in->nlookup);
        nlookup = in->nlookup;
    }
    in->nlookup -= nlookup;
    maybe_free(fs, in);
}

void mqfs__inode_close(struct mqfs *fs, struct mqfs_inode *in)
{
    if (in->nopen > 0)
        in->nopen--;
    if (in->nopen == 0 && in->node.kind == MQFS_BLOB)
        in->size = 0; /* written and closed: a blob file reports 0 like every lookup file */
    maybe_free(fs, in);
}

void mqfs__inode_foreach(struct mqfs *fs, void (*fn)(struct mqfs_inode *in, void *arg), void *arg)
{
    size_t it = 0;
    void *v;
    while (mq_map_next(&fs->by_ino, &it, NULL, &v))
        fn(v, arg);
}

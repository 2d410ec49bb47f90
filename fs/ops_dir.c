/* ops_dir.c — the namespace ops: lookup/forget, getattr/setattr, directory listings, mkdir and
 * rmdir of consumer groups, unlink, rename and links (refused), statfs and extended attributes.
 *
 * Listings are snapshots taken at opendir (one NameServer round trip at most, from meta.c's
 * cache) and served by offset, so a listing is consistent however the kernel splits it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "fs/mqfs_int.h"

static struct mqfs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* A copy of the node of ino (so no lock is held while it is used). 0 or -ENOENT. */
static int node_of(struct mqfs *fs, fuse_ino_t ino, struct mqfs_node *out)
{
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *in = mqfs__inode_get(fs, ino);
    if (in)
        *out = in->node;
    pthread_mutex_unlock(&fs->lock);
    return in ? 0 : -ENOENT;
}

/* A message view's newest store time (and a log view's size), asked from the brokers: 1 when
 * the answer came, 0 when n is no message view, or the error (the last known values stand). */
static int view_times(struct mqfs *fs, const struct mqfs_node *n, uint64_t *size, int64_t *newest)
{
    struct mqfs_node src;
    if (!mqfs__times_source(n, &src))
        return 0;
    int rc = mqfs__log_view(n) ? mqfs__log_size(fs, &src, size, newest)
                               : mqfs__topic_newest(fs, &src, newest);
    return rc ? rc : 1;
}

/* Stores what view_times learned in the inode (lock held). */
static void set_times(struct mqfs_inode *in, uint64_t size, int64_t newest)
{
    if (mqfs__log_view(&in->node))
        in->size = size;
    in->mtime_ms = newest > 0 ? newest : 0;
}

static void reply_entry(fuse_req_t req, struct mqfs *fs, const struct mqfs_node *n, int timed,
                        uint64_t size, int64_t newest)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *in = mqfs__inode_ref(fs, n, 1);
    if (in && timed == 1)
        set_times(in, size, newest);
    if (in) {
        const struct mqfs_kind_info *ki = mqfs__kind_info(n);
        e.ino = in->ino;
        e.attr_timeout = ki->attr_timeout;
        e.entry_timeout = ki->entry_timeout;
        mqfs__fill_attr(fs, in, &e.attr);
    }
    pthread_mutex_unlock(&fs->lock);
    if (!in) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_entry(req, &e) != 0) { /* the kernel did not take the reference */
        pthread_mutex_lock(&fs->lock);
        mqfs__inode_forget(fs, in, 1);
        pthread_mutex_unlock(&fs->lock);
    }
}

void mqfs__reply_entry(fuse_req_t req, struct mqfs *fs, const struct mqfs_node *n)
{
    reply_entry(req, fs, n, 0, 0, 0);
}

/* The child named `name` of directory `parent`, parsed and (if exist) checked to exist. */
static int child_of(struct mqfs *fs, fuse_ino_t parent, const char *name, int exist,
                    struct mqfs_node *out)
{
    struct mqfs_node p;
    int rc = node_of(fs, parent, &p);
    if (rc == 0)
        rc = mqfs_node_child(&p, name, strlen(name), out);
    if (rc == 0 && exist)
        rc = mqfs__node_exists(fs, out);
    return rc;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    int rc = child_of(fs, parent, name, 1, &n);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    /* Views whose attributes the kernel keeps (group files, .json views: 1 s) carry their time
     * in the entry, or `ls -l` would show the stale one; the others are asked at each stat. */
    uint64_t size = 0;
    int64_t newest = -1;
    int timed = mqfs__kind_info(&n)->attr_timeout > 0 ? view_times(fs, &n, &size, &newest) : 0;
    reply_entry(req, fs, &n, timed, size, newest);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct mqfs *fs = fs_of(req);
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *in = mqfs__inode_get(fs, ino);
    if (in)
        mqfs__inode_forget(fs, in, nlookup);
    pthread_mutex_unlock(&fs->lock);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct mqfs *fs = fs_of(req);
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < count; i++) {
        struct mqfs_inode *in = mqfs__inode_get(fs, forgets[i].ino);
        if (in)
            mqfs__inode_forget(fs, in, forgets[i].nlookup);
    }
    pthread_mutex_unlock(&fs->lock);
    fuse_reply_none(req);
}

void mqfs__op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mqfs *fs = fs_of(req);
    struct stat st;
    double timeout = 0;
    /* Message views: ask the broker for the exact size of a log view and the newest message's
     * store time first, in one answer (not under the lock). */
    struct mqfs_node node;
    uint64_t size = 0;
    int64_t newest = -1;
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *in = mqfs__inode_get(fs, ino);
    if (in)
        node = in->node;
    pthread_mutex_unlock(&fs->lock);
    int timed = in ? view_times(fs, &node, &size, &newest) : 0;
    pthread_mutex_lock(&fs->lock);
    in = mqfs__inode_get(fs, ino);
    if (in && timed == 1)
        set_times(in, size, newest); /* on failure the last known values stand */
    if (in) {
        mqfs__fill_attr(fs, in, &st);
        timeout = mqfs__kind_info(&in->node)->attr_timeout;
    }
    pthread_mutex_unlock(&fs->lock);
    if (!in)
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_attr(req, &st, timeout);
}

/* ---- listings ---- */

/* An open directory: its listing, taken at opendir. */
struct mqfs_dir {
    struct mq_buf names; /* NUL-separated names */
    struct mq_buf kinds; /* one byte per name: 1 = directory */
    size_t n;
    struct mqfs_dir *prev, *next; /* fs->dirs, under fs->lock */
};

static int snap_add(struct mqfs_dir *d, const char *name, int is_dir)
{
    uint8_t k = (uint8_t)is_dir;
    int rc = mq_buf_append(&d->names, name, strlen(name) + 1);
    if (!rc)
        rc = mq_buf_append(&d->kinds, &k, 1);
    if (!rc)
        d->n++;
    return rc;
}

/* The visible topics (cached list, minus system topics, plus those created here). */
static int snap_topics(struct mqfs *fs, struct mqfs_dir *d, int is_dir)
{
    struct mqfs_names names;
    int rc = mqfs__visible_topics(fs, &names);
    for (size_t i = 0; rc == 0 && i < names.n; i++)
        rc = snap_add(d, names.v[i], is_dir);
    mqfs__names_free(&names);
    return rc;
}

static int snap_queues(struct mqfs *fs, const struct mqfs_node *dir, struct mqfs_dir *d)
{
    struct mqc_mq *q = NULL;
    size_t n = 0;
    int rc = mqc_producer_queues(fs->producer, dir->topic, 0, &q, &n);
    if (rc) { /* like topic/ with the NameServer down: an empty listing, never an error */
        mq_info("queues of %s: %s", dir->topic, mq_strerror(rc));
        return 0;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[MQFS_TOPIC_MAX + 16];
        snprintf(name, sizeof(name), "%s-%d", q[i].broker, q[i].queue_id);
        rc = snap_add(d, name, 0);
    }
    free(q);
    return rc;
}

static int snap_dir(struct mqfs *fs, const struct mqfs_node *dir, struct mqfs_dir *d)
{
    int rc = snap_add(d, ".", 1);
    rc = rc ? rc : snap_add(d, "..", 1);
    if (rc)
        return rc;
    switch (dir->kind) {
    case MQFS_ROOT: {
        static const char *const top[] = {"topic", "queue", "group",  "key",
                                          "blob",  "msg",   "cluster"};
        for (size_t i = 0; rc == 0 && i < sizeof(top) / sizeof(top[0]); i++)
            rc = snap_add(d, top[i], strcmp(top[i], "cluster") != 0);
        return rc;
    }
    case MQFS_DIR_TOPIC:
    case MQFS_GROUP_DIR:
        return snap_topics(fs, d, 0);
    case MQFS_DIR_QUEUE:
        return snap_topics(fs, d, 1);
    case MQFS_QUEUE_DIR:
        return snap_queues(fs, dir, d);
    case MQFS_DIR_GROUP: { /* the brokers' groups (cached 1 s) and those made here */
        (void)mqfs__groups_refresh(fs, MQFS_LIST_AGE_US);
        pthread_mutex_lock(&fs->lock);
        size_t it = 0;
        const char *g;
        while (rc == 0 && mq_map_next(&fs->groups, &it, &g, NULL))
            rc = snap_add(d, g, 1);
        for (it = 0; rc == 0 && mq_map_next(&fs->group_set, &it, &g, NULL);)
            if (!mqfs__group_hidden(g) && !mq_map_get(&fs->groups, g))
                rc = snap_add(d, g, 1);
        pthread_mutex_unlock(&fs->lock);
        return rc;
    }
    default: /* key/, blob/, msg/ and their topic dirs: query spaces, not listed */
        return 0;
    }
}

static void snap_free(struct mqfs_dir *d)
{
    if (!d)
        return;
    mq_buf_destroy(&d->names);
    mq_buf_destroy(&d->kinds);
    free(d);
}

static void snap_link(struct mqfs *fs, struct mqfs_dir *d)
{
    pthread_mutex_lock(&fs->lock);
    d->next = fs->dirs;
    if (fs->dirs)
        fs->dirs->prev = d;
    fs->dirs = d;
    pthread_mutex_unlock(&fs->lock);
}

static void snap_unlink(struct mqfs *fs, struct mqfs_dir *d)
{
    pthread_mutex_lock(&fs->lock);
    if (d->prev)
        d->prev->next = d->next;
    else
        fs->dirs = d->next;
    if (d->next)
        d->next->prev = d->prev;
    pthread_mutex_unlock(&fs->lock);
}

void mqfs__dirs_shutdown(struct mqfs *fs)
{
    while (fs->dirs) {
        struct mqfs_dir *d = fs->dirs;
        snap_unlink(fs, d);
        snap_free(d);
    }
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    int rc = node_of(fs, ino, &n);
    if (rc == 0 && !mqfs_kind_is_dir(n.kind))
        rc = -ENOTDIR;
    struct mqfs_dir *d = rc ? NULL : calloc(1, sizeof(*d));
    if (rc == 0 && !d)
        rc = -ENOMEM;
    if (rc == 0)
        rc = snap_dir(fs, &n, d);
    if (rc) {
        snap_free(d);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    snap_link(fs, d);
    if (fuse_reply_open(req, fi) != 0) {
        snap_unlink(fs, d);
        snap_free(d);
    }
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct mqfs_dir *d = (struct mqfs_dir *)(uintptr_t)fi->fh;
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0, pos = 0;
    const char *name = (const char *)d->names.data;
    for (size_t i = 0; i < d->n; i++, pos += strlen(name + pos) + 1) {
        if ((off_t)i < off)
            continue;
        struct stat st;
        memset(&st, 0, sizeof(st));
        st.st_ino = 0xffffffff; /* unknown: readdir does not add inodes */
        st.st_mode = d->kinds.data[i] ? S_IFDIR : S_IFREG;
        size_t need =
            fuse_add_direntry(req, buf + used, size - used, name + pos, &st, (off_t)i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mqfs_dir *d = (struct mqfs_dir *)(uintptr_t)fi->fh;
    snap_unlink(fs_of(req), d);
    snap_free(d);
    fuse_reply_err(req, 0);
}

/* ---- groups, deletion ---- */

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    int rc = child_of(fs, parent, name, 0, &n);
    if (rc == 0 && (n.kind != MQFS_GROUP_DIR || mqfs__group_hidden(n.group)))
        rc = -EPERM; /* only consumer groups are made with mkdir, not the brokers' own */
    if (rc == 0) {
        pthread_mutex_lock(&fs->lock);
        if (mq_map_get(&fs->groups, n.group))
            rc = -EEXIST;
        else if (mq_map_put(&fs->groups, n.group, fs, NULL))
            rc = -ENOMEM;
        pthread_mutex_unlock(&fs->lock);
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    /* The brokers keep it too (subscriptionGroup.json): other mounts and later runs see it. */
    int brc = mqfs__group_create(fs, n.group);
    if (brc)
        mq_warn("consumer group %s kept by this mount only: the brokers refused it: %s", n.group,
                mq_strerror(brc));
    else
        mq_info("consumer group %s created", n.group);
    mqfs__reply_entry(req, fs, &n);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    int rc = child_of(fs, parent, name, 0, &n);
    if (rc == 0 && n.kind != MQFS_GROUP_DIR)
        rc = -EPERM;
    if (rc == 0) /* deletes the group and its offsets on the brokers (docs/FS.md) */
        rc = mqfs__group_delete(fs, n.group);
    fuse_reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    int rc = child_of(fs, parent, name, 1, &n);
    if (rc == 0) /* rm topic/<T> deletes the topic from its brokers and the NameServers */
        rc = n.kind == MQFS_TOPIC && n.ntags == 0 && !(n.flags & MQFS_F_JSON)
                 ? mqfs__delete_topic(fs, n.topic)
                 : -EPERM;
    fuse_reply_err(req, -rc);
}

/* mv, ln, ln -s: RocketMQ has no topic rename, and mqfs makes no links. EPERM, not EXDEV: EXDEV
 * makes mv copy and delete — send every message again under the new name, then delete the old
 * topic with its consumer offsets — which is never what `mv topic/A topic/B` means (docs/FS.md;
 * sed -i and perl -pi stop before, at their temporary file: ops_file.c). */
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM);
}

/* mkfifo, mknod: no special files either (a regular file is made through create: ops_file.c). */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fuse_reply_err(req, EPERM);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = MQFS_BLKSIZE;
    sv.f_frsize = MQFS_BLKSIZE;
    sv.f_namemax = 255;
    fuse_reply_statfs(req, &sv);
}

/* Extended attributes (xattr.c): computed per call from the brokers. ENODATA for a missing
 * name, never ENOSYS (which would make the kernel stop asking for the rest of the mount). */
static int xattrs_of(fuse_req_t req, fuse_ino_t ino, struct mq_buf *out)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    int rc = node_of(fs, ino, &n);
    return rc ? rc : mqfs__xattrs(fs, &n, out);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct mq_buf b;
    mq_buf_init(&b);
    int rc = xattrs_of(req, ino, &b);
    const char *val = NULL;
    for (size_t pos = 0; rc == 0 && pos < b.len;) {
        const char *k = (const char *)b.data + pos, *v = k + strlen(k) + 1;
        if (strcmp(k, name) == 0) {
            val = v;
            break;
        }
        pos = (size_t)(v - (const char *)b.data) + strlen(v) + 1;
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else if (!val)
        fuse_reply_err(req, ENODATA);
    else if (size == 0)
        fuse_reply_xattr(req, strlen(val));
    else if (size < strlen(val))
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, val, strlen(val));
    mq_buf_destroy(&b);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct mq_buf b, names;
    mq_buf_init(&b);
    mq_buf_init(&names);
    int rc = xattrs_of(req, ino, &b);
    for (size_t pos = 0; rc == 0 && pos < b.len;) {
        const char *k = (const char *)b.data + pos, *v = k + strlen(k) + 1;
        rc = mq_buf_append(&names, k, strlen(k) + 1);
        pos = (size_t)(v - (const char *)b.data) + strlen(v) + 1;
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else if (size == 0)
        fuse_reply_xattr(req, names.len);
    else if (size < names.len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, (const char *)names.data, names.len);
    mq_buf_destroy(&b);
    mq_buf_destroy(&names);
}

void mqfs__ops_dir(struct fuse_lowlevel_ops *ops)
{
    ops->lookup = op_lookup;
    ops->forget = op_forget;
    ops->forget_multi = op_forget_multi;
    ops->getattr = mqfs__op_getattr;
    ops->opendir = op_opendir;
    ops->readdir = op_readdir;
    ops->releasedir = op_releasedir;
    ops->mkdir = op_mkdir;
    ops->rmdir = op_rmdir;
    ops->unlink = op_unlink;
    ops->rename = op_rename;
    ops->link = op_link;
    ops->symlink = op_symlink;
    ops->mknod = op_mknod;
    ops->statfs = op_statfs;
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
}

/* ops_file.c — the file ops: open/create (which files may be written, and how), read (dispatched
 * to the view of the kind, views.c), write (send.c), flush/fsync/release (the final partial
 * line, the blob's content). Every file is direct_io: no page cache, no readahead, writes
 * arrive exactly as the program made them. Writes to topic and key files ignore the offset
 * (every write appends); blob files are ordinary files while open (send.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/mq_err.h"
#include "common/mq_log.h"
#include "common/mq_util.h"
#include "fs/mqfs_int.h"

static struct mqfs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static struct mqfs_handle *handle_of(struct fuse_file_info *fi)
{
    return (struct mqfs_handle *)(uintptr_t)fi->fh;
}

/* Which nodes may be opened for writing: 0, -EACCES (read-only views) or -EINVAL (a name that
 * cannot be sent to, e.g. several tags). */
static int check_writable(const struct mqfs_node *n)
{
    switch (n->kind) {
    case MQFS_TOPIC:
    case MQFS_KEY:
    case MQFS_BLOB:
        if (n->flags & MQFS_F_JSON)
            return -EACCES;
        return n->ntags > 1 ? -EINVAL : 0; /* a message has one tag */
    default:
        return mqfs_kind_is_dir(n->kind) ? -EISDIR : -EACCES;
    }
}

/* Makes the handle of an open; called without fs->lock (a view may talk to the cluster), with
 * the inode kept alive by the caller. */
static int handle_new(struct mqfs *fs, struct mqfs_inode *in, int flags, struct mqfs_handle **out)
{
    int acc = flags & O_ACCMODE;
    int rc = acc == O_RDONLY ? 0 : check_writable(&in->node);
    if (rc)
        return rc;
    if (acc != O_WRONLY && !mqfs__view_read_fn(in->node.kind))
        return -EACCES;
    struct mqfs_handle *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->fs = fs;
    h->inode = in;
    h->node = in->node;
    h->writable = acc != O_RDONLY;
    pthread_mutex_init(&h->lock, NULL);
    mq_buf_init(&h->blob);
    mq_buf_init(&h->text);
    if (acc != O_WRONLY && (rc = mqfs__view_open(h)) != 0) {
        mq_buf_destroy(&h->text);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* Registers an opened handle (lock held). */
static void handle_link(struct mqfs *fs, struct mqfs_handle *h)
{
    h->inode->nopen++;
    if (h->writable && h->node.kind == MQFS_BLOB)
        h->inode->size = 0; /* a new blob: an empty file */
    h->next = fs->handles;
    if (fs->handles)
        fs->handles->prev = h;
    fs->handles = h;
}

static void handle_unlink(struct mqfs *fs, struct mqfs_handle *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        fs->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    mqfs__inode_close(fs, h->inode);
}

static void handle_free(struct mqfs_handle *h)
{
    mqfs__view_release(h);
    mqfs_lines_destroy(&h->lines);
    mq_buf_destroy(&h->blob);
    mq_buf_destroy(&h->text);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static void set_open_flags(const struct mqfs_handle *h, struct fuse_file_info *fi)
{
    fi->direct_io = 1;
    fi->keep_cache = 0;
    /* Group files ignore offsets (reading consumes), but stay seekable: head(1) seeks back by
     * the bytes it read and did not print, which is 0 here since one read returns at most one
     * message, and it reports "Illegal seek" on files that refuse. */
    fi->nonseekable = 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node n;
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *in = mqfs__inode_get(fs, ino);
    if (in) {
        n = in->node;
        in->nopen++; /* keeps it while the view opens without the lock */
    }
    pthread_mutex_unlock(&fs->lock);
    if (!in) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct mqfs_handle *h = NULL;
    int rc = mqfs_kind_is_dir(n.kind) ? -EISDIR : handle_new(fs, in, fi->flags, &h);
    pthread_mutex_lock(&fs->lock);
    if (rc == 0) {
        in->nopen--;
        handle_link(fs, h);
    } else {
        mqfs__inode_close(fs, in); /* frees it if it was forgotten meanwhile */
    }
    pthread_mutex_unlock(&fs->lock);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    set_open_flags(h, fi);
    if (fuse_reply_open(req, fi) != 0) { /* interrupted: no release will come */
        pthread_mutex_lock(&fs->lock);
        handle_unlink(fs, h);
        pthread_mutex_unlock(&fs->lock);
        handle_free(h);
    }
}

/* create(): topic/<NAME> creates a topic nobody knows on every master (fs->topic_queues queues)
 * and makes the name known to this mount at once; when no broker can be reached the name is
 * still known here and the first send creates the topic (autoCreateTopicEnable) or fails.
 * key/ and blob/ files are virtual. Anything else cannot be created. */
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_node p, n;
    int rc = -ENOENT;
    pthread_mutex_lock(&fs->lock);
    struct mqfs_inode *pin = mqfs__inode_get(fs, parent);
    if (pin)
        p = pin->node;
    pthread_mutex_unlock(&fs->lock);
    if (pin)
        rc = mqfs_node_child(&p, name, strlen(name), &n);
    if (rc == 0 && n.kind != MQFS_TOPIC && n.kind != MQFS_KEY && n.kind != MQFS_BLOB)
        rc = mqfs_kind_is_dir(n.kind) ? -EISDIR : -EACCES;
    if (rc == 0 && (fi->flags & O_ACCMODE) != O_RDONLY)
        rc = check_writable(&n);
    /* O_RDWR|O_CREAT|O_EXCL is how mkstemp makes a temporary file (sed -i, perl -i, rsync,
     * editors): here it would be a new topic with a random name, its lines sent before the
     * rename that cannot work anyway. Refused before anything is made (docs/FS.md). (key/ and
     * blob/ names always exist: O_EXCL meets EEXIST in the kernel.) */
    if (rc == 0 && n.kind == MQFS_TOPIC && (fi->flags & O_EXCL) &&
        (fi->flags & O_ACCMODE) == O_RDWR) {
        mq_info("create %s: a temporary file (O_RDWR|O_EXCL) cannot be a topic", name);
        rc = -EPERM;
    }
    if (rc == 0 && n.kind == MQFS_TOPIC && mqfs__node_exists(fs, &n) == -ENOENT) {
        int crc = mqfs__topic_create(fs, n.topic);
        if (crc)
            mq_warn("create topic %s: %s (known to this mount; the first send creates it)", n.topic,
                    mq_strerror(crc));
    }
    struct mqfs_inode *in = NULL;
    struct mqfs_handle *h = NULL;
    if (rc == 0) {
        pthread_mutex_lock(&fs->lock);
        if (n.kind == MQFS_TOPIC && !mqfs__topic_known(fs, n.topic) &&
            mq_map_put(&fs->created, n.topic, (void *)(uintptr_t)mq_now_ms(), NULL))
            rc = -ENOMEM;
        in = rc ? NULL : mqfs__inode_ref(fs, &n, 1);
        if (rc == 0 && !in)
            rc = -ENOMEM;
        pthread_mutex_unlock(&fs->lock);
    }
    if (rc == 0) { /* the kernel reference taken above keeps the inode meanwhile */
        rc = handle_new(fs, in, fi->flags, &h);
        pthread_mutex_lock(&fs->lock);
        if (rc == 0)
            handle_link(fs, h);
        else
            mqfs__inode_forget(fs, in, 1);
        pthread_mutex_unlock(&fs->lock);
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    pthread_mutex_lock(&fs->lock);
    const struct mqfs_kind_info *ki = mqfs__kind_info(&n);
    e.ino = in->ino;
    e.attr_timeout = ki->attr_timeout;
    e.entry_timeout = ki->entry_timeout;
    mqfs__fill_attr(fs, in, &e.attr);
    pthread_mutex_unlock(&fs->lock);
    fi->fh = (uint64_t)(uintptr_t)h;
    set_open_flags(h, fi);
    if (fuse_reply_create(req, &e, fi) != 0) {
        pthread_mutex_lock(&fs->lock);
        handle_unlink(fs, h);
        mqfs__inode_forget(fs, in, 1);
        pthread_mutex_unlock(&fs->lock);
        handle_free(h);
    }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct mqfs_handle *h = handle_of(fi);
    mqfs_read_fn fn = mqfs__view_read_fn(h->node.kind);
    h->read_flags = fi->flags;
    int rc = fn ? fn(req, h, size, off) : -EBADF;
    if (rc)
        fuse_reply_err(req, -rc);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct fuse_pollhandle *ph)
{
    unsigned revents = 0;
    int rc = mqfs__view_poll(handle_of(fi), ph, &revents);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_poll(req, revents);
}

/* Publishes an open blob's length as its inode's size (handle lock held). */
static void blob_size(struct mqfs_handle *h)
{
    pthread_mutex_lock(&h->fs->lock);
    h->inode->size = h->blob.len;
    pthread_mutex_unlock(&h->fs->lock);
}

/* ftruncate() of an open blob resizes it. Any other truncate, chmod or utimes is accepted and
 * ignored (O_TRUNC, `truncate` and `: > topic/T` delete nothing) — but a topic or key file open
 * for writing that was ftruncate'd refuses every later write with EPERM: truncating what it
 * opened and then writing is how an editor that writes in place (vim) replaces a file's content,
 * and a log cannot be replaced: the rewrite would send every line again (docs/FS.md). */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct mqfs_handle *h = fi ? handle_of(fi) : NULL;
    int rc = 0;
    if (h && h->writable && h->node.kind == MQFS_BLOB && (to_set & FUSE_SET_ATTR_SIZE)) {
        pthread_mutex_lock(&h->lock);
        rc = mqfs__truncate_blob(h, attr->st_size);
        blob_size(h);
        pthread_mutex_unlock(&h->lock);
    } else if (h && h->writable && (to_set & FUSE_SET_ATTR_SIZE)) {
        pthread_mutex_lock(&h->lock);
        h->rewrite = 1;
        pthread_mutex_unlock(&h->lock);
        mq_info("ftruncate of %s: a log cannot be rewritten; this open file sends nothing more",
                h->inode->path);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        mqfs__op_getattr(req, ino, fi);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct mqfs_handle *h = handle_of(fi);
    long rc;
    pthread_mutex_lock(&h->lock);
    if (!h->writable)
        rc = -EBADF;
    else if (h->rewrite)
        rc = -EPERM; /* truncated, to be rewritten: op_setattr */
    else if (h->node.kind == MQFS_BLOB)
        rc = mqfs__write_blob(h, buf, size, (fi->flags & O_APPEND) ? (off_t)h->blob.len : off);
    else
        rc = mqfs__write_lines(h, buf, size);
    if (rc > 0)
        h->writer = fi->lock_owner;
    if (h->node.kind == MQFS_BLOB)
        blob_size(h);
    pthread_mutex_unlock(&h->lock);
    if (rc < 0)
        fuse_reply_err(req, (int)-rc);
    else
        fuse_reply_write(req, (size_t)rc);
}

/* Every close() of a descriptor: sends the partial line / the blob if it changed since it was
 * last sent, so close reports errors, and a reader right after the close sees the message
 * (RELEASE, the last close, is asynchronous: close() does not wait for it). Only the close by
 * the process that wrote last counts: a forked child closing its inherited copy (at exec or
 * exit) must not cut its parent's line in two. (The lock owner identifies the descriptor
 * table; the kernel passes it with direct-I/O writes and with every flush.) A blob keeps its
 * content after the send: several processes writing one open file (`{ cat a; cat b; } >
 * blob/T/k`) each send the whole file so far, the last send is the complete file. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mqfs_handle *h = handle_of(fi);
    int rc = 0;
    if (h->writable) {
        pthread_mutex_lock(&h->lock);
        if (h->writer == 0 || h->writer == fi->lock_owner)
            rc = mqfs__flush_handle(h);
        pthread_mutex_unlock(&h->lock);
    }
    fuse_reply_err(req, -rc);
}

/* fsync sends the partial line of a topic or key file; a blob is only whole at close. */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct mqfs_handle *h = handle_of(fi);
    int rc = 0;
    if (h->writable && h->node.kind != MQFS_BLOB) {
        pthread_mutex_lock(&h->lock);
        rc = mqfs__flush_handle(h);
        pthread_mutex_unlock(&h->lock);
    }
    fuse_reply_err(req, -rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct mqfs *fs = fs_of(req);
    struct mqfs_handle *h = handle_of(fi);
    /* Taking the lock also waits for a reply still being made from the handle's memory. */
    pthread_mutex_lock(&h->lock);
    int rc = h->writable ? mqfs__flush_handle(h) : 0; /* what changed since the last flush */
    pthread_mutex_unlock(&h->lock);
    if (rc)
        mq_error("release of %s: unsent data dropped: %s", h->inode->path, mq_strerror(rc));
    pthread_mutex_lock(&fs->lock);
    handle_unlink(fs, h);
    pthread_mutex_unlock(&fs->lock);
    handle_free(h);
    fuse_reply_err(req, 0);
}

void mqfs__handles_shutdown(struct mqfs *fs)
{
    for (;;) {
        pthread_mutex_lock(&fs->lock);
        struct mqfs_handle *h = fs->handles;
        if (h)
            handle_unlink(fs, h);
        pthread_mutex_unlock(&fs->lock);
        if (!h)
            return;
        if (h->writable) {
            int rc = mqfs__flush_handle(h);
            if (rc)
                mq_error("shutdown: %s: unsent data dropped: %s", h->node.topic, mq_strerror(rc));
        }
        handle_free(h);
    }
}

void mqfs__ops_file(struct fuse_lowlevel_ops *ops)
{
    ops->setattr = op_setattr;
    ops->open = op_open;
    ops->create = op_create;
    ops->read = op_read;
    ops->poll = op_poll;
    ops->write = op_write;
    ops->flush = op_flush;
    ops->fsync = op_fsync;
    ops->release = op_release;
}
